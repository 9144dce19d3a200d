// sdk::stable_hash and sdk::Shard (webmon/sdk/scheduler.hpp) against http_check's own hash:
// a target keeps its shard and its start offset when it moves between check plugins.
#include <gtest/gtest.h>

#include <random>

#include "http_check.hpp"
#include "webmon/sdk/scheduler.hpp"

namespace webmon {
namespace {

TEST(SchedulerHttpCheck, SameHashAsHttpCheck) {
  const auto seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (const char* fixed : {"", "a", "example", "https://example.com/", "shop-1", "shop-2"}) {
    EXPECT_EQ(sdk::stable_hash(fixed), plugins::http_check::stable_hash(fixed)) << fixed;
  }
  for (int i = 0; i < 10000; ++i) {
    std::string name(rng() % 64, ' ');
    for (auto& c : name) {
      c = static_cast<char>(rng() % 256);
    }
    ASSERT_EQ(sdk::stable_hash(name), plugins::http_check::stable_hash(name));
  }
}

TEST(SchedulerHttpCheck, SameShardAsHttpCheck) {
  // http_check keeps a target when stable_hash(name) % count == index (config.cpp).
  for (std::int64_t count = 1; count <= 7; ++count) {
    for (int i = 0; i < 500; ++i) {
      const std::string name = "target-" + std::to_string(i);
      const auto index = static_cast<std::int64_t>(plugins::http_check::stable_hash(name) %
                                                   static_cast<std::uint64_t>(count));
      for (std::int64_t k = 0; k < count; ++k) {
        EXPECT_EQ((sdk::Shard{k, count}).contains(name), k == index);
      }
    }
  }
}

}  // namespace
}  // namespace webmon
