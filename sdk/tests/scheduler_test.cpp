// sdk::Scheduler: the check schedule every check plugin shares, driven by a fake clock.
// Example tests pin the semantics (grid, spread, skipping, once, shard); property tests run
// random target sets with random check durations (seed printed on failure) and check the
// invariants a user relies on.
#include "webmon/sdk/scheduler.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "webmon/sdk/testing.hpp"

namespace webmon::sdk {
namespace {

using namespace std::chrono_literals;
using testing::ManualClock;
using Duration = Scheduler::Duration;

TEST(StableHash, IsFnv1aWithAvalanche) {
  // FNV-1a of "" is the offset basis; the avalanche then mixes it (values of http_check's hash).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h ^= h >> 33U;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33U;
  EXPECT_EQ(stable_hash(""), h);
  std::uint64_t a = 0xcbf29ce484222325ULL;
  a ^= static_cast<unsigned char>('a');
  a *= 0x100000001b3ULL;
  a ^= a >> 33U;
  a *= 0xff51afd7ed558ccdULL;
  a ^= a >> 33U;
  EXPECT_EQ(stable_hash("a"), a);
  EXPECT_NE(stable_hash("shop-1"), stable_hash("shop-2"));
}

TEST(Scheduler, FirstSlotIsTheNameHashModuloTheInterval) {
  ManualClock clock;
  Scheduler s;
  const auto i = s.add("shop", 30s);
  s.start(clock.now());
  const auto offset = Duration(static_cast<std::int64_t>(stable_hash("shop") % 30'000'000U));
  EXPECT_EQ(s.first_offset(i), offset);
  EXPECT_EQ(s.next_wakeup(), clock.now() + offset);
  clock.advance(offset - 1us);
  EXPECT_FALSE(s.start_next(clock.now()).has_value());
  clock.advance(1us);
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->target, i);
  EXPECT_EQ(slot->lateness, Duration::zero());
}

TEST(Scheduler, NextSlotIsOnTheGridAndLatenessIsMeasured) {
  ManualClock clock;
  Scheduler s;
  s.add("a", 10s);
  const auto origin = clock.now();
  s.start(origin);
  const auto first = origin + s.first_offset(0);
  clock.set(first + 250ms);  // started late
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->scheduled, first);
  EXPECT_EQ(slot->lateness, 250ms);
  EXPECT_TRUE(s.running(0));
  EXPECT_FALSE(s.next_wakeup().has_value());  // nothing scheduled while it runs
  clock.advance(1s);
  EXPECT_EQ(s.finish(0, clock.now()), 0U);
  EXPECT_EQ(s.next_wakeup(), first + 10s);  // the grid, not finish + interval
}

TEST(Scheduler, SlotsPassedWhileRunningAreSkippedAndCounted) {
  ManualClock clock;
  Scheduler s;
  s.add("slow", 1s);
  s.start(clock.now());
  const auto first = clock.now() + s.first_offset(0);
  clock.set(first);
  ASSERT_TRUE(s.start_next(clock.now()));
  clock.advance(3500ms);  // slots at +1s, +2s, +3s passed
  EXPECT_EQ(s.finish(0, clock.now()), 3U);
  EXPECT_EQ(s.skipped(), 3U);
  EXPECT_EQ(s.skipped(0), 3U);
  EXPECT_EQ(s.next_wakeup(), first + 4s);
}

TEST(Scheduler, ASlotExactlyAtFinishIsKept) {
  ManualClock clock;
  Scheduler s;
  s.add("edge", 1s);
  s.start(clock.now());
  const auto first = clock.now() + s.first_offset(0);
  clock.set(first);
  ASSERT_TRUE(s.start_next(clock.now()));
  clock.advance(1s);
  EXPECT_EQ(s.finish(0, clock.now()), 0U);
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->scheduled, first + 1s);
}

TEST(Scheduler, DueSlotsWaitInOrderOfDueTime) {
  ManualClock clock;
  Scheduler s;
  for (int i = 0; i < 20; ++i) {
    s.add("t" + std::to_string(i), 5s);
  }
  s.start(clock.now());
  clock.advance(10s);
  EXPECT_EQ(s.poll(clock.now()), 20U);
  std::vector<Scheduler::TimePoint> order;
  while (auto slot = s.start_next(clock.now())) {
    order.push_back(slot->scheduled);
  }
  EXPECT_EQ(order.size(), 20U);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(s.running_count(), 20U);
}

TEST(Scheduler, OnceRunsEveryTargetAtTheOriginThenIsDone) {
  ManualClock clock;
  Scheduler s(true);
  s.add("a", 30s);
  s.add("b", 1h);
  s.start(clock.now());
  auto x = s.start_next(clock.now());
  auto y = s.start_next(clock.now());
  ASSERT_TRUE(x && y);
  EXPECT_EQ(x->scheduled, clock.now());
  EXPECT_EQ(y->scheduled, clock.now());
  EXPECT_FALSE(s.done());
  clock.advance(2h);
  s.finish(x->target, clock.now());
  EXPECT_FALSE(s.done());
  s.finish(y->target, clock.now());
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.start_next(clock.now()));
  EXPECT_EQ(s.skipped(), 0U);
}

TEST(Scheduler, WallTimeFollowsTheStartPair) {
  ManualClock clock;
  Scheduler s;
  s.add("a", 1s);
  s.start(clock.now(), Timestamp{1'000'000'000});
  EXPECT_EQ(s.wall_of(clock.now() + 1500ms).micros, 1'001'500'000);
}

TEST(Scheduler, BadUseIsRefused) {
  Scheduler s;
  EXPECT_THROW(s.add("zero", Duration::zero()), std::invalid_argument);
  s.add("a", 1s);
  s.start(ManualClock().now());
  EXPECT_THROW(s.add("late", 1s), std::logic_error);
  EXPECT_THROW(s.finish(0, ManualClock().now()), std::logic_error);  // not running
}

TEST(Shard, RejectsBadIndexAndCount) {
  EXPECT_THROW((Shard{0, 0}).check(), std::invalid_argument);
  EXPECT_THROW((Shard{2, 2}).check(), std::invalid_argument);
  EXPECT_THROW((Shard{-1, 2}).check(), std::invalid_argument);
  EXPECT_NO_THROW((Shard{1, 2}).check());
}

// ---------------------------------------------------------------------------------------------
// Property tests.

std::uint64_t seed_base() {
  static const std::uint64_t seed = std::random_device{}();
  return seed;
}

TEST(SchedulerProperty, ShardsPartitionTargetsExactly) {
  for (std::uint64_t round = 0; round < 50; ++round) {
    const std::uint64_t seed = seed_base() + round;
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const auto count = static_cast<std::int64_t>(1 + rng() % 8);
    std::vector<std::string> names;
    const std::size_t n = rng() % 300;
    for (std::size_t i = 0; i < n; ++i) {
      names.push_back("target-" + std::to_string(rng()));
    }
    std::map<std::string, int> seen;
    for (std::int64_t index = 0; index < count; ++index) {
      for (const auto& name :
           filter_shard(names, Shard{index, count}, [](const std::string& x) { return x; })) {
        ++seen[name];
        EXPECT_EQ(stable_hash(name) % static_cast<std::uint64_t>(count),
                  static_cast<std::uint64_t>(index));
      }
    }
    std::map<std::string, int> expected;
    for (const auto& name : names) {
      ++expected[name];
    }
    EXPECT_EQ(seen, expected) << "every target in exactly one shard";
  }
}

// Simulates checks of random durations under a concurrency limit with a fake clock, stepping
// from event to event, and checks: no overlap per target, first slots within the interval,
// every start on the target's grid, lateness >= 0 and exact, skipped slots counted exactly.
TEST(SchedulerProperty, RandomSchedulesKeepTheInvariants) {
  for (std::uint64_t round = 0; round < 200; ++round) {
    const std::uint64_t seed = seed_base() * 1000 + round;
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const bool once = rng() % 8 == 0;
    const std::size_t n = 1 + rng() % 40;
    const std::size_t max_in_flight = 1 + rng() % 10;
    ManualClock clock;
    Scheduler s(once);
    std::vector<Duration> intervals;
    for (std::size_t i = 0; i < n; ++i) {
      intervals.push_back(Duration(static_cast<std::int64_t>(1'000 + rng() % 5'000'000)));
      ASSERT_EQ(s.add("t" + std::to_string(rng()), intervals.back()), i);
    }
    const auto origin = clock.now();
    s.start(origin);
    for (std::size_t i = 0; i < n; ++i) {
      const auto off = s.first_offset(i);
      EXPECT_GE(off, Duration::zero());
      EXPECT_LT(off, intervals[i]);
      if (once) {
        EXPECT_EQ(off, Duration::zero());
      }
    }
    struct Run {
      std::size_t target;
      Scheduler::TimePoint end;
    };
    std::vector<Run> in_flight;
    std::vector<int> running(n, 0);
    std::vector<std::optional<Scheduler::TimePoint>> last_slot(n);
    std::vector<std::uint64_t> expected_skips(n, 0);
    std::vector<int> runs(n, 0);
    std::vector<std::uint64_t> returned(n, 0);
    for (int step = 0; step < 3000 && !s.done(); ++step) {
      // Start what is due, up to the limit.
      while (in_flight.size() < max_in_flight) {
        auto slot = s.start_next(clock.now());
        if (!slot) {
          break;
        }
        const std::size_t t = slot->target;
        EXPECT_EQ(running[t], 0) << "target " << t << " started while running";
        ++running[t];
        ++runs[t];
        EXPECT_LE(slot->scheduled, clock.now());
        EXPECT_GE(slot->lateness, Duration::zero());
        EXPECT_EQ(slot->lateness, clock.now() - slot->scheduled);
        // On the grid: origin + offset + k * interval.
        const auto since = slot->scheduled - (origin + s.first_offset(t));
        EXPECT_GE(since, Duration::zero());
        EXPECT_EQ(since % intervals[t], Duration::zero());
        if (last_slot[t]) {
          // Slots between the previous one and this one were skipped (while it ran).
          const auto gap = (slot->scheduled - *last_slot[t]) / intervals[t];
          EXPECT_GE(gap, 1);
          expected_skips[t] += static_cast<std::uint64_t>(gap - 1);
        }
        last_slot[t] = slot->scheduled;
        // Durations: mostly short, sometimes several intervals long.
        const auto dur = Duration(static_cast<std::int64_t>(
            rng() % 4 == 0 ? rng() % static_cast<std::uint64_t>(intervals[t].count() * 4 + 1)
                           : rng() % static_cast<std::uint64_t>(intervals[t].count() / 2 + 1)));
        in_flight.push_back({t, clock.now() + dur});
      }
      // Advance to the next event: a check ending or a slot falling due.
      std::optional<Scheduler::TimePoint> next;
      auto earliest = std::min_element(in_flight.begin(), in_flight.end(),
                                       [](const Run& a, const Run& b) { return a.end < b.end; });
      if (earliest != in_flight.end()) {
        next = earliest->end;
      }
      if (auto w = s.next_wakeup(); w && in_flight.size() < max_in_flight) {
        next = next ? std::min(*next, *w) : *w;
      }
      ASSERT_TRUE(next.has_value()) << "nothing running and nothing scheduled";
      clock.set(*next);
      for (auto it = in_flight.begin(); it != in_flight.end();) {
        if (it->end <= clock.now()) {
          --running[it->target];
          returned[it->target] += s.finish(it->target, clock.now());
          it = in_flight.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::uint64_t total = 0;
    for (std::size_t t = 0; t < n; ++t) {
      EXPECT_LE(expected_skips[t], s.skipped(t)) << "target " << t;
      // Skips of the slot computed by the last finish() are counted but not yet observed.
      total += s.skipped(t);
      EXPECT_EQ(returned[t], s.skipped(t)) << "target " << t;
      if (once) {
        EXPECT_EQ(runs[t], 1);
      }
    }
    EXPECT_EQ(total, s.skipped());
    if (once) {
      EXPECT_TRUE(s.done());
      EXPECT_EQ(s.skipped(), 0U);
    }
  }
}

// Without a concurrency limit and with checks shorter than the interval, nothing is skipped
// and every check starts exactly on its slot.
TEST(SchedulerProperty, ShortChecksNeverSkipAndAreNeverLate) {
  for (std::uint64_t round = 0; round < 50; ++round) {
    const std::uint64_t seed = seed_base() * 7 + round;
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 20;
    ManualClock clock;
    Scheduler s;
    for (std::size_t i = 0; i < n; ++i) {
      s.add("t" + std::to_string(i), Duration(static_cast<std::int64_t>(10 + rng() % 1'000'000)));
    }
    s.start(clock.now());
    std::vector<std::pair<std::size_t, Scheduler::TimePoint>> in_flight;
    for (int step = 0; step < 2000; ++step) {
      while (auto slot = s.start_next(clock.now())) {
        EXPECT_EQ(slot->lateness, Duration::zero());
        const auto iv = s.interval(slot->target);
        in_flight.emplace_back(slot->target,
                               clock.now() + Duration(static_cast<std::int64_t>(
                                                 rng() % static_cast<std::uint64_t>(iv.count()))));
      }
      auto next = s.next_wakeup();
      for (const auto& r : in_flight) {
        next = next ? std::min(*next, r.second) : r.second;
      }
      ASSERT_TRUE(next);
      clock.set(*next);
      for (auto it = in_flight.begin(); it != in_flight.end();) {
        if (it->second <= clock.now()) {
          s.finish(it->first, clock.now());
          it = in_flight.erase(it);
        } else {
          ++it;
        }
      }
    }
    EXPECT_EQ(s.skipped(), 0U);
  }
}

}  // namespace
}  // namespace webmon::sdk
