// CheckSource: the smallest complete check plugin. A source that checks targets on the shared
// schedule (scheduler.hpp: interval grid with spread first slots, no overlap, skipped slots,
// lateness, once) and emits one record per check, of a kind the plugin declares. The plugin
// adds its targets and implements check(), which fills in the record's fields; the base runs
// the schedule loop and makes and emits the records.
//
//   constexpr sdk::KindSpec kKinds[] = {sdk::make_kind("ping", 1, kFields, "target", "...")};
//   class Ping final : public sdk::CheckSource {
//    public:
//     Ping(const sdk::ConfigNode& config, sdk::Context&)
//         : CheckSource(kKinds[0]), o_(sdk::load_options<Options>(config, kOptions)) {
//       add_target(o_.host, o_.interval);          // in the constructor or on_start()
//     }
//    protected:
//     void check(const Due& due, sdk::Record& r) override {
//       r.add("success", ping(o_.host));           // r has kind, id, time and "target"
//     }
//   };
//
// on_run() starts the schedule and, until a stop is requested (or, in once mode, every target
// was checked), for each due slot makes a record of the kind (id, `time` = the slot's
// wall-clock time, the kind's key field = the target's name), calls check(), then
// Scheduler::finish(), then emits the record with emit_one() (which waits while the buffers
// are full), and sleeps in ctx().wait_for_stop() until the next slot, so a stop ends the wait
// at once. Checks run one
// after another on the run() thread: a slow check makes the others late and skips its own
// slots that passed while it ran. A plugin with many targets or long checks runs them
// concurrently with the Scheduler directly instead (as tcp_check and dns_check do).
// Counters: `checks` (checks run) and `checks_skipped_overlap` (slots skipped). An exception
// thrown by check() ends run() with that error (the host logs it).
// Header-only: compiled into the plugin, no part of the ABI.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "webmon/sdk/kind.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "webmon/sdk/record.hpp"
#include "webmon/sdk/scheduler.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::sdk {

/// The options of `shard: {index, count}` (bound to sdk::Shard), for a check plugin's table:
///   {.name = "shard", .type = OptionType::object, ..., .children = sdk::kShardOptions,
///    .child_count = std::size(sdk::kShardOptions),
///    .assign = sdk::bind_object<&Options::shard, sdk::kShardOptions>()}
/// then `o.shard.check()` and sdk::filter_shard() (scheduler.hpp).
inline constexpr OptionSpec kShardOptions[] = {
    option<&Shard::index>("index", "this agent's shard, 0 <= index < count",
                          {.required = true, .min = "0"}),
    option<&Shard::count>("count", "number of shards the target list is split into",
                          {.required = true, .min = "1"}),
};

class CheckSource : public Source {
 public:
  /// One check to run now.
  struct Due {
    std::size_t target = 0;                ///< index returned by add_target()
    std::string name;                      ///< the target's name
    Timestamp time{};                      ///< the slot's wall-clock time (the record's `time`)
    std::chrono::microseconds lateness{};  ///< how late the check starts (≥ 0)
  };

 protected:
  /// `kind`: the kind of the records (a declaration the plugin also lists in its descriptor's
  /// emits(); its name and key field are copied).
  explicit CheckSource(const KindSpec& kind)
      : kind_(kind.name), key_field_(kind.key_field != nullptr ? kind.key_field : "") {}

  /// Adds a target checked every `interval` (> 0); returns its index. Call before run().
  std::size_t add_target(std::string name, std::chrono::microseconds interval) {
    targets_.emplace_back(std::move(name), interval);
    return targets_.size() - 1;
  }
  /// Once mode: every target is checked once, at the start; then run() returns.
  void set_once(bool once) noexcept { once_ = once; }

  /// Runs one check of `due.target` and adds its results to `record`, which already has the
  /// kind, a new id, `time` = due.time and the key field (when the kind has one) = due.name.
  virtual void check(const Due& due, Record& record) = 0;

  Status on_run() override {
    using Clock = Scheduler::Clock;
    Scheduler sched(once_);
    for (const auto& [name, interval] : targets_) {
      sched.add(name, interval);
    }
    sched.start(Clock::now());
    Counter& checks = ctx().counter("checks");
    Counter& skipped = ctx().counter("checks_skipped_overlap");
    while (!ctx().stop_requested() && !sched.done()) {
      if (auto slot = sched.start_next(Clock::now())) {
        const Due due{slot->target, sched.name(slot->target), sched.wall_of(slot->scheduled),
                      slot->lateness};
        Record record = make_record(kind_, due.time);
        if (!key_field_.empty()) {
          record.add(key_field_, due.name);
        }
        check(due, record);
        checks.add();
        skipped.add(sched.finish(slot->target, Clock::now()));
        (void)emit_one(ctx(), emitter(), std::move(record));
        continue;
      }
      // Nothing due: sleep until the next slot (no targets: until the stop).
      const auto wake = sched.next_wakeup();
      const auto wait = wake ? std::chrono::ceil<std::chrono::milliseconds>(*wake - Clock::now())
                             : std::chrono::milliseconds(std::chrono::hours(1));
      (void)ctx().wait_for_stop(std::max(wait, std::chrono::milliseconds::zero()));
    }
    return Status::ok();
  }

 private:
  std::string kind_;
  std::string key_field_;
  std::vector<std::pair<std::string, std::chrono::microseconds>> targets_;
  bool once_ = false;
};

}  // namespace webmon::sdk
