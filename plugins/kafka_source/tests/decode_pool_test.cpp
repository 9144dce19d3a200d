// DecodePool: every index decoded exactly once, each share on its own decoder, errors surface.
#include "decode_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace webmon::plugins::kafka_source {
namespace {

TEST(DecodePool, EveryIndexOnceAcrossManyRuns) {
  DecodePool pool(3, 1 << 20);
  for (std::size_t n : {0UL, 1UL, 63UL, 64UL, 128UL, 191UL, 192UL, 1000UL, 10007UL}) {
    std::vector<std::atomic<int>> hits(n);
    std::mutex mu;
    std::set<const common::JsonDecoder*> decoders;
    std::set<std::thread::id> threads;
    pool.run(n, [&](common::JsonDecoder& d, std::size_t begin, std::size_t end) {
      {
        std::lock_guard lock(mu);
        EXPECT_TRUE(decoders.insert(&d).second) << "a decoder used by two shares at once";
        threads.insert(std::this_thread::get_id());
      }
      for (std::size_t i = begin; i < end; ++i) {
        hits[i].fetch_add(1);
      }
    });
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " index " << i;
    }
    // Small batches stay on the caller; big ones use every thread.
    EXPECT_EQ(threads.size(), n >= 192 ? 3U : std::max<std::size_t>(1, n / 64)) << "n=" << n;
  }
}

TEST(DecodePool, DecodesRealMessages) {
  DecodePool pool(2, 1 << 20);
  const std::string good =
      R"({"schema":1,"kind":"custom","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-01-01T00:00:00Z","n":3,"labels":{}})";
  std::vector<std::string> msgs(500, good);
  msgs[7] = "garbage";
  msgs[400] = "{}";
  std::vector<sdk::Record> out(msgs.size());
  std::vector<std::string> errors(msgs.size());
  std::vector<char> ok(msgs.size());
  pool.run(msgs.size(), [&](common::JsonDecoder& d, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      ok[i] = d.decode(msgs[i], out[i], errors[i]) ? 1 : 0;
    }
  });
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    if (i == 7 || i == 400) {
      EXPECT_FALSE(ok[i]) << i;
    } else {
      ASSERT_TRUE(ok[i]) << i << ": " << errors[i];
      EXPECT_EQ(*out[i].get<std::int64_t>("n"), 3);
    }
  }
  EXPECT_EQ(errors[400], "missing 'schema'");
}

TEST(DecodePool, HelperExceptionReachesTheCaller) {
  DecodePool pool(2, 1 << 20);
  EXPECT_THROW(pool.run(1000,
                        [](common::JsonDecoder&, std::size_t begin, std::size_t) {
                          if (begin > 0) {
                            throw std::runtime_error("boom");
                          }
                        }),
               std::runtime_error);
  // Still usable afterwards.
  std::atomic<std::size_t> total{0};
  pool.run(1000,
           [&](common::JsonDecoder&, std::size_t begin, std::size_t end) { total += end - begin; });
  EXPECT_EQ(total.load(), 1000U);
}

}  // namespace
}  // namespace webmon::plugins::kafka_source
