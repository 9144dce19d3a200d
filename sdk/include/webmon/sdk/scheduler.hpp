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
/// given to start() and offset_i = stable_hash(name_i) mod interval_i: first slots are spread
/// over the interval, deterministic, and the grid never drifts. A due slot waits in FIFO order
/// (due time, then target index) until the caller takes it with start_next(); lateness is the
/// time between the slot and that call. A target is never started again while its check runs:
/// its next slot is computed by finish(), and grid slots that passed while it ran are skipped
/// and counted. In `once` mode every target gets one slot at the origin (no spread) and done()
/// turns true when all have finished.
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
    if (interval <= Duration::zero()) {
      throw std::invalid_argument("interval of target '" + std::string(name) +
                                  "' must be greater than 0");
    }
    targets_.push_back(State{std::string(name), interval, {}, false, false, 0});
    return targets_.size() - 1;
  }

  /// Places every target's first slot; `wall_now` is the wall-clock time matching `now`
  /// (wall_of() converts slots with it).
  void start(TimePoint now, Timestamp wall_now = Timestamp{wall_micros_now()}) {
    started_ = true;
    origin_ = now;
    wall_origin_ = wall_now;
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      heap_.emplace(now + first_offset(i), i);
    }
    unfinished_ = targets_.size();
  }

  /// The offset of target i's first slot after the origin (0 in once mode).
  [[nodiscard]] Duration first_offset(std::size_t i) const {
    if (once_) {
      return Duration::zero();
    }
    const auto interval = static_cast<std::uint64_t>(targets_[i].interval.count());
    return Duration(static_cast<Duration::rep>(stable_hash(targets_[i].name) % interval));
  }

  /// Moves the slots due at `now` to the ready queue; returns how many slots are due and
  /// waiting to be started (checks delayed by a concurrency limit show up here).
  std::size_t poll(TimePoint now) {
    while (!heap_.empty() && heap_.top().first <= now) {
      ready_.push_back(heap_.top());
      heap_.pop();
    }
    return ready_.size();
  }

  /// Takes the oldest due slot and marks its target running, or nullopt when none is due.
  std::optional<Slot> start_next(TimePoint now) {
    poll(now);
    if (ready_.empty()) {
      return std::nullopt;
    }
    const auto [due, idx] = ready_.front();
    ready_.pop_front();
    State& st = targets_[idx];
    st.running = true;
    ++running_;
    const auto late = std::max(Duration::zero(), std::chrono::duration_cast<Duration>(now - due));
    st.last_scheduled = due;
    return Slot{idx, due, late};
  }

  /// The check of `target` (started by start_next) ended at `now`: schedules its next slot,
  /// the first grid slot not before `now`, and returns how many slots it skipped (slots that
  /// passed while the check ran). In once mode the target is done instead.
  std::uint64_t finish(std::size_t target, TimePoint now) {
    State& st = targets_.at(target);
    if (!st.running) {
      throw std::logic_error("Scheduler::finish: target is not running");
    }
    st.running = false;
    --running_;
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
    heap_.emplace(next, target);
    return behind;
  }

  /// When the next slot falls due: now-or-earlier when one is ready, nullopt when nothing is
  /// scheduled (every target running, or once mode finished).
  [[nodiscard]] std::optional<TimePoint> next_wakeup() const {
    if (!ready_.empty()) {
      return ready_.front().first;
    }
    if (heap_.empty()) {
      return std::nullopt;
    }
    return heap_.top().first;
  }

  /// Once mode: every target has finished its one check. Never true otherwise.
  [[nodiscard]] bool done() const noexcept { return once_ && started_ && unfinished_ == 0; }
  [[nodiscard]] bool once() const noexcept { return once_; }
  [[nodiscard]] bool running(std::size_t target) const { return targets_.at(target).running; }
  [[nodiscard]] std::size_t running_count() const noexcept { return running_; }
  [[nodiscard]] std::size_t size() const noexcept { return targets_.size(); }
  [[nodiscard]] const std::string& name(std::size_t target) const {
    return targets_.at(target).name;
  }
  [[nodiscard]] Duration interval(std::size_t target) const { return targets_.at(target).interval; }
  /// Slots skipped because the target's previous check still ran: in total, per target.
  [[nodiscard]] std::uint64_t skipped() const noexcept { return skipped_; }
  [[nodiscard]] std::uint64_t skipped(std::size_t target) const {
    return targets_.at(target).skipped;
  }
  [[nodiscard]] TimePoint origin() const noexcept { return origin_; }

  /// The wall-clock time (UTC µs) of a steady time point, relative to start()'s pair.
  [[nodiscard]] Timestamp wall_of(TimePoint t) const noexcept {
    return Timestamp{wall_origin_.micros +
                     std::chrono::duration_cast<std::chrono::microseconds>(t - origin_).count()};
  }

 private:
  struct State {
    std::string name;
    Duration interval{};
    TimePoint last_scheduled{};
    bool running = false;
    bool done = false;
    std::uint64_t skipped = 0;
  };
  using Due = std::pair<TimePoint, std::size_t>;

  static std::int64_t wall_micros_now() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  bool once_ = false;
  bool started_ = false;
  TimePoint origin_{};
  Timestamp wall_origin_{};
  std::vector<State> targets_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap_;
  std::deque<Due> ready_;
  std::size_t running_ = 0;
  std::size_t unfinished_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace webmon::sdk
