// The compact declaration of the webmon-fields Kafka header (see kind_wire.hpp).
#include "webmon/common/kind_wire.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>

namespace webmon::common {
namespace {

sdk::FieldSpec field_at(const sdk::KindSpec& spec, std::size_t i) {
  sdk::FieldSpec f{};
  const auto* base = static_cast<const unsigned char*>(static_cast<const void*>(spec.fields));
  std::memcpy(&f, base + i * spec.field_size, std::min<std::size_t>(spec.field_size, sizeof f));
  return f;
}

bool valid_identifier(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

std::optional<sdk::FieldType> type_of_letter(char c) noexcept {
  switch (c) {
    case 'b':
      return sdk::FieldType::boolean;
    case 'i':
      return sdk::FieldType::int64;
    case 'd':
      return sdk::FieldType::float64;
    case 's':
      return sdk::FieldType::string;
    case 't':
      return sdk::FieldType::timestamp;
    case 'm':
      return sdk::FieldType::string_map;
    default:
      return std::nullopt;
  }
}

std::string shorten(std::string_view s) {
  return s.size() <= 64 ? std::string(s) : std::string(s.substr(0, 61)) + "...";
}

}  // namespace

std::string kind_hash(std::string_view kind, std::string_view version, std::string_view fields) {
  std::string joined;
  joined.reserve(kind.size() + version.size() + fields.size() + 2);
  joined.append(kind).append(1, '\n').append(version).append(1, '\n').append(fields);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(joined.data(), joined.size(), digest, &size, EVP_sha256(), nullptr) != 1 ||
      size < kKindHashSize / 2) {
    throw std::runtime_error("SHA-256 failed (OpenSSL)");
  }
  std::string out(kKindHashSize, '0');
  for (std::size_t i = 0; i < kKindHashSize / 2; ++i) {
    out[2 * i] = "0123456789abcdef"[digest[i] >> 4U];
    out[2 * i + 1] = "0123456789abcdef"[digest[i] & 0xFU];
  }
  return out;
}

bool is_kind_hash(std::string_view s) noexcept {
  if (s.size() != kKindHashSize) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

char type_letter(sdk::FieldType t) noexcept {
  switch (t) {
    case sdk::FieldType::boolean:
      return 'b';
    case sdk::FieldType::int64:
      return 'i';
    case sdk::FieldType::float64:
      return 'd';
    case sdk::FieldType::string:
      return 's';
    case sdk::FieldType::timestamp:
      return 't';
    case sdk::FieldType::string_map:
      return 'm';
  }
  return '?';
}

std::string format_kind_fields(const sdk::KindSpec& spec) {
  std::string out;
  out.reserve(spec.field_count * 16);
  for (std::size_t i = 0; i < spec.field_count; ++i) {
    const sdk::FieldSpec f = field_at(spec, i);
    if (i > 0) {
      out += ',';
    }
    out += f.name;
    out += ':';
    out += type_letter(f.type);
    if (!f.nullable) {
      out += '!';
    }
    if (spec.key_field != nullptr && std::strcmp(spec.key_field, f.name) == 0) {
      out += '*';
    }
  }
  return out;
}

std::unique_ptr<WireKind> WireKind::parse(std::string_view kind, std::string_view version,
                                          std::string_view fields, std::string& error) {
  if (!valid_identifier(kind)) {
    error = "header webmon-kind '" + shorten(kind) +
            "' is not a valid kind name ([a-z][a-z0-9_]*, at most 63 characters)";
    return nullptr;
  }
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (version.empty() || ec != std::errc{} || end != version.data() + version.size() || v == 0) {
    error = "kind '" + std::string(kind) + "': header webmon-kind-version '" + shorten(version) +
            "' is not a schema version (a whole number from 1)";
    return nullptr;
  }
  if (fields.size() > kMaxFieldsHeader) {
    error = "kind '" + std::string(kind) + "': header webmon-fields of " +
            std::to_string(fields.size()) + " bytes exceeds " + std::to_string(kMaxFieldsHeader);
    return nullptr;
  }
  std::unique_ptr<WireKind> w(new WireKind());
  w->kind_.assign(kind);
  std::set<std::string_view> seen;
  bool have_key = false;
  std::size_t pos = 0;
  std::size_t index = 0;
  while (!fields.empty() && pos <= fields.size()) {
    std::size_t comma = fields.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = fields.size();
    }
    const std::string_view entry = fields.substr(pos, comma - pos);
    ++index;
    const std::string where = "kind '" + std::string(kind) + "': header webmon-fields entry " +
                              std::to_string(index) + " '" + shorten(entry) + "': ";
    const std::size_t colon = entry.find(':');
    if (colon == std::string_view::npos) {
      error = where + "expected name:type (e.g. port:i!)";
      return nullptr;
    }
    const std::string_view name = entry.substr(0, colon);
    std::string_view rest = entry.substr(colon + 1);
    if (!valid_identifier(name)) {
      error = where + "not a valid field name ([a-z][a-z0-9_]*, at most 63 characters)";
      return nullptr;
    }
    if (name == kKindHashKey) {
      error = where + "'kind_hash' is reserved for the wire format's envelope";
      return nullptr;
    }
    if (name == "id" || name == "time" || name == "kind" || name == "schema") {
      error = where + "'" + std::string(name) + "' is implicit in every record";
      return nullptr;
    }
    const auto type = rest.empty() ? std::nullopt : type_of_letter(rest[0]);
    if (!type) {
      error = where + "unknown type (expected one of b i d s t m)";
      return nullptr;
    }
    rest.remove_prefix(1);
    bool nullable = true;
    bool key = false;
    if (!rest.empty() && rest[0] == '!') {
      nullable = false;
      rest.remove_prefix(1);
    }
    if (!rest.empty() && rest[0] == '*') {
      key = true;
      rest.remove_prefix(1);
    }
    if (!rest.empty()) {
      error = where + "unexpected '" + shorten(rest) + "' after the type (only ! and * may follow)";
      return nullptr;
    }
    if ((*type == sdk::FieldType::string_map) != (name == "labels")) {
      error = where + "only 'labels' is a string map, and it is one";
      return nullptr;
    }
    if (key) {
      if (have_key) {
        error = where + "a second key field";
        return nullptr;
      }
      if (*type != sdk::FieldType::string) {
        error = where + "the key field must be a string";
        return nullptr;
      }
      have_key = true;
      w->key_.assign(name);
    }
    const std::string& stored = w->names_.emplace_back(name);
    if (!seen.insert(stored).second) {
      error = where + "declared twice";
      return nullptr;
    }
    w->fields_.push_back(sdk::FieldSpec{stored.c_str(), *type, nullable, "", ""});
    pos = comma + 1;
  }
  w->spec_ = sdk::KindSpec{sizeof(sdk::KindSpec),
                           w->kind_.c_str(),
                           v,
                           w->fields_.data(),
                           w->fields_.size(),
                           sizeof(sdk::FieldSpec),
                           have_key ? w->key_.c_str() : nullptr,
                           "declared in Kafka message headers"};
  return w;
}

std::optional<std::string> incompatibility(const sdk::KindSpec& known,
                                           const sdk::KindSpec& incoming) {
  for (std::size_t i = 0; i < incoming.field_count; ++i) {
    const sdk::FieldSpec n = field_at(incoming, i);
    for (std::size_t j = 0; j < known.field_count; ++j) {
      const sdk::FieldSpec o = field_at(known, j);
      if (std::strcmp(o.name, n.name) == 0 && o.type != n.type) {
        return "kind '" + std::string(known.name) + "' field '" + n.name + "' changes type from " +
               sdk::to_string(o.type) + " (known declaration, version " +
               std::to_string(known.version) + ") to " + sdk::to_string(n.type) +
               " (message headers, version " + std::to_string(incoming.version) + ")";
      }
    }
  }
  return std::nullopt;
}

}  // namespace webmon::common
