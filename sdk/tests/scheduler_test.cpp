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

// ---------------------------------------------------------------------------------------------
// Targets changing while it runs (a reloaded target list), several schedulers on one grid.

// The slot of `name` on the grid of `origin`: origin + offset + k × interval.
Scheduler::TimePoint grid_slot(Scheduler::TimePoint origin, std::string_view name, Duration iv,
                               std::int64_t k) {
  const auto offset = Duration(
      static_cast<std::int64_t>(stable_hash(name) % static_cast<std::uint64_t>(iv.count())));
  return origin + offset + k * iv;
}

TEST(SchedulerChanges, SchedulersStartedWithOneOriginShareItsGrid) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler a;
  Scheduler b;
  const auto ia = a.add("shop", 10s);
  const auto ib = b.add("shop", 10s);
  a.start_with_origin(origin, origin, Timestamp{5'000'000});
  clock.advance(95s);  // b starts later: the slots that passed are not made up
  b.start_with_origin(clock.now(), origin, Timestamp{5'000'000});
  EXPECT_EQ(a.next_wakeup(), grid_slot(origin, "shop", 10s, 0));
  const auto expected = grid_slot(origin, "shop", 10s, 0) < origin + 95s - 90s
                            ? grid_slot(origin, "shop", 10s, 10)
                            : grid_slot(origin, "shop", 10s, 9);
  EXPECT_EQ(b.next_wakeup(), expected);
  EXPECT_GE(*b.next_wakeup(), clock.now());
  EXPECT_LT(*b.next_wakeup(), clock.now() + 10s);
  clock.set(expected);
  auto slot = b.start_next(clock.now());
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->target, ib);
  EXPECT_EQ(slot->lateness, Duration::zero());
  // Wall-clock times are the origin's, on both.
  EXPECT_EQ(b.wall_of(expected).micros, a.wall_of(expected).micros);
  EXPECT_EQ(b.wall_of(origin).micros, 5'000'000);
  EXPECT_EQ(a.origin(), b.origin());
  (void)ia;
}

TEST(SchedulerChanges, AddedTargetStartsOnTheFirstGridSlotNotBeforeNow) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler s;
  s.start(origin);
  EXPECT_FALSE(s.next_wakeup());
  clock.advance(42s + 123ms);
  const auto i = s.add("late", 5s, clock.now());
  EXPECT_TRUE(s.active(i));
  EXPECT_EQ(s.active_count(), 1U);
  const auto first = *s.next_wakeup();
  EXPECT_GE(first, clock.now());
  EXPECT_LT(first, clock.now() + 5s);
  EXPECT_EQ((first - grid_slot(origin, "late", 5s, 0)) % Duration(5s), Duration::zero());
  // A slot exactly at `now` is kept, not pushed one interval on.
  s.remove(i);
  clock.set(grid_slot(origin, "exact", 5s, 20));
  const auto j = s.add("exact", 5s, clock.now());
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->target, j);
  EXPECT_EQ(slot->scheduled, clock.now());
}

TEST(SchedulerChanges, RemovedTargetIsNeverStartedAgainAndReAddedKeepsItsGrid) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler s;
  const auto i = s.add("gone", 1s);
  const auto keep = s.add("keep", 7s);
  s.start(origin);
  s.remove(i);
  EXPECT_FALSE(s.active(i));
  EXPECT_EQ(s.active_count(), 1U);
  EXPECT_EQ(s.next_wakeup(), grid_slot(origin, "keep", 7s, 0));  // gone's slot is dropped
  clock.advance(20s);
  std::vector<std::size_t> started;
  while (auto slot = s.start_next(clock.now())) {
    started.push_back(slot->target);
  }
  EXPECT_EQ(started, std::vector<std::size_t>{keep});
  // Added again: the freed index, the same grid.
  const auto again = s.add("gone", 1s, clock.now());
  EXPECT_EQ(again, i);
  EXPECT_EQ(s.next_wakeup(), grid_slot(origin, "gone", 1s, 20));
  EXPECT_EQ(s.skipped(again), 0U);
}

TEST(SchedulerChanges, RemovingADueTargetDropsItsReadySlot) {
  ManualClock clock;
  Scheduler s;
  const auto a = s.add("a", 1s);
  const auto b = s.add("b", 1s);
  s.start(clock.now());
  clock.advance(1s);
  ASSERT_EQ(s.poll(clock.now()), 2U);
  s.remove(a);
  EXPECT_EQ(s.ready_count(), 1U);
  EXPECT_EQ(s.poll(clock.now()), 1U);
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot);
  EXPECT_EQ(slot->target, b);
  EXPECT_FALSE(s.start_next(clock.now()));
  EXPECT_EQ(s.ready_count(), 0U);
  // The removed target's index, reused while its stale slot was queued, gets only its own.
  s.remove(b);
  EXPECT_EQ(s.add("c", 1s, clock.now()), a);
  EXPECT_EQ(s.ready_count(), 0U);
}

TEST(SchedulerChanges, TargetRemovedWhileItsCheckRunsIsNotRescheduled) {
  ManualClock clock;
  Scheduler s;
  const auto i = s.add("busy", 1s);
  s.start(clock.now());
  clock.advance(1s);
  ASSERT_TRUE(s.start_next(clock.now()));
  s.remove(i);
  EXPECT_TRUE(s.running(i));
  EXPECT_EQ(s.running_count(), 1U);
  // The index stays taken until the check finishes.
  const auto other = s.add("other", 1s, clock.now());
  EXPECT_NE(other, i);
  EXPECT_THROW(s.change(i, "busy", 2s), std::logic_error);
  clock.advance(5s);
  EXPECT_EQ(s.finish(i, clock.now()), 0U);  // nothing skipped: nothing scheduled
  EXPECT_EQ(s.skipped(), 0U);
  EXPECT_FALSE(s.running(i));
  EXPECT_EQ(s.running_count(), 0U);
  std::vector<std::size_t> started;
  clock.advance(10s);
  while (auto slot = s.start_next(clock.now())) {
    started.push_back(slot->target);
  }
  EXPECT_EQ(started, std::vector<std::size_t>{other});
  EXPECT_EQ(s.add("new", 1s, clock.now()), i);  // free now
  EXPECT_THROW(s.remove(s.size()), std::out_of_range);
}

// Runs every due check of `s` at once, each taking no time, until `end`; the slots per target.
std::map<std::size_t, std::vector<Scheduler::TimePoint>> run_until(Scheduler& s, ManualClock& clock,
                                                                   Scheduler::TimePoint end) {
  std::map<std::size_t, std::vector<Scheduler::TimePoint>> slots;
  while (clock.now() < end) {
    while (auto slot = s.start_next(clock.now())) {
      slots[slot->target].push_back(slot->scheduled);
      s.finish(slot->target, clock.now());
    }
    clock.set(*s.next_wakeup());
  }
  return slots;
}

TEST(SchedulerChanges, ChangeKeepsTheQueuedSlotThenAppliesTheNewInterval) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler s;
  const auto i = s.add("idle", 10s);
  s.start(origin);
  const auto next = grid_slot(origin, "idle", 10s, 0);
  s.change(i, "idle-renamed", 3s);
  EXPECT_EQ(s.name(i), "idle-renamed");
  EXPECT_EQ(s.interval(i), 3s);
  EXPECT_EQ(s.next_wakeup(), next);
  const auto slots = run_until(s, clock, next + 30s);
  ASSERT_GE(slots.at(i).size(), 10U);
  for (std::size_t k = 0; k < slots.at(i).size(); ++k) {
    EXPECT_EQ(slots.at(i)[k], next + static_cast<std::int64_t>(k) * Duration(3s)) << k;
  }
}

TEST(SchedulerChanges, ChangeWhileRunningAppliesTheNewIntervalFromTheRunningSlot) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler s;
  const auto i = s.add("busy", 10s);
  s.start(origin);
  const auto first = grid_slot(origin, "busy", 10s, 0);
  clock.set(first);
  ASSERT_TRUE(s.start_next(clock.now()));
  s.change(i, "busy", 4s);
  clock.advance(9s);  // the slots at +4 s and +8 s passed while it ran
  EXPECT_EQ(s.finish(i, clock.now()), 2U);
  const auto slots = run_until(s, clock, first + 40s);
  ASSERT_GE(slots.at(i).size(), 7U);
  for (std::size_t k = 0; k < slots.at(i).size(); ++k) {
    EXPECT_EQ(slots.at(i)[k], first + static_cast<std::int64_t>(k + 3) * Duration(4s)) << k;
  }
}

TEST(SchedulerChanges, OnceModeWaitsForAddedTargetsAndNotForRemovedOnes) {
  ManualClock clock;
  Scheduler s(true);
  const auto a = s.add("a", 30s);
  const auto b = s.add("b", 30s);
  s.start(clock.now());
  s.remove(b);  // never ran: no longer awaited
  clock.advance(1s);
  const auto c = s.add("c", 30s, clock.now());
  auto x = s.start_next(clock.now());
  auto y = s.start_next(clock.now());
  ASSERT_TRUE(x && y);
  EXPECT_EQ(x->target, a);
  EXPECT_EQ(y->target, c);
  EXPECT_EQ(y->scheduled, clock.now());  // an added target's one slot is when it was added
  EXPECT_FALSE(s.start_next(clock.now()));
  s.finish(a, clock.now());
  EXPECT_FALSE(s.done());
  s.remove(c);  // removed while it runs: done once it finished
  EXPECT_FALSE(s.done());
  s.finish(c, clock.now());
  EXPECT_TRUE(s.done());
}

TEST(SchedulerChanges, ReadySlotsHeldBackDoNotHideTheNextScheduledOne) {
  ManualClock clock;
  const auto origin = clock.now();
  Scheduler s;
  s.add("a", 10s);
  s.add("b", 10s);
  s.start(origin);
  clock.advance(10s);
  ASSERT_EQ(s.poll(clock.now()), 2U);
  EXPECT_LE(*s.next_wakeup(), clock.now());  // something is due
  EXPECT_FALSE(s.next_scheduled());          // nothing else queued
  auto slot = s.start_next(clock.now());
  ASSERT_TRUE(slot);
  s.finish(slot->target, clock.now());
  EXPECT_EQ(s.next_scheduled(), slot->scheduled + 10s);
}

TEST(SchedulerChanges, BadUseIsRefused) {
  ManualClock clock;
  Scheduler s;
  const auto i = s.add("a", 1s);
  EXPECT_THROW(s.change(i, "a", Duration::zero()), std::invalid_argument);
  s.start(clock.now());
  EXPECT_THROW(s.start(clock.now()), std::logic_error);
  EXPECT_THROW(s.add("b", -1s, clock.now()), std::invalid_argument);
  s.remove(i);
  EXPECT_THROW(s.remove(i), std::logic_error);
  EXPECT_THROW(s.change(i, "a", 1s), std::logic_error);
  EXPECT_THROW(s.finish(i, clock.now()), std::logic_error);
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

// Random sequences of add / remove / change / start_next / finish at random fake times, on a
// grid whose origin lies before the start (as a second check loop's), against a model of the
// slot each target is owed: never two overlapping checks of one target, every slot exactly the
// owed one and on the target's grid (origin + offset + k × interval; after a change the kept
// slot + k × the new interval), no slot of a removed target after remove(), lateness ≥ 0 and
// exact, nothing due left waiting below the concurrency limit, next_wakeup() the earliest owed
// slot, skipped slots counted exactly, once mode done exactly when every target finished or
// was removed. Fixed seeds, so a failure repeats.
TEST(SchedulerProperty, RuntimeChangesKeepTheInvariants) {
  using TimePoint = Scheduler::TimePoint;
  struct Model {
    bool exists = false;  // the index is a target's (scheduled, or removed while it runs)
    bool active = false;  // scheduled
    bool running = false;
    bool done = false;  // once mode
    std::string name;
    Duration interval{};
    TimePoint anchor{};             // its grid: anchor + k × interval
    std::optional<TimePoint> owed;  // the slot it waits for (not running, not done)
    TimePoint last{};               // the slot of its running or last check
    std::uint64_t skipped = 0;
  };
  for (std::uint64_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const bool once = rng() % 6 == 0;
    const std::size_t max_in_flight = 1 + rng() % 6;
    ManualClock clock;
    const TimePoint origin = clock.now();
    clock.advance(Duration(static_cast<std::int64_t>(rng() % 10'000'000)));
    Scheduler s(once);
    std::vector<Model> m;
    std::vector<std::string> removed_names;
    auto pick = [&](auto&& pred) -> std::optional<std::size_t> {
      std::vector<std::size_t> candidates;
      for (std::size_t i = 0; i < m.size(); ++i) {
        if (pred(m[i])) {
          candidates.push_back(i);
        }
      }
      if (candidates.empty()) {
        return std::nullopt;
      }
      return candidates[rng() % candidates.size()];
    };
    auto random_interval = [&] {
      return Duration(static_cast<std::int64_t>(1'000 + rng() % 3'000'000));
    };
    // The first slot of `name`'s grid not before `now` (once mode: now).
    auto first_slot = [&](const std::string& name, Duration iv, TimePoint now) {
      if (once) {
        return now;
      }
      TimePoint t = origin + Duration(static_cast<std::int64_t>(
                                 stable_hash(name) % static_cast<std::uint64_t>(iv.count())));
      if (t < now) {
        const std::int64_t ns = std::chrono::nanoseconds(iv).count();
        const std::int64_t behind = std::chrono::nanoseconds(now - t).count();
        t += std::chrono::nanoseconds((behind + ns - 1) / ns * ns);
      }
      return t;
    };
    auto add = [&](TimePoint now, bool before_start) {
      std::string name = "t" + std::to_string(rng());
      if (!removed_names.empty() && rng() % 3 == 0) {
        name = removed_names[rng() % removed_names.size()];
      }
      const Duration iv = random_interval();
      const std::size_t i = before_start ? s.add(name, iv) : s.add(name, iv, now);
      if (i < m.size()) {
        ASSERT_FALSE(m[i].exists) << "index " << i << " given out while in use";
      } else {
        ASSERT_EQ(i, m.size()) << "a new index is the next one";
        m.emplace_back();
      }
      Model& t = m[i];
      t = Model{};
      t.exists = t.active = true;
      t.name = name;
      t.interval = iv;
      t.anchor = once ? now : first_slot(name, iv, origin);
      if (!before_start) {
        t.owed = first_slot(name, iv, now);
      }
    };

    const std::size_t initial = rng() % 10;
    for (std::size_t k = 0; k < initial; ++k) {
      add(clock.now(), true);
    }
    s.start_with_origin(clock.now(), origin, Timestamp{1'700'000'000'000'000});
    for (auto& t : m) {
      t.owed = first_slot(t.name, t.interval, clock.now());
      if (once) {
        t.anchor = clock.now();
      }
    }

    std::uint64_t starts = 0;
    std::uint64_t skipped_total = 0;
    for (int step = 0; step < 1500; ++step) {
      const auto now = clock.now();
      const auto op = rng() % 100;
      if (op < 12) {
        add(now, false);
      } else if (op < 20) {
        if (auto i = pick([](const Model& t) { return t.active; })) {
          s.remove(*i);
          Model& t = m[*i];
          t.active = false;
          t.owed.reset();
          t.exists = t.running;  // a running one's index is freed by finish()
          removed_names.push_back(t.name);
        }
      } else if (op < 28) {
        if (auto i = pick([](const Model& t) { return t.active && !t.done; })) {
          Model& t = m[*i];
          const Duration iv = random_interval();
          const std::string name = rng() % 2 == 0 ? t.name : "t" + std::to_string(rng());
          s.change(*i, name, iv);
          // The grid goes on from the running slot, or from the owed one.
          t.anchor = t.running ? t.last : *t.owed;
          t.interval = iv;
          t.name = name;
        }
      } else if (op < 60) {
        while (s.running_count() < max_in_flight) {
          auto slot = s.start_next(now);
          if (!slot) {
            break;
          }
          const std::size_t i = slot->target;
          ASSERT_LT(i, m.size());
          Model& t = m[i];
          ASSERT_TRUE(t.exists && t.active) << "target " << i << " started after remove";
          ASSERT_FALSE(t.running) << "target " << i << " started while its check runs";
          ASSERT_FALSE(t.done) << "once: target " << i << " started twice";
          ASSERT_TRUE(t.owed.has_value());
          EXPECT_EQ(slot->scheduled, *t.owed) << "target " << i;
          EXPECT_LE(slot->scheduled, now);
          EXPECT_GE(slot->lateness, Duration::zero());
          EXPECT_EQ(slot->lateness, now - slot->scheduled);
          EXPECT_GE(slot->scheduled, t.anchor);
          EXPECT_EQ((slot->scheduled - t.anchor) % t.interval, Duration::zero())
              << "target " << i << " off its grid";
          t.running = true;
          t.last = slot->scheduled;
          t.owed.reset();
          ++starts;
        }
        if (s.running_count() < max_in_flight) {
          for (std::size_t i = 0; i < m.size(); ++i) {
            EXPECT_FALSE(m[i].owed && *m[i].owed <= now) << "target " << i << " due, not started";
          }
        }
      } else if (op < 80) {
        if (auto i = pick([](const Model& t) { return t.running; })) {
          Model& t = m[*i];
          const std::uint64_t skipped = s.finish(*i, now);
          t.running = false;
          std::uint64_t expected = 0;
          if (!t.active) {
            t.exists = false;
          } else if (once) {
            t.done = true;
          } else {
            TimePoint next = t.last + t.interval;
            while (next < now) {
              next += t.interval;
              ++expected;
            }
            t.owed = next;
            t.skipped += expected;
            skipped_total += expected;
          }
          EXPECT_EQ(skipped, expected) << "target " << *i;
        }
      } else {
        const auto how = rng() % 3;
        const auto wake = s.next_wakeup();
        if (how == 0 && wake) {
          clock.set(*wake);
        } else {
          clock.advance(
              Duration(static_cast<std::int64_t>(rng() % (how == 1 ? 2'000U : 2'000'000U))));
        }
      }
      // Agreement with the model after every step.
      std::optional<TimePoint> earliest;
      std::size_t running = 0;
      std::size_t active = 0;
      bool all_done = true;
      for (const auto& t : m) {
        if (t.owed) {
          earliest = earliest ? std::min(*earliest, *t.owed) : *t.owed;
        }
        running += t.running ? 1 : 0;
        active += t.active ? 1 : 0;
        all_done = all_done && (!t.exists || t.done);
      }
      ASSERT_EQ(s.next_wakeup(), earliest) << "step " << step;
      ASSERT_EQ(s.running_count(), running);
      ASSERT_EQ(s.active_count(), active);
      ASSERT_EQ(s.done(), once && all_done);
    }
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (m[i].exists) {
        EXPECT_EQ(s.skipped(i), m[i].skipped) << "target " << i;
      }
    }
    EXPECT_EQ(s.skipped(), skipped_total);
    EXPECT_GT(starts, 0U);
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
