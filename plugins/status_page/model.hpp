// The status page's state: per target the latest check, the last error, the certificate's
// expiry, hourly uptime buckets for 7 days and the last N response times. Plain C++ (no SDK
// types), so the plugin wrapper stays a thin adapter. Memory per target is fixed (see
// README.md: about 2.5 KiB with the defaults).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace webmon::plugins::status_page {

constexpr std::int64_t kHourMicros = 3'600'000'000LL;
constexpr std::int64_t kDayMicros = 24 * kHourMicros;
/// Hourly buckets kept per target: 7 days.
constexpr std::size_t kBucketCount = 168;

/// One check result as the model needs it. Views into the caller's strings: valid only for
/// the duration of StatusModel::apply().
struct Check {
  std::string_view target;
  std::int64_t time_us = 0;  ///< when the check ran, UTC µs
  bool success = false;
  double response_time_ms = 0;
  std::string_view url;            ///< may contain credentials: stored without them
  std::string_view group;          ///< value of the grouping label ("" = none)
  std::string_view error;          ///< error class ("" = none)
  std::string_view error_message;  ///< "" = none
  int status_code = 0;             ///< 0 = no HTTP response
  std::optional<std::int64_t> cert_not_after_us;
};

/// Checks and failures in one UTC hour.
struct Bucket {
  std::int32_t hour = -1;  ///< hours since the Unix epoch; -1 = empty
  std::uint32_t checks = 0;
  std::uint32_t failures = 0;
};

/// One sparkline point.
struct Sample {
  float ms = 0;
  bool ok = false;
};

/// Everything kept about one target.
struct TargetState {
  std::string name;
  std::string url;
  std::string group;
  std::uint64_t checks = 0;  ///< applied since the target was first seen
  std::int64_t last_time_us = 0;
  bool last_success = false;
  int last_status = 0;
  double last_ms = 0;
  std::int64_t last_error_time_us = 0;  ///< 0 = never failed
  std::string last_error;
  std::string last_error_message;
  std::int64_t cert_not_after_us = 0;  ///< 0 = unknown
  std::array<Bucket, kBucketCount> buckets{};
  std::vector<Sample> samples;  ///< ring of capacity `sample_capacity`
  std::uint32_t sample_next = 0;
  std::uint32_t sample_count = 0;

  /// Appends a sample to the ring.
  void push_sample(Sample s, std::size_t capacity);
  /// The samples, oldest first.
  [[nodiscard]] std::vector<Sample> ordered_samples() const;
};

enum class State : std::uint8_t { up, down, flapping, stale };
const char* to_string(State s) noexcept;

/// One target as the page shows it (a copy, so rendering needs no lock).
struct TargetView {
  std::string name;
  std::string url;
  std::string group;
  State state = State::up;
  std::int64_t last_time_us = 0;
  int last_status = 0;
  double last_ms = 0;
  std::optional<double> uptime_24h;  ///< percent; nullopt = no checks in the window
  std::optional<double> uptime_7d;
  std::vector<Sample> samples;             ///< oldest first
  std::vector<std::optional<double>> bar;  ///< uptime per hour, oldest first; nullopt = none
  std::int64_t bar_start_hour = 0;         ///< hour index of bar[0]
  std::int64_t last_error_time_us = 0;
  std::string last_error;
  std::string last_error_message;
  std::optional<std::int64_t> cert_days_left;
};

struct ModelOptions {
  std::size_t sample_capacity = 60;  ///< sparkline points per target
  std::size_t max_targets = 100'000;
  std::size_t max_error_chars = 300;  ///< longer error messages are cut
  std::size_t bar_hours = 24;         ///< uptime bar periods (hours, ≤ kBucketCount)
  std::int64_t stale_after_us = 10 * 60 * 1'000'000LL;
  int flap_transitions = 4;  ///< up↔down changes among the samples that make "flapping"
};

/// What apply() did with a check.
enum class Applied : std::uint8_t { applied, new_target, too_many_targets };

/// The in-memory state of every target. Not thread-safe: the caller locks.
class StatusModel {
 public:
  explicit StatusModel(ModelOptions options);

  Applied apply(const Check& check);

  /// Every target as shown at `now_us`, in no particular order.
  [[nodiscard]] std::vector<TargetView> view(std::int64_t now_us) const;

  [[nodiscard]] std::size_t size() const noexcept { return targets_.size(); }
  [[nodiscard]] const ModelOptions& options() const noexcept { return options_; }

  /// For snapshots: every target's state.
  [[nodiscard]] std::vector<const TargetState*> states() const;
  /// For snapshot restore: adds (or replaces) a target; its samples are cut to capacity.
  void restore(TargetState state);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  [[nodiscard]] TargetView make_view(const TargetState& t, std::int64_t now_us) const;

  ModelOptions options_;
  std::unordered_map<std::string, TargetState, Hash, std::equal_to<>> targets_;
};

/// Hours since the epoch for a time in µs (floor).
std::int64_t hour_of(std::int64_t time_us) noexcept;

/// Uptime percent over the hours (now_hour - hours, now_hour] of the buckets, or nullopt
/// when no check falls in that window.
std::optional<double> uptime(const std::array<Bucket, kBucketCount>& buckets, std::int64_t now_hour,
                             std::int64_t hours) noexcept;

/// `url` without user name and password ("https://u:p@host/" → "https://host/"); also
/// applied to free text (error messages may quote URLs).
std::string strip_credentials(std::string_view text);

}  // namespace webmon::plugins::status_page
