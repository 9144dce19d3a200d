// JSON wire format: a hand-written encoder (the hot path of every sink) and a simdjson-based
// decoder.
#include "webmon/common/wire.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdint>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"

namespace webmon::common {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1FU;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0FU;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07U;
  } else {
    return 0;
  }
  if (i + n > s.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0U) != 0x80U) {
      return 0;
    }
    cp = (cp << 6U) | (cc & 0x3FU);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

void append_double(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) {
    out += ".0";
  }
}

void append_int(std::int64_t v, std::string& out) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(res.ptr - buf));
}

void append_value(const sdk::Value& v, std::string& out) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      out += "null";
      break;
    case sdk::ValueType::boolean:
      out += std::get<bool>(v) ? "true" : "false";
      break;
    case sdk::ValueType::integer:
      append_int(std::get<std::int64_t>(v), out);
      break;
    case sdk::ValueType::floating:
      append_double(std::get<double>(v), out);
      break;
    case sdk::ValueType::string:
      append_json_string(std::get<std::string>(v), out);
      break;
    case sdk::ValueType::timestamp:
      out += '"';
      append_rfc3339(std::get<sdk::Timestamp>(v), out);
      out += '"';
      break;
  }
}

bool reserved(std::string_view name) {
  return name == "schema" || name == "kind" || name == "id" || name == "time" ||
         name == "labels";
}

}  // namespace

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes copied verbatim
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = utf8_length(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4U];
          out += kHex[c & 0x0FU];
        } else {
          out += "\xEF\xBF\xBD";  // invalid UTF-8 byte → U+FFFD
        }
    }
    ++i;
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_json(const sdk::Record& r, std::string& out) {
  out += R"({"schema":1,"kind":)";
  append_json_string(r.kind, out);
  out += R"(,"id":)";
  append_json_string(r.id, out);
  out += R"(,"time":")";
  append_rfc3339(r.time, out);
  out += '"';
  for (const auto& f : r.fields) {
    if (reserved(f.name)) {
      continue;  // cannot be represented; the record model keeps these out of fields
    }
    out += ',';
    append_json_string(f.name, out);
    out += ':';
    append_value(f.value, out);
  }
  out += R"(,"labels":{)";
  bool first = true;
  for (const auto& [k, v] : r.labels) {
    if (!first) {
      out += ',';
    }
    first = false;
    append_json_string(k, out);
    out += ':';
    append_json_string(v, out);
  }
  out += "}}";
}

std::string to_json(const sdk::Record& record) {
  std::string out;
  out.reserve(512);
  append_json(record, out);
  return out;
}

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

bool is_uuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') {
        return false;
      }
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
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
      out = std::string(s);
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

bool JsonDecoder::decode(std::string_view json, sdk::Record& out, std::string& error) {
  using simdjson::dom::element_type;
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
  out = sdk::Record{};
  bool have_schema = false;
  bool have_time = false;
  // First pass: the envelope, so field conversion knows the kind's schema.
  for (auto field : obj) {
    const std::string_view key = field.key;
    const auto v = field.value;
    if (key == "schema") {
      std::int64_t s = 0;
      if (v.get_int64().get(s) || s != kWireSchema) {
        error = "unsupported 'schema' (expected 1)";
        return false;
      }
      have_schema = true;
    } else if (key == "kind" || key == "id") {
      std::string_view s;
      if (v.get_string().get(s) || s.empty()) {
        error = "'" + std::string(key) + "' must be a non-empty string";
        return false;
      }
      (key == "kind" ? out.kind : out.id) = std::string(s);
    } else if (key == "time") {
      std::string_view s;
      std::optional<sdk::Timestamp> ts;
      if (v.get_string().get(s) || !(ts = parse_rfc3339(s))) {
        error = "'time' must be an RFC 3339 timestamp";
        return false;
      }
      out.time = *ts;
      have_time = true;
    } else if (key == "labels") {
      simdjson::dom::object labels;
      if (v.get_object().get(labels)) {
        error = "'labels' must be an object of strings";
        return false;
      }
      for (auto label : labels) {
        std::string_view s;
        if (label.value.get_string().get(s)) {
          error = "label '" + std::string(label.key) + "' must be a string";
          return false;
        }
        out.labels.insert_or_assign(std::string(label.key), std::string(s));
      }
    }
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
  const KindSchema* schema = find_schema(out.kind);
  out.fields.reserve(schema != nullptr ? schema->fields.size() : 16);
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (reserved(key)) {
      continue;
    }
    const FieldSchema* fs = schema != nullptr ? schema->find(key) : nullptr;
    sdk::Value value;
    if (!convert(field.value, fs, key, value, error)) {
      return false;
    }
    out.add(std::string(key), std::move(value));
  }
  if (schema != nullptr) {
    if (auto problem = check_record(out, *schema)) {
      error = std::move(*problem);
      return false;
    }
  }
  return true;
}

}  // namespace webmon::common
