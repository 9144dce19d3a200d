// http_check rows for PostgreSQL: validation (types, required fields, ranges, sane times) and
// the binary COPY encoding of the webmon.http_check columns (binary, so the server does not
// parse timestamps and numbers from text: it is most of the cost of a COPY).
//
// Contract: a record that validate() accepts encodes into a row PostgreSQL accepts (valid UTF-8
// without NUL, values in the column types' ranges); anything else gets a one-line reason and
// goes to webmon.rejected instead.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::plugins::postgres_sink {

/// One column of webmon.http_check that holds a record field.
struct FieldColumn {
  std::string_view name;  ///< field and column name
  std::string_view sql_type;
  bool nullable;
};

/// The field columns in table order (after `time` and `id`, before `labels` and `extra`).
std::span<const FieldColumn> http_check_field_columns() noexcept;

/// "time, id, target, ..., labels, extra": the COPY column list.
const std::string& http_check_column_list();

/// What validate() checks times against.
struct TimeWindow {
  std::int64_t min_micros;  ///< oldest record time accepted
  std::int64_t max_micros;  ///< newest record time accepted
};

/// The reason the record cannot be stored, or nullopt when it can.
std::optional<std::string> validate(const sdk::Record& record, const TimeWindow& window);

/// The binary COPY header (signature, flags, extension length).
void append_copy_header(std::string& out);
/// The binary COPY trailer.
void append_copy_trailer(std::string& out);
/// Appends the record's row in binary COPY format. Only for validated records.
void append_copy_row(const sdk::Record& record, std::string& out);

/// RFC 3339 UTC with microseconds (common::append_rfc3339 as a string).
std::string rfc3339(sdk::Timestamp t);

/// True when `s` is valid UTF-8 without NUL bytes.
bool is_storable_text(std::string_view s) noexcept;

/// `s` itself when storable, else its JSON-escaped form (invalid bytes as U+FFFD, NUL as \u0000).
std::string storable_text(std::string_view s);

/// True for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case).
bool is_uuid(std::string_view s) noexcept;


}  // namespace webmon::plugins::postgres_sink
