// Renders the status page: HTML with inline SVG (a response-time sparkline and an hourly
// uptime bar per target; no scripts, no external assets) and the same data as JSON. Every
// target name, URL and error message is escaped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model.hpp"

namespace webmon::plugins::status_page {

struct PageOptions {
  std::string title = "Status";
  std::vector<std::string> groups;  ///< group order; unlisted groups follow alphabetically
  std::string default_group = "Other";
  bool grouped = false;  ///< group_by set: one section per group
  int refresh_seconds = 60;
  int cert_warn_days = 14;
};

struct Group {
  std::string name;
  std::vector<TargetView> targets;  ///< sorted by name
};

/// Splits targets into groups in display order (one unnamed group when not grouped).
std::vector<Group> group_targets(std::vector<TargetView> targets, const PageOptions& options);

std::string render_html(const std::vector<Group>& groups, std::int64_t now_us,
                        const PageOptions& options);
std::string render_json(const std::vector<Group>& groups, std::int64_t now_us,
                        const PageOptions& options);

/// Escapes & < > " ' for HTML text and attribute values.
void append_html_escaped(std::string& out, std::string_view text);
/// Escapes for a JSON string (without the quotes); invalid UTF-8 bytes become U+FFFD.
void append_json_escaped(std::string& out, std::string_view s);
/// "2026-12-02 05:33:19 UTC".
std::string format_time(std::int64_t time_us);

}  // namespace webmon::plugins::status_page
