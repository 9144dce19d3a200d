// Message templates for the notifying sinks: "{{placeholder}}" text filled from a record.
//
// Placeholders: every field of the `alert` kind (target, state, incident_id, ...), `kind`,
// `id`, `time`, `summary` (a one-line human text), `record` (the whole record as a JSON
// object), `labels.<name>` and `field.<name>` (any other record field). A field that is
// absent or null renders as an empty string. Unknown names are configuration errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/record.hpp"

namespace webmon::notify {

/// How values are written into the text.
enum class Escape { none, json };

class Template {
 public:
  Template() = default;
  /// Parses `text`; a malformed or unknown placeholder throws sdk::ConfigError at `where`
  /// (the node holding the template).
  Template(std::string_view text, Escape escape, const sdk::ConfigNode& where);

  [[nodiscard]] std::string render(const sdk::Record& r) const;
  [[nodiscard]] bool empty() const noexcept { return parts_.empty(); }

 private:
  struct Part {
    bool literal;
    std::string text;  ///< literal text or placeholder name
  };
  std::vector<Part> parts_;
  Escape escape_ = Escape::none;
};

/// A value as text ("" for null; RFC 3339 for times).
std::string value_text(const sdk::Value& v);
/// One line for humans: "[FIRING] shop (http_check): 3 consecutive failures ...".
std::string summary(const sdk::Record& r);
/// The record as a JSON object: kind, id, time, every field, labels.
std::string record_json(const sdk::Record& r);
/// Escapes text for the inside of a JSON string literal.
std::string json_escape(std::string_view s);

}  // namespace webmon::notify
