// Check scheduling shared by every check plugin (http_check, tcp_check, dns_check and
// third-party checks): an interval grid per target with spread start offsets, no overlap,
// lateness, sharding and run-once mode. Pure logic, no threads, no clock of its own: every
// call takes `now`, so tests drive it with a fake clock (sdk::testing::ManualClock).
//
//   sdk::Scheduler sched(once);
//   for (const auto& t : targets) sched.add(t.name, t.interval);
//   sched.start(steady_clock::now());
//   loop:
//     while (in_flight < max && (auto s = sched.start_next(steady_clock::now())))
//       begin the check of s->target; remember s (scheduled, lateness)
//     when a check of target i ends:  sched.finish(i, steady_clock::now());
//     sleep until sched.next_wakeup() (or an I/O event); stop when sched.done()
//
// Targets may change while it runs (a reloaded list): sched.add(name, interval, now),
// sched.remove(i), sched.change(i, name, interval). Threads that each run a Scheduler share
// one grid when each starts with sched.start_with_origin(now, origin, wall_origin) (http_check
// runs one per check loop).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webmon/sdk/record.hpp"

namespace webmon::sdk {

/// Deterministic 64-bit hash of a target name: FNV-1a followed by a final avalanche (so similar
/// names spread evenly). Used for start offsets and sharding; identical to http_check's, so a
/// target keeps its shard and its slot when it moves between check plugins or agent versions.
constexpr std::uint64_t stable_hash(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33U;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33U;
  return h;
}

/// `shard: {index, count}`: this agent checks the targets whose name hashes to `index` modulo
/// `count`. Several agents with the same target list and `count`, and indexes 0 … count−1,
/// check every target exactly once.
struct Shard {
  std::int64_t index = 0;
  std::int64_t count = 1;

  /// Throws std::invalid_argument unless 1 <= count and 0 <= index < count.
  void check() const {
    if (count < 1) {
      throw std::invalid_argument("option 'shard.count' must be 1 or more");
    }
    if (index < 0 || index >= count) {
      throw std::invalid_argument("option 'shard.index' must be between 0 and count - 1 (" +
                                  std::to_string(count - 1) + ")");
    }
  }
  /// True when the target `name` belongs to this shard.
  [[nodiscard]] bool contains(std::string_view name) const noexcept {
    return count <= 1 || stable_hash(name) % static_cast<std::uint64_t>(count) ==
                             static_cast<std::uint64_t>(index);
  }
};

/// Keeps the items whose name (`name_of(item)`) belongs to `shard`, in their order.
template <typename T, typename NameOf>
std::vector<T> filter_shard(std::vector<T> items, const Shard& shard, NameOf name_of) {
  std::vector<T> out;
  out.reserve(items.size() / static_cast<std::size_t>(std::max<std::int64_t>(shard.count, 1)) + 1);
  for (auto& item : items) {
    if (shard.contains(std::string_view(name_of(item)))) {
      out.push_back(std::move(item));
    }
  }
  return out;
}

/// The schedule of a set of targets.
///
/// Target i runs at origin + offset_i + k × interval_i (k = 0, 1, …), where origin is the time
/// given to start() (or start_with_origin()) and offset_i = stable_hash(name_i) mod interval_i:
/// first slots are spread over the interval, deterministic, and the grid never drifts. A due
/// slot waits in FIFO order (due time, then target index) until the caller takes it with
/// start_next(); lateness is the time between the slot and that call. A target is never started
/// again while its check runs: its next slot is computed by finish(), and grid slots that passed
/// while it ran are skipped and counted. In `once` mode every target gets one slot at start
/// (no spread) and done() turns true when all have finished.
///
/// Targets can come and go while it runs (a reloaded target list): add(name, interval, now)
/// after start, remove() (also while the target's check runs) and change() (new interval or
/// name; the next slot stays, the new interval applies from there). Several schedulers started
/// with the same origin (one per thread, say) share one grid: a target runs on the same slots
/// whichever scheduler has it and whenever it was added.
class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = std::chrono::microseconds;

  /// A check to begin now: which target, the slot it belongs to, and how late it starts.
  struct Slot {
    std::size_t target = 0;  ///< index returned by add()
    TimePoint scheduled{};   ///< the grid slot (record it as the check's time)
    Duration lateness{};     ///< now − scheduled at start_next(), never negative
  };

  explicit Scheduler(bool once = false) : once_(once) {}

  /// Adds a target (before start()); returns its index (0, 1, …). The interval must be > 0.
  std::size_t add(std::string_view name, Duration interval) {
    if (started_) {
      throw std::logic_error("Scheduler::add after start");
    }
    return add(name, interval, TimePoint{});
  }

  /// Adds a target at any time; returns its index. Before start() it is add(name, interval)
  /// (`now` is not used). After start() its first slot is the first slot of its grid (origin +
  /// offset + k × interval, k ≥ 0) not before `now` — a target removed and added again with the
  /// same name and interval keeps its slots; in once mode its one slot is `now` and done() waits
  /// for it too. Indexes of removed targets are reused (the most recently freed first): an
  /// index means the same target from add() until remove() (or, when removed while its check
  /// ran, until that check's finish()). The interval must be > 0.
  std::size_t add(std::string_view name, Duration interval, TimePoint now) {
    check_interval(name, interval);
    std::size_t i = targets_.size();
    if (free_.empty()) {
      targets_.emplace_back();
    } else {
      i = free_.back();
      free_.pop_back();
    }
    State& st = targets_[i];
    const std::uint64_t gen = st.gen + 1;  // queued slots of an earlier target stay stale
    st = State{};
    st.name = std::string(name);
    st.interval = interval;
    st.gen = gen;
    st.active = true;
    ++active_;
    ++unfinished_;
    if (started_) {
      schedule_first(i, now);
    }
    return i;
  }

  /// Stops scheduling `target`: its queued or due slot is dropped and start_next() never returns
  /// it again. When its check runs, the caller still calls finish() for it, which then schedules
  /// nothing, returns 0 and frees the index; otherwise the index is free at once. In once mode a
  /// removed target no longer holds done() back. Throws std::logic_error when the target is not
  /// scheduled (never added, or already removed).
  void remove(std::size_t target) {
    State& st = active_state(target, "remove");
    st.active = false;
    ++st.gen;  // its queued slot is stale
    --active_;
    if (st.in_ready) {
      st.in_ready = false;
      ++stale_ready_;
    }
    if (!st.running) {
      release(target);
    }
    drop_stale();
  }

  /// Gives `target` a new name and interval (> 0). Its next slot stays as it is — the queued
  /// one, or, while its check runs, the one finish() computes from the running slot — and the
  /// new interval applies from there: its slots are then that slot + k × interval (k = 0, 1, …,
  /// skipping slots that pass while a check runs, as always). The offset is not recomputed.
  /// Throws std::logic_error when the target is not scheduled.
  void change(std::size_t target, std::string_view name, Duration interval) {
    check_interval(name, interval);
    State& st = active_state(target, "change");
    st.name = std::string(name);
    st.interval = interval;
  }

  /// Places every target's first slot; `wall_now` is the wall-clock time matching `now`
  /// (wall_of() converts slots with it). The grid's origin is `now`.
  void start(TimePoint now, Timestamp wall_now = Timestamp{wall_micros_now()}) {
    start_with_origin(now, now, wall_now);
  }

  /// Starts at `now` on the grid of `origin` (≤ now; `wall_origin` is the wall-clock time
  /// matching `origin`): each target's first slot is the first slot of its grid (origin +
  /// offset + k × interval, k ≥ 0) not before `now`; in once mode every target's one slot is
  /// `now`. Schedulers started with the same origin share one grid, so a target keeps its slots
  /// when it moves from one to another. start(now, wall) is start_with_origin(now, now, wall).
  /// Throws std::logic_error when already started.
  void start_with_origin(TimePoint now, TimePoint origin, Timestamp wall_origin) {
    if (started_) {
      throw std::logic_error("Scheduler::start called twice");
    }
    started_ = true;
    origin_ = origin;
    wall_origin_ = wall_origin;
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      if (targets_[i].active) {
        schedule_first(i, now);
      }
    }
  }

  /// The offset of target i's grid after the origin, from its current name and interval (0 in
  /// once mode).
  [[nodiscard]] Duration first_offset(std::size_t i) const {
    if (once_) {
      return Duration::zero();
    }
    const auto interval = static_cast<std::uint64_t>(targets_.at(i).interval.count());
    return Duration(static_cast<Duration::rep>(stable_hash(targets_[i].name) % interval));
  }

  /// Moves the slots due at `now` to the ready queue; returns how many slots are due and
  /// waiting to be started (checks delayed by a concurrency limit show up here).
  std::size_t poll(TimePoint now) {
    while (!heap_.empty() && heap_.top().at <= now) {
      const Due d = heap_.top();
      heap_.pop();
      if (live(d)) {
        targets_[d.target].in_ready = true;
        ready_.push_back(d);
      }
    }
    drop_stale();
    return ready_count();
  }

  /// Takes the oldest due slot and marks its target running, or nullopt when none is due.
  std::optional<Slot> start_next(TimePoint now) {
    poll(now);
    if (ready_.empty()) {
      return std::nullopt;
    }
    const Due d = ready_.front();
    ready_.pop_front();
    State& st = targets_[d.target];
    st.in_ready = false;
    st.running = true;
    ++running_;
    const auto late = std::max(Duration::zero(), std::chrono::duration_cast<Duration>(now - d.at));
    st.last_scheduled = d.at;
    drop_stale();
    return Slot{d.target, d.at, late};
  }

  /// The check of `target` (started by start_next) ended at `now`: schedules its next slot,
  /// the first grid slot not before `now`, and returns how many slots it skipped (slots that
  /// passed while the check ran). In once mode the target is done instead. A target removed
  /// while its check ran is not scheduled again (returns 0) and its index is freed.
  std::uint64_t finish(std::size_t target, TimePoint now) {
    State& st = targets_.at(target);
    if (!st.running) {
      throw std::logic_error("Scheduler::finish: target is not running");
    }
    st.running = false;
    --running_;
    if (!st.active) {
      release(target);
      return 0;
    }
    if (once_) {
      st.done = true;
      --unfinished_;
      return 0;
    }
    auto next = st.last_scheduled + st.interval;
    std::uint64_t behind = 0;
    if (next < now) {
      behind = static_cast<std::uint64_t>((now - next) / st.interval) + 1;
      next += static_cast<Duration::rep>(behind) * st.interval;
      st.skipped += behind;
      skipped_ += behind;
    }
    heap_.push(Due{next, target, st.gen});
    return behind;
  }

  /// When the next slot falls due: now-or-earlier when one is ready, nullopt when nothing is
  /// scheduled (every target running, or once mode finished).
  [[nodiscard]] std::optional<TimePoint> next_wakeup() const {
    if (!ready_.empty()) {
      return ready_.front().at;
    }
    return next_scheduled();
  }

  /// The earliest slot not yet due at the last poll() (nullopt when none): a caller that keeps
  /// due slots waiting (a concurrency limit) sleeps until this one, not until next_wakeup().
  [[nodiscard]] std::optional<TimePoint> next_scheduled() const {
    if (heap_.empty()) {
      return std::nullopt;
    }
    return heap_.top().at;
  }

  /// How many due slots wait to be started (as poll() returned).
  [[nodiscard]] std::size_t ready_count() const noexcept { return ready_.size() - stale_ready_; }

  /// Once mode: every target has finished its one check. Never true otherwise.
  [[nodiscard]] bool done() const noexcept { return once_ && started_ && unfinished_ == 0; }
  [[nodiscard]] bool once() const noexcept { return once_; }
  [[nodiscard]] bool started() const noexcept { return started_; }
  [[nodiscard]] bool running(std::size_t target) const { return targets_.at(target).running; }
  [[nodiscard]] std::size_t running_count() const noexcept { return running_; }
  /// One more than the highest index add() returned (indexes of removed targets included).
  [[nodiscard]] std::size_t size() const noexcept { return targets_.size(); }
  /// True from add() to remove() of `target`.
  [[nodiscard]] bool active(std::size_t target) const { return targets_.at(target).active; }
  /// How many targets are scheduled (added and not removed).
  [[nodiscard]] std::size_t active_count() const noexcept { return active_; }
  [[nodiscard]] const std::string& name(std::size_t target) const {
    return targets_.at(target).name;
  }
  [[nodiscard]] Duration interval(std::size_t target) const { return targets_.at(target).interval; }
  /// Slots skipped because the target's previous check still ran: in total, per target (since
  /// its add()).
  [[nodiscard]] std::uint64_t skipped() const noexcept { return skipped_; }
  [[nodiscard]] std::uint64_t skipped(std::size_t target) const {
    return targets_.at(target).skipped;
  }
  [[nodiscard]] TimePoint origin() const noexcept { return origin_; }

  /// The wall-clock time (UTC µs) of a steady time point, relative to the origin's pair.
  [[nodiscard]] Timestamp wall_of(TimePoint t) const noexcept {
    return Timestamp{wall_origin_.micros +
                     std::chrono::duration_cast<std::chrono::microseconds>(t - origin_).count()};
  }

 private:
  struct State {
    std::string name;
    Duration interval{};
    TimePoint last_scheduled{};
    std::uint64_t gen = 0;  // a queued slot of another generation is stale
    std::uint64_t skipped = 0;
    bool active = false;    // added and not removed
    bool running = false;   // started, not finished
    bool done = false;      // once mode: finished its check
    bool in_ready = false;  // its (live) slot waits in ready_
  };
  struct Due {
    TimePoint at;
    std::size_t target = 0;
    std::uint64_t gen = 0;
    friend bool operator>(const Due& a, const Due& b) noexcept {
      return a.at != b.at ? a.at > b.at : a.target > b.target;
    }
  };

  static std::int64_t wall_micros_now() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static void check_interval(std::string_view name, Duration interval) {
    if (interval <= Duration::zero()) {
      throw std::invalid_argument("interval of target '" + std::string(name) +
                                  "' must be greater than 0");
    }
  }

  State& active_state(std::size_t target, const char* what) {
    State& st = targets_.at(target);
    if (!st.active) {
      throw std::logic_error(std::string("Scheduler::") + what + ": target is not scheduled");
    }
    return st;
  }

  // The first slot of target i's grid not before `now` (once mode: `now`).
  void schedule_first(std::size_t i, TimePoint now) {
    State& st = targets_[i];
    TimePoint first = now;
    if (!once_) {
      first = origin_ + first_offset(i);
      if (first < now) {
        first += ((now - first) / st.interval) * st.interval;
        if (first < now) {
          first += st.interval;
        }
      }
    }
    heap_.push(Due{first, i, st.gen});
  }

  [[nodiscard]] bool live(const Due& d) const noexcept {
    const State& st = targets_[d.target];
    return st.active && !st.running && st.gen == d.gen;
  }

  // Removed targets' slots at the front of the queues go, so that next_wakeup() and
  // next_scheduled() name live slots (deeper ones are dropped when they come up).
  void drop_stale() {
    while (!heap_.empty() && !live(heap_.top())) {
      heap_.pop();
    }
    while (!ready_.empty() && !live(ready_.front())) {
      ready_.pop_front();
      --stale_ready_;
    }
  }

  // The index is free for add(); in once mode the target no longer holds done() back.
  void release(std::size_t target) {
    State& st = targets_[target];
    if (!st.done) {
      --unfinished_;
    }
    const std::uint64_t gen = st.gen;
    st = State{};
    st.gen = gen;
    free_.push_back(target);
  }

  bool once_ = false;
  bool started_ = false;
  TimePoint origin_{};
  Timestamp wall_origin_{};
  std::vector<State> targets_;
  std::vector<std::size_t> free_;  // indexes of removed targets, for add()
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap_;
  std::deque<Due> ready_;
  std::size_t stale_ready_ = 0;  // entries of removed targets still in ready_
  std::size_t running_ = 0;
  std::size_t active_ = 0;
  std::size_t unfinished_ = 0;  // active or running targets not done (once mode: done())
  std::uint64_t skipped_ = 0;
};

}  // namespace webmon::sdk
