// The record kinds' field types as the wire decoder and validators use them: a KindSchema is a
// declaration (sdk::KindSpec) reduced to what decoding needs (name, value type, nullable), in
// declaration order, without `labels` (part of every record's envelope). The http_check schema
// is derived from its declaration (webmon/common/http_check_kind.hpp); others are built at run
// time from a declaration (OwnedKindSchema), e.g. one a Kafka message carried in its headers.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "webmon/sdk/kind.hpp"
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

/// A KindSchema built from a declaration; owns its names (the declaration may go away).
class OwnedKindSchema {
 public:
  explicit OwnedKindSchema(const sdk::KindSpec& spec);
  OwnedKindSchema(const OwnedKindSchema&) = delete;
  OwnedKindSchema& operator=(const OwnedKindSchema&) = delete;
  [[nodiscard]] const KindSchema& schema() const noexcept { return schema_; }

 private:
  std::string kind_;
  std::vector<std::string> names_;
  std::vector<FieldSchema> fields_;
  KindSchema schema_;
};

/// The schema of a kind compiled into webmon (http_check), or nullptr.
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
