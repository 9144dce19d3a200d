// RFC 3339 parsing and fast formatting for the wire format.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::common {

/// Writes the 27 characters of "2026-11-27T22:00:00.123456Z" at `p`; returns the end.
char* write_rfc3339(sdk::Timestamp t, char* p) noexcept;

/// Appends "2026-11-27T22:00:00.123456Z" (always 6 fractional digits, always Z).
void append_rfc3339(sdk::Timestamp t, std::string& out);

/// Parses RFC 3339 date-times: "2026-11-27T22:00:00Z", fractional seconds up to 9 digits
/// (truncated to microseconds), "Z" or a "+HH:MM"/"-HH:MM" offset; 't'/'z'/' ' accepted as in
/// the RFC. Returns nullopt when malformed or out of range (years 1..9999).
std::optional<sdk::Timestamp> parse_rfc3339(std::string_view s);

}  // namespace webmon::common
