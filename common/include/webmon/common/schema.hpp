// The record kinds webmon knows, with each field's type: used to decode the wire format into
// typed values (JSON has no timestamp type) and to validate records from the outside.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::common {

struct FieldSchema {
  std::string_view name;
  sdk::ValueType type;
  bool nullable;  ///< null (or absent) is a valid value
};

struct KindSchema {
  std::string_view kind;
  std::span<const FieldSchema> fields;
  [[nodiscard]] const FieldSchema* find(std::string_view name) const noexcept;
};

/// The schema of a known kind, or nullptr.
const KindSchema* find_schema(std::string_view kind) noexcept;

/// The http_check error classes (plugins/http_check/README.md), in order.
std::span<const std::string_view> http_check_error_classes() noexcept;

/// Name of a value type as users read it ("int", "timestamp", ...).
std::string_view type_name(sdk::ValueType t) noexcept;

/// Checks that every field the schema knows has the right type and that non-nullable fields
/// are present. Returns the first problem ("field 'status_code': expected int or null, got
/// string"), or nullopt when the record conforms. Fields the schema does not know are allowed.
std::optional<std::string> check_record(const sdk::Record& record, const KindSchema& schema);

}  // namespace webmon::common
