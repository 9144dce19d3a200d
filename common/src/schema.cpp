// Record schemas for decoding: http_check's derived from its declaration (the single source of
// truth, webmon/common/http_check_kind.hpp), others built from declarations at run time.
#include "webmon/common/schema.hpp"

#include <array>
#include <cstring>

#include "webmon/common/http_check_kind.hpp"

namespace webmon::common {
namespace {

using sdk::ValueType;

constexpr std::size_t count_value_fields(std::span<const sdk::FieldSpec> fields) {
  std::size_t n = 0;
  for (const auto& f : fields) {
    n += f.type != sdk::FieldType::string_map ? 1 : 0;
  }
  return n;
}

// The declaration's fields without labels (which the wire format carries in the envelope).
constexpr auto kHttpCheckSchemaFields = [] {
  std::array<FieldSchema, count_value_fields(kHttpCheckFields)> out{};
  std::size_t i = 0;
  for (const auto& f : kHttpCheckFields) {
    if (f.type != sdk::FieldType::string_map) {
      out[i++] = FieldSchema{f.name, sdk::value_type_of(f.type), f.nullable};
    }
  }
  return out;
}();
constexpr KindSchema kHttpCheck{kHttpCheckKind.name, kHttpCheckSchemaFields};

// The same list as plugins/http_check/http_check.hpp (kErrorClasses).
constexpr std::array<std::string_view, 12> kErrorClasses{"dns",
                                                         "connect",
                                                         "timeout",
                                                         "tls",
                                                         "http_status",
                                                         "body_mismatch",
                                                         "too_many_redirects",
                                                         "other",
                                                         "json_invalid",
                                                         "json_mismatch",
                                                         "slow",
                                                         "cert_expiring"};

}  // namespace

const FieldSchema* KindSchema::find(std::string_view name) const noexcept {
  for (const auto& f : fields) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

OwnedKindSchema::OwnedKindSchema(const sdk::KindSpec& spec)
    : kind_(spec.name != nullptr ? spec.name : "") {
  names_.reserve(spec.field_count);
  fields_.reserve(spec.field_count);
  const auto* base = static_cast<const unsigned char*>(static_cast<const void*>(spec.fields));
  for (std::size_t i = 0; i < spec.field_count; ++i) {
    sdk::FieldSpec f{};
    std::memcpy(&f, base + i * spec.field_size, std::min<std::size_t>(spec.field_size, sizeof f));
    if (f.type == sdk::FieldType::string_map || f.name == nullptr) {
      continue;
    }
    names_.emplace_back(f.name);
  }
  std::size_t k = 0;
  for (std::size_t i = 0; i < spec.field_count; ++i) {
    sdk::FieldSpec f{};
    std::memcpy(&f, base + i * spec.field_size, std::min<std::size_t>(spec.field_size, sizeof f));
    if (f.type == sdk::FieldType::string_map || f.name == nullptr) {
      continue;
    }
    fields_.push_back(FieldSchema{names_[k++], sdk::value_type_of(f.type), f.nullable});
  }
  schema_ = KindSchema{kind_, fields_};
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
