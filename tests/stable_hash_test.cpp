// sdk::stable_hash and sdk::Shard are part of what a deployment relies on across releases: a
// target's start offset within its interval and the shard that checks it follow from the
// hash of its name, and http_check's reload fingerprints use it too. These values are pinned:
// a change of the hash would move every target to another slot and shard on upgrade.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "webmon/sdk/scheduler.hpp"

namespace webmon {
namespace {

TEST(StableHash, ValuesArePinned) {
  const std::vector<std::pair<std::string, std::uint64_t>> pinned = {
      {"", 17058014651485797458ULL},       {"a", 17114084158190756429ULL},
      {"example", 744852858268122589ULL},  {"https://example.com/", 7313365501798620673ULL},
      {"shop-1", 14339790537008552039ULL}, {"shop-2", 10544167794681053291ULL},
  };
  for (const auto& [name, hash] : pinned) {
    EXPECT_EQ(sdk::stable_hash(name), hash) << "'" << name << "'";
  }
  static_assert(sdk::stable_hash("example") == 744852858268122589ULL);
}

TEST(StableHash, ShardsArePinned) {
  // target-0 … target-9 with 3 and with 7 shards.
  const std::vector<int> three = {0, 2, 2, 2, 2, 1, 0, 2, 2, 1};
  const std::vector<int> seven = {6, 5, 3, 1, 3, 4, 0, 1, 2, 6};
  for (int i = 0; i < 10; ++i) {
    const std::string name = "target-" + std::to_string(i);
    for (std::int64_t k = 0; k < 7; ++k) {
      EXPECT_EQ((sdk::Shard{k, 3}).contains(name), k == three[static_cast<std::size_t>(i)]) << name;
      EXPECT_EQ((sdk::Shard{k, 7}).contains(name), k == seven[static_cast<std::size_t>(i)]) << name;
    }
  }
}

TEST(StableHash, EveryTargetIsInExactlyOneShard) {
  for (std::int64_t count = 1; count <= 7; ++count) {
    for (int i = 0; i < 500; ++i) {
      const std::string name = "target-" + std::to_string(i);
      int owners = 0;
      for (std::int64_t k = 0; k < count; ++k) {
        owners += (sdk::Shard{k, count}).contains(name) ? 1 : 0;
      }
      EXPECT_EQ(owners, 1) << name << " with " << count << " shards";
    }
  }
}

}  // namespace
}  // namespace webmon
