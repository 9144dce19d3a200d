// Known record schemas. Keep in sync with common/include/webmon/common/http_check_kind.hpp
// (docs/wire-format.md describes the decoding rules).
#include "webmon/common/schema.hpp"

#include <array>

namespace webmon::common {
namespace {

using sdk::ValueType;

constexpr std::array<FieldSchema, 23> kHttpCheckFields{{
    {"target", ValueType::string, false},
    {"url", ValueType::string, false},
    {"method", ValueType::string, false},
    {"agent", ValueType::string, false},
    {"success", ValueType::boolean, false},
    {"status_code", ValueType::integer, true},
    {"error", ValueType::string, true},
    {"error_message", ValueType::string, true},
    {"response_time_ms", ValueType::floating, false},
    {"dns_ms", ValueType::floating, true},
    {"connect_ms", ValueType::floating, true},
    {"tls_ms", ValueType::floating, true},
    {"ttfb_ms", ValueType::floating, true},
    {"transfer_ms", ValueType::floating, true},
    {"body_bytes", ValueType::integer, false},
    {"http_version", ValueType::string, true},
    {"remote_ip", ValueType::string, true},
    {"redirects", ValueType::integer, false},
    {"regex_matched", ValueType::boolean, true},
    {"tls_cert_not_after", ValueType::timestamp, true},
    {"tls_cert_issuer", ValueType::string, true},
    {"lateness_ms", ValueType::floating, false},
    {"tls_version", ValueType::string, true},
}};

constexpr KindSchema kHttpCheck{"http_check", kHttpCheckFields};
static_assert(kHttpCheckFields.size() <= 64, "the decoder tracks fields in a 64-bit mask");

constexpr std::array<std::string_view, 8> kErrorClasses{
    "dns", "connect", "timeout", "tls", "http_status", "body_mismatch", "too_many_redirects",
    "other"};

}  // namespace

const FieldSchema* KindSchema::find(std::string_view name) const noexcept {
  for (const auto& f : fields) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

const KindSchema* find_schema(std::string_view kind) noexcept {
  return kind == kHttpCheck.kind ? &kHttpCheck : nullptr;
}

std::span<const std::string_view> http_check_error_classes() noexcept { return kErrorClasses; }

std::string_view type_name(sdk::ValueType t) noexcept {
  switch (t) {
    case ValueType::null:
      return "null";
    case ValueType::boolean:
      return "bool";
    case ValueType::integer:
      return "int";
    case ValueType::floating:
      return "double";
    case ValueType::string:
      return "string";
    case ValueType::timestamp:
      return "timestamp";
  }
  return "unknown";
}

std::optional<std::string> check_record(const sdk::Record& record, const KindSchema& schema) {
  for (const auto& fs : schema.fields) {
    const sdk::Value* v = record.find(fs.name);
    const ValueType t = v != nullptr ? sdk::type_of(*v) : ValueType::null;
    if (t == ValueType::null) {
      if (!fs.nullable) {
        return "field '" + std::string(fs.name) + "': required " + std::string(type_name(fs.type)) +
               (v == nullptr ? " is missing" : " is null");
      }
      continue;
    }
    if (t != fs.type) {
      return "field '" + std::string(fs.name) + "': expected " + std::string(type_name(fs.type)) +
             (fs.nullable ? " or null" : "") + ", got " + std::string(type_name(t));
    }
  }
  return std::nullopt;
}

}  // namespace webmon::common
