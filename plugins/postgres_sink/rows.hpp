// Rows of any declared record kind for PostgreSQL: the table layout derived from the kind's
// declaration (sdk::KindSpec), validation (types, required fields, sane times, storable text)
// and the binary COPY encoding of the rows (binary, so the server does not parse timestamps
// and numbers from text: it is most of the cost of a COPY).
//
// Contract: a record that validate() accepts encodes into a row PostgreSQL accepts (valid UTF-8
// without NUL, values in the column types' ranges); anything else gets a one-line reason and
// goes to <schema>.rejected instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webmon/sdk/kind.hpp"
#include "webmon/sdk/record.hpp"

namespace webmon::plugins::postgres_sink {

/// How a column's values travel in binary COPY.
enum class Encoding : std::uint8_t { boolean, int4, int8, float8, text, timestamptz, inet };

/// One column of a kind's table that holds a declared field.
struct Column {
  std::string name;          ///< field and column name
  sdk::FieldType type;       ///< declared type
  bool nullable;             ///< declared nullability (NOT NULL in a new table otherwise)
  std::string sql_type;      ///< type in DDL: "double precision"
  std::string catalog_type;  ///< the same as format_type() prints it: "timestamp with time zone"
  Encoding encoding;
};

/// The table layout of one declared kind: `time`, `id`, one column per declared field (in
/// declaration order), `labels` jsonb and `extra` jsonb (fields the declaration lacks).
struct Layout {
  std::string kind;
  std::uint32_t version = 0;
  std::vector<Column> columns;
  std::string column_list;     ///< "\"time\", \"id\", \"target\", …, \"labels\", \"extra\""
  std::string key_field;       ///< declared key field ("" when none)
  std::string duration_field;  ///< field of the uptime/percentile views ("" when none)
  bool has_success = false;    ///< declares a boolean field `success`
  bool http_check = false;     ///< http_check's value rules apply (status code range, …)
  /// Why this declaration cannot be a table (bad field name, …); empty when it can.
  std::string invalid;

  [[nodiscard]] bool has_views() const noexcept { return has_success && !duration_field.empty(); }
};

/// The SQL type of a declared field type (int64 → bigint …), as in DDL.
std::string_view sql_type_of(sdk::FieldType type) noexcept;

/// Whether `kind` can name a table: [a-z_][a-z0-9_]*, at most 48 characters (room for the
/// partition suffix), and none of the sink's own tables (rejected, schema_version).
bool is_valid_kind_name(std::string_view kind) noexcept;

/// The layout of a declared kind. http_check keeps the column types of its original table
/// (status_code and redirects integer, remote_ip inet).
Layout layout_for(const sdk::KindSpec& kind);

/// The view duration rule: a float64 field named response_time_ms, else total_ms, else the first
/// float64 field whose name ends in _ms; "" when none.
std::string duration_field_of(const sdk::KindSpec& kind);

/// What validate() checks times against.
struct TimeWindow {
  std::int64_t min_micros;  ///< oldest record time accepted
  std::int64_t max_micros;  ///< newest record time accepted
};

/// The reason the record cannot be stored in the layout's table, or nullopt when it can.
std::optional<std::string> validate(const sdk::Record& record, const Layout& layout,
                                    const TimeWindow& window);

/// The binary COPY header (signature, flags, extension length).
void append_copy_header(std::string& out);
/// The binary COPY trailer.
void append_copy_trailer(std::string& out);
/// Appends the record's row (columns as in layout.column_list) in binary COPY format. Only for
/// records validate() accepted with the same layout.
void append_copy_row(const sdk::Record& record, const Layout& layout, std::string& out);

/// RFC 3339 UTC with microseconds (common::append_rfc3339 as a string).
std::string rfc3339(sdk::Timestamp t);

/// True when `s` is valid UTF-8 without NUL bytes.
bool is_storable_text(std::string_view s) noexcept;

/// `s` itself when storable, else its JSON-escaped form (invalid bytes as U+FFFD, NUL as \u0000).
std::string storable_text(std::string_view s);

/// True for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case).
bool is_uuid(std::string_view s) noexcept;

}  // namespace webmon::plugins::postgres_sink
