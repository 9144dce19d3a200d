// Rebuilds the status page's history from postgres_sink's table at start: hourly counts for
// 7 days, each target's latest check, last error and last N response times
// (webmon.http_check; per-target queries use its (target, time) indexes). libpq, read only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "model.hpp"

namespace webmon::plugins::status_page {

class HistoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HistorySource {
  std::string conninfo;           ///< libpq conninfo string or postgresql:// URI (secret)
  std::string schema = "webmon";  ///< postgres_sink's schema
  std::string group_label;        ///< label whose value is the target's group ("" = none)
};

/// Restores every target found in the last 7 days into `model` (as of `now_us`). Returns the
/// number of targets. Throws HistoryError (never containing the password).
std::size_t load_history(const HistorySource& source, std::int64_t now_us, StatusModel& model);

}  // namespace webmon::plugins::status_page
