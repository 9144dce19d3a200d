// JSON wire format: the simdjson-based decoder (the hot path of kafka_source).
#include <simdjson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::common {

struct JsonDecoder::Impl {
  simdjson::dom::parser parser;
};

JsonDecoder::JsonDecoder() : impl_(std::make_unique<Impl>()) {}
JsonDecoder::~JsonDecoder() = default;

namespace {

std::string_view element_type_name(simdjson::dom::element_type t) {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
      return "int";
    case element_type::DOUBLE:
      return "double";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "bool";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// Converts a JSON value into a typed Value; `expected` is the schema's type (or nullptr).
bool convert(simdjson::dom::element e, const FieldSchema* expected, std::string_view name,
             sdk::Value& out, std::string& error) {
  using simdjson::dom::element_type;
  const element_type t = e.type();
  auto mismatch = [&] {
    error = "field '" + std::string(name) + "': expected " +
            std::string(type_name(expected->type)) + (expected->nullable ? " or null" : "") +
            ", got " + std::string(element_type_name(t));
    return false;
  };
  switch (t) {
    case element_type::NULL_VALUE:
      if (expected != nullptr && !expected->nullable) {
        return mismatch();
      }
      out = std::monostate{};
      return true;
    case element_type::BOOL:
      if (expected != nullptr && expected->type != sdk::ValueType::boolean) {
        return mismatch();
      }
      out = bool(e.get_bool().value_unsafe());
      return true;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
      if (t == element_type::UINT64) {
        if (expected == nullptr || expected->type != sdk::ValueType::floating) {
          error = "field '" + std::string(name) + "': integer out of range";
          return false;
        }
        out = static_cast<double>(e.get_uint64().value_unsafe());
        return true;
      }
      if (expected == nullptr) {
        if (t == element_type::INT64) {
          out = e.get_int64().value_unsafe();
        } else {
          out = e.get_double().value_unsafe();
        }
        return true;
      }
      if (expected->type == sdk::ValueType::floating) {
        out = t == element_type::INT64 ? static_cast<double>(e.get_int64().value_unsafe())
                                       : e.get_double().value_unsafe();
        return true;
      }
      if (expected->type == sdk::ValueType::integer && t == element_type::INT64) {
        out = e.get_int64().value_unsafe();
        return true;
      }
      return mismatch();
    }
    case element_type::STRING: {
      const std::string_view s = e.get_string().value_unsafe();
      if (expected != nullptr && expected->type == sdk::ValueType::timestamp) {
        const auto ts = parse_rfc3339(s);
        if (!ts) {
          error = "field '" + std::string(name) + "': expected an RFC 3339 timestamp, got '" +
                  std::string(s.substr(0, 64)) + "'";
          return false;
        }
        out = *ts;
        return true;
      }
      if (expected != nullptr && expected->type != sdk::ValueType::string) {
        return mismatch();
      }
      if (auto* str = std::get_if<std::string>(&out)) {
        str->assign(s);  // a reused record: keep the string's storage
      } else {
        out.emplace<std::string>(s);
      }
      return true;
    }
    case element_type::ARRAY:
    case element_type::OBJECT:
      error = "field '" + std::string(name) + "': unsupported type " +
              std::string(element_type_name(t));
      return false;
  }
  error = "field '" + std::string(name) + "': unsupported value";
  return false;
}

}  // namespace

namespace {

enum class Key : std::uint8_t { field, schema, kind, id, time, labels };

// Classifies a key by its length first: most keys are fields and fail at once.
Key classify(std::string_view k) noexcept {
  switch (k.size()) {
    case 2:
      return k == "id" ? Key::id : Key::field;
    case 4:
      return k == "kind" ? Key::kind : k == "time" ? Key::time : Key::field;
    case 6:
      return k == "schema" ? Key::schema : k == "labels" ? Key::labels : Key::field;
    default:
      return Key::field;
  }
}

}  // namespace

namespace {
// The schemas compiled in; other kinds decode untyped.
class CompiledSchemas final : public SchemaLookup {
 public:
  const KindSchema* find(std::string_view kind, std::string& /*error*/) override {
    return find_schema(kind);
  }
};
}  // namespace

bool JsonDecoder::decode(std::string_view json, sdk::Record& out, std::string& error) {
  CompiledSchemas compiled;
  return decode(json, out, error, compiled);
}

bool JsonDecoder::decode(std::string_view json, sdk::Record& out, std::string& error,
                         SchemaLookup& lookup) {
  if (json.size() > max_bytes_) {
    error = "message of " + std::to_string(json.size()) + " bytes exceeds the limit of " +
            std::to_string(max_bytes_) + " bytes";
    return false;
  }
  simdjson::dom::element doc;
  if (auto err = impl_->parser.parse(json.data(), json.size(), true).get(doc); err) {
    error = std::string("not JSON: ") + simdjson::error_message(err);
    return false;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) {
    error = "not a JSON object (got " + std::string(element_type_name(doc.type())) + ")";
    return false;
  }
  // `out` may be a record used before (kafka_source decodes into records the pipeline has
  // finished with): its strings, fields and labels are overwritten in place, so decoding a
  // record like the previous one allocates nothing. Fields past `used` are dropped at the end.
  out.kind.clear();
  out.id.clear();
  out.time = {};
  std::size_t used = 0;
  bool have_schema = false;
  bool have_time = false;
  bool kind_seen = false;
  bool fields_before_kind = false;  // the schema was not known for them: convert again
  bool labels_seen = false;
  const KindSchema* schema = nullptr;
  std::size_t cursor = 0;  // our encoder writes fields in schema order: try the next one first
  std::uint64_t seen = 0;  // schema fields present and not null

  auto add_field = [&](std::string_view key, simdjson::dom::element value) {
    const FieldSchema* fs = nullptr;
    if (schema != nullptr) {
      const auto& fields = schema->fields;
      if (cursor < fields.size() && fields[cursor].name == key) {
        fs = &fields[cursor];
      } else {
        fs = schema->find(key);
      }
      if (fs != nullptr) {
        cursor = static_cast<std::size_t>(fs - fields.data()) + 1;
      }
    }
    sdk::Field& f = used < out.fields.size() ? out.fields[used] : out.fields.emplace_back();
    ++used;
    if (!convert(value, fs, key, f.value, error)) {
      return false;
    }
    f.name.assign(key);
    if (fs != nullptr && sdk::type_of(f.value) != sdk::ValueType::null) {
      const auto index = static_cast<std::size_t>(fs - schema->fields.data());
      seen |= index < 64 ? std::uint64_t{1} << index : 0;
    }
    return true;
  };

  // One pass: the envelope comes first in what we write, so the schema is known before the
  // fields. Fields written before 'kind' are converted again once it is known.
  for (auto field : obj) {
    const std::string_view key = field.key;
    const auto v = field.value;
    switch (classify(key)) {
      case Key::field:
        if (!kind_seen) {
          fields_before_kind = true;
          continue;
        }
        if (!add_field(key, v)) {
          return false;
        }
        continue;
      case Key::schema: {
        std::int64_t s = 0;
        if (v.get_int64().get(s) || s != kWireSchema) {
          error = "unsupported 'schema' (expected 1)";
          return false;
        }
        have_schema = true;
        continue;
      }
      case Key::kind:
      case Key::id: {
        std::string_view s;
        if (v.get_string().get(s) || s.empty()) {
          error = "'" + std::string(key) + "' must be a non-empty string";
          return false;
        }
        if (key == "kind") {
          out.kind.assign(s);
          if (!kind_seen) {
            kind_seen = true;
            std::string lookup_error;
            schema = lookup.find(out.kind, lookup_error);
            if (schema == nullptr && !lookup_error.empty()) {
              error = std::move(lookup_error);
              return false;
            }
            out.fields.reserve(schema != nullptr ? schema->fields.size() : 16);
          }
        } else {
          out.id.assign(s);
        }
        continue;
      }
      case Key::time: {
        std::string_view s;
        std::optional<sdk::Timestamp> ts;
        if (v.get_string().get(s) || !(ts = parse_rfc3339(s))) {
          error = "'time' must be an RFC 3339 timestamp";
          return false;
        }
        out.time = *ts;
        have_time = true;
        continue;
      }
      case Key::labels: {
        simdjson::dom::object labels;
        if (v.get_object().get(labels)) {
          error = "'labels' must be an object of strings";
          return false;
        }
        // In place: labels like the previous record's (same keys, in order) only overwrite the
        // values; any other key is inserted and the old keys not seen are erased.
        // A second "labels" key adds to the first (it = end: nothing matched, nothing erased).
        auto it = labels_seen ? out.labels.end() : out.labels.begin();
        labels_seen = true;
        for (auto label : labels) {
          std::string_view s;
          if (label.value.get_string().get(s)) {
            error = "label '" + std::string(label.key) + "' must be a string";
            return false;
          }
          const std::string_view k = label.key;
          if (it != out.labels.end() && it->first == k) {
            it->second.assign(s);
            ++it;
            continue;
          }
          it = out.labels.erase(it, out.labels.end());
          out.labels.insert_or_assign(std::string(k), std::string(s));
          it = out.labels.end();
        }
        out.labels.erase(it, out.labels.end());
        continue;
      }
    }
  }
  if (!labels_seen) {
    out.labels.clear();
  }
  if (!have_schema) {
    error = "missing 'schema'";
    return false;
  }
  if (out.kind.empty()) {
    error = "missing 'kind'";
    return false;
  }
  if (out.id.empty()) {
    error = "missing 'id'";
    return false;
  }
  if (!is_uuid(out.id)) {
    error = "'id' is not a UUID";
    return false;
  }
  if (!have_time) {
    error = "missing 'time'";
    return false;
  }
  if (fields_before_kind) {
    // Someone else's field order: convert every field again, in document order.
    used = 0;
    cursor = 0;
    seen = 0;
    for (auto field : obj) {
      if (classify(field.key) == Key::field && !add_field(field.key, field.value)) {
        return false;
      }
    }
  }
  out.fields.resize(used);
  if (schema != nullptr) {
    for (std::size_t i = 0; i < schema->fields.size(); ++i) {
      const FieldSchema& fs = schema->fields[i];
      if (fs.nullable) {
        continue;
      }
      // Fields past the 64th (kinds declared at run time may have more) are looked up.
      const bool present = i < 64 ? (seen & (std::uint64_t{1} << i)) != 0
                                  : (out.find(fs.name) != nullptr &&
                                     sdk::type_of(*out.find(fs.name)) != sdk::ValueType::null);
      if (!present) {
        error = "field '" + std::string(fs.name) + "': required " +
                std::string(type_name(fs.type)) + " is missing";
        return false;
      }
    }
  }
  return true;
}

bool is_uuid(std::string_view s) noexcept {
  // 8-4-4-4-12 hex digits: the dashes at fixed places, then one table lookup per digit.
  static constexpr auto kHex = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) {
      t[static_cast<std::size_t>(c)] = true;
    }
    for (std::size_t c = 'a'; c <= 'f'; ++c) {
      t[c] = true;
      t[c - 'a' + 'A'] = true;
    }
    return t;
  }();
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
    return false;
  }
  bool ok = true;
  for (std::size_t i = 0; i < 36; ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    ok &= dash || kHex[static_cast<unsigned char>(s[i])];
  }
  return ok;
}

}  // namespace webmon::common
