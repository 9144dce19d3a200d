// Record kinds: what a plugin declares about the records it emits (or needs), once.
//
// A kind declaration names the kind ("http_check"), its schema version, its typed fields in
// order and the field that is the natural partition key (the target). The host uses the
// declarations to check pipelines (`--validate`), to check emitted records, to print
// `--list-plugins`; sinks use them to build tables (postgres_sink) and to carry types across
// Kafka (kafka_sink / kafka_source). Declarations are plain constant data, like the options
// table.
//
// ABI: KindSpec and FieldSpec are read by the host with the stride the plugin reports
// (PluginDescriptor::kind_size, KindSpec::field_size); members are only ever appended.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::sdk {

/// The type of a declared field. The values are part of the ABI and never change.
enum class FieldType : std::uint8_t {
  boolean = 1,
  int64 = 2,
  float64 = 3,
  string = 4,
  timestamp = 5,
  string_map = 6,  ///< only for the record's labels ("labels")
};

inline const char* to_string(FieldType t) noexcept {
  switch (t) {
    case FieldType::boolean:
      return "bool";
    case FieldType::int64:
      return "int";
    case FieldType::float64:
      return "double";
    case FieldType::string:
      return "string";
    case FieldType::timestamp:
      return "timestamp";
    case FieldType::string_map:
      return "string map";
  }
  return "unknown";
}

/// The Value alternative a field of this type holds (labels are not a Value: none).
inline constexpr ValueType value_type_of(FieldType t) noexcept {
  switch (t) {
    case FieldType::boolean:
      return ValueType::boolean;
    case FieldType::int64:
      return ValueType::integer;
    case FieldType::float64:
      return ValueType::floating;
    case FieldType::string:
      return ValueType::string;
    case FieldType::timestamp:
      return ValueType::timestamp;
    case FieldType::string_map:
      return ValueType::null;
  }
  return ValueType::null;
}

/// One declared field. `id`, `time` and `kind` are implicit in every record and never
/// declared (nor are `schema` and `kind_hash`, the wire format's envelope); `labels` (a string
/// map) is declared like a field when the kind has labels.
struct FieldSpec {
  const char* name;  ///< [a-z][a-z0-9_]*, at most 63 characters
  FieldType type;
  bool nullable;            ///< null (or absent) is a valid value
  const char* unit;         ///< "ms", "bytes", "" when none
  const char* description;  ///< one line
};

/// One declared kind.
struct KindSpec {
  std::uint32_t struct_size;  ///< sizeof(KindSpec) as the plugin was compiled
  const char* name;           ///< [a-z][a-z0-9_]*, at most 63 characters; "*" = decided at run time
  std::uint32_t version;      ///< schema version, starting at 1; a new version only adds fields
  const FieldSpec* fields;
  std::size_t field_count;
  std::uint32_t field_size;  ///< sizeof(FieldSpec) as the plugin was compiled (array stride)
  const char* key_field;     ///< natural partition key (a string field), or nullptr
  const char* description;   ///< one line
};

/// The kind name a source uses when the kinds it emits are only known at run time (a Kafka
/// consumer); the host then skips the pipeline checks for the edges it feeds.
inline constexpr std::string_view kAnyKind = "*";

/// Builds a KindSpec from a static FieldSpec array.
template <std::size_t N>
constexpr KindSpec make_kind(const char* name, std::uint32_t version, const FieldSpec (&fields)[N],
                             const char* key_field, const char* description) noexcept {
  return KindSpec{sizeof(KindSpec),  name,      version,    fields, N,
                  sizeof(FieldSpec), key_field, description};
}

/// Builds a KindSpec from a static std::array of fields (what check_fields() returns).
template <std::size_t N>
constexpr KindSpec make_kind(const char* name, std::uint32_t version,
                             const std::array<FieldSpec, N>& fields, const char* key_field,
                             const char* description) noexcept {
  return KindSpec{sizeof(KindSpec),  name,      version,    fields.data(), N,
                  sizeof(FieldSpec), key_field, description};
}

/// The fields every check kind starts with, which the alert transform, the status page and the
/// dashboards read: `target` (string, the key), `success` (bool), `error` (nullable string: a
/// short error class such as "timeout" or "refused", null on success) and `error_message`
/// (nullable string: the detail for a person). check_fields() puts them before the kind's own:
///
///   constexpr auto kFields = sdk::check_fields({{"connect_ms", sdk::FieldType::float64, false,
///                                               "ms", "time connect() took"}});
///   constexpr sdk::KindSpec kKind = sdk::make_kind("ping", 1, kFields, "target", "...");
inline constexpr FieldSpec kCheckFields[] = {
    {"target", FieldType::string, false, "", "what was checked"},
    {"success", FieldType::boolean, false, "", "the check passed"},
    {"error", FieldType::string, true, "", "error class; null on success"},
    {"error_message", FieldType::string, true, "", "what went wrong, for a person"}};

template <std::size_t N>
constexpr std::array<FieldSpec, std::size(kCheckFields) + N> check_fields(
    const FieldSpec (&own)[N]) noexcept {
  std::array<FieldSpec, std::size(kCheckFields) + N> out{};
  std::size_t i = 0;
  for (const FieldSpec& f : kCheckFields) {
    out[i++] = f;
  }
  for (const FieldSpec& f : own) {
    out[i++] = f;
  }
  return out;
}

/// A kind whose records are decided at run time (see kAnyKind).
constexpr KindSpec make_any_kind(const char* description) noexcept {
  return KindSpec{sizeof(KindSpec), "*", 0, nullptr, 0, sizeof(FieldSpec), nullptr, description};
}

}  // namespace webmon::sdk
