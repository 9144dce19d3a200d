// The alert state machine, free of the SDK's plumbing: per (kind, target) it follows
// ok → failing → firing → resolved from check results and decides which notifications to
// send. Time is an input (each result's own time); nothing here reads a clock, so tests
// drive it with any sequence of results and times.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "webmon/sdk/record.hpp"

namespace webmon::plugins::alert {

/// Thresholds of one target (the defaults, a per-target override or label values).
struct Thresholds {
  int failure = 3;        ///< consecutive failed checks before a location counts as failing
  int success = 2;        ///< consecutive successful checks before it counts as ok again
  int min_locations = 1;  ///< failing locations needed to fire
};

/// One time window during which notifications are held back (state is kept).
struct Silence {
  sdk::Timestamp start;
  sdk::Timestamp end;                ///< exclusive
  std::vector<std::string> targets;  ///< exact names, or a prefix ending in '*'; empty = any
  std::map<std::string, std::string> labels;  ///< every one must match; empty = any
  [[nodiscard]] bool matches(std::string_view target, const sdk::Labels& labels,
                             sdk::Timestamp at) const;
};

struct EngineConfig {
  Thresholds defaults;
  std::chrono::milliseconds repeat_interval{0};  ///< 0 = notify once per incident
  /// A location with no result for this long (in record time, against the target's newest
  /// result) no longer counts towards min_locations; 0 = never expires.
  std::chrono::milliseconds location_expiry{0};
  std::vector<Silence> silences;
};

/// One check result, as the engine sees it (views into the record; valid during observe()).
struct Observation {
  std::string_view kind;
  std::string_view target;
  std::string_view location;  ///< the record's agent ("" when it has none)
  bool success = false;
  sdk::Timestamp time;
  const std::string* error = nullptr;
  const std::string* error_message = nullptr;
  std::optional<std::int64_t> status_code;
  const sdk::Labels* labels = nullptr;
  Thresholds thresholds;  ///< already resolved for this target
};

/// A notification decided by the engine.
struct Notification {
  std::string check_kind;
  std::string target;
  bool firing = true;  ///< false: resolved
  bool repeat = false;
  std::string incident_id;
  sdk::Timestamp since;  ///< first failed check of the incident
  sdk::Timestamp at;     ///< time of the result that caused it
  std::int64_t consecutive_failures = 0;
  std::int64_t locations_failing = 0;
  std::optional<std::string> last_error;
  std::optional<std::string> last_error_message;
  std::optional<std::int64_t> last_status_code;
};

/// Per-location counters of one target.
struct LocationState {
  std::string name;
  std::int32_t consecutive_failures = 0;
  std::int32_t consecutive_successes = 0;
  bool failing = false;
  sdk::Timestamp last_seen;
  sdk::Timestamp first_failure;  ///< of the current streak
};

/// Everything kept per (kind, target).
struct TargetState {
  std::vector<LocationState> locations;
  bool firing = false;
  bool notified = false;  ///< a `firing` was sent for this incident
  std::string incident_id;
  sdk::Timestamp since;
  sdk::Timestamp last_notified;
  std::optional<std::string> last_error;
  std::optional<std::string> last_error_message;
  std::optional<std::int64_t> last_status_code;
  std::int64_t peak_failures = 0;  ///< most consecutive failures seen in this incident
  /// True when nothing worth keeping (no failures, not firing): may be forgotten.
  [[nodiscard]] bool idle() const noexcept;
};

class Engine {
 public:
  using IdFactory = std::function<std::string(sdk::Timestamp)>;

  explicit Engine(EngineConfig config, IdFactory make_id = {});

  /// Feeds one result; appends the notifications it causes to `out`. Returns whether the
  /// persistent state changed in a way worth saving at once (a firing or resolved decision).
  bool observe(const Observation& o, std::vector<Notification>& out);

  /// Targets tracked (idle ones are forgotten).
  [[nodiscard]] std::size_t tracked() const noexcept;

  /// Whole state, for saving: kind → target → state.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using TargetMap = std::unordered_map<std::string, TargetState, Hash, std::equal_to<>>;
  [[nodiscard]] const std::map<std::string, TargetMap, std::less<>>& state() const noexcept {
    return kinds_;
  }
  /// Replaces one target's state (loading a saved file).
  void restore(const std::string& kind, const std::string& target, TargetState state);

 private:
  EngineConfig config_;
  IdFactory make_id_;
  std::map<std::string, TargetMap, std::less<>> kinds_;
};

/// Parses an RFC 3339 UTC time ("2026-12-24T18:00:00Z", optional fraction, optional
/// "+hh:mm" offset). nullopt when malformed.
std::optional<sdk::Timestamp> parse_rfc3339(std::string_view s);

}  // namespace webmon::plugins::alert
