// WakePolicy: when the consumer's prefetch queue has been near its bound and has drained to
// half, the fetcher is woken once; a queue that never came near the bound never wakes it.
#include "fetch_waker.hpp"

#include <gtest/gtest.h>

namespace webmon::plugins::kafka_source {
namespace {

constexpr std::size_t kBound = 1000 * 100;  // 1,000 messages of 100 bytes

TEST(WakePolicy, WakesOnceAfterAFullQueueDrainsToHalf) {
  WakePolicy policy(kBound);
  EXPECT_FALSE(policy.observe(900, 100, 100 * 100));  // 90 % full: armed, no wake yet
  EXPECT_DOUBLE_EQ(policy.average_message_bytes(), 100);
  EXPECT_FALSE(policy.observe(700, 100, 100 * 100));  // 70 %: still above half
  EXPECT_TRUE(policy.observe(500, 100, 100 * 100));   // half: wake
  EXPECT_FALSE(policy.observe(300, 100, 100 * 100));  // once per fill
  EXPECT_FALSE(policy.observe(0, 100, 100 * 100));
  EXPECT_FALSE(policy.observe(760, 100, 100 * 100));  // full again...
  EXPECT_TRUE(policy.observe(100, 100, 100 * 100));   // ...and drained again: wake again
}

TEST(WakePolicy, NeverWakesWhileTheQueueStaysBelowThreeQuarters) {
  WakePolicy policy(kBound);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(policy.observe(static_cast<std::size_t>(i % 740), 100, 100 * 100));
  }
  EXPECT_FALSE(policy.observe(0, 0, 0));  // an empty poll changes nothing
}

TEST(WakePolicy, EstimatesTheQueueWithTheMessageSizeItSees) {
  WakePolicy policy(kBound);
  // 400 queued messages of 250 bytes is the whole bound, though only 40 % of it by count.
  EXPECT_FALSE(policy.observe(400, 10, 10 * 250));
  EXPECT_DOUBLE_EQ(policy.average_message_bytes(), 250);
  EXPECT_TRUE(policy.observe(150, 10, 10 * 250));
  // The average follows the sizes slowly (one eighth of each difference).
  EXPECT_FALSE(policy.observe(0, 10, 10 * 1050));
  EXPECT_DOUBLE_EQ(policy.average_message_bytes(), 350);
}

}  // namespace
}  // namespace webmon::plugins::kafka_source
