// JSON wire format: a hand-written encoder (the hot path of every sink) and a simdjson-based
// decoder.
#include "webmon/common/wire.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <cstdint>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"

namespace webmon::common {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Bytes copied into a JSON string as they are: printable ASCII except '"' and '\\'.
constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) {
    t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  }
  return t;
}();

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

// The encoder writes through a raw cursor into space reserved up front (bounds below), which
// is several times faster than appending to std::string piece by piece.

// Length of the prefix of s[i, n) made of plain bytes, 8 bytes at a time (SWAR): a word is all
// plain when no byte is >= 0x80, < 0x20, '"' or '\\'.
std::size_t plain_run(const char* s, std::size_t i, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::size_t start = i;
  while (i + 8 <= n) {
    std::uint64_t w = 0;
    std::memcpy(&w, s + i, 8);
    const std::uint64_t special = (w & kHigh) | ((w - kOnes * 0x20) & ~w & kHigh) |
                                  has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'));
    if (special != 0) {
      break;
    }
    i += 8;
  }
  while (i < n && kPlain[static_cast<unsigned char>(s[i])]) {
    ++i;
  }
  return i - start;
}

// Space a JSON string literal can take: quotes, and up to 6 bytes (\u00XX) for each byte that
// is not copied verbatim. Counting those is cheaper than zero-filling a 6x worst case.
std::size_t string_bound(std::string_view s) {
  std::size_t special = 0;
  std::size_t i = plain_run(s.data(), 0, s.size());
  for (; i < s.size(); ++i) {
    special += kPlain[static_cast<unsigned char>(s[i])] ? 0 : 1;
  }
  return s.size() + 2 + 5 * special;
}
constexpr std::size_t kNumberBound = 40;
constexpr std::size_t kTimeBound = 32;

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* put_string(char* p, std::string_view s) {
  *p++ = '"';
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const std::size_t run = plain_run(s.data(), i, n);
    std::memcpy(p, s.data() + i, run);
    p += run;
    i += run;
    if (i >= n) {
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t len = utf8_length(s, i);
      if (len != 0) {
        std::memcpy(p, s.data() + i, len);
        p += len;
        i += len;
        continue;
      }
      p = put(p, "\xEF\xBF\xBD");  // invalid UTF-8 byte → U+FFFD
      ++i;
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      case '\b':
        *p++ = 'b';
        break;
      case '\f':
        *p++ = 'f';
        break;
      default:
        p = put(p, "u00");
        *p++ = kHex[c >> 4U];
        *p++ = kHex[c & 0x0FU];
    }
    ++i;
  }
  *p++ = '"';
  return p;
}

char* put_double(char* p, double d) {
  if (!std::isfinite(d)) {
    return put(p, "null");
  }
  // Measurements usually have microsecond resolution (curl reports whole microseconds):
  // when d is exactly k/1000 the short decimal form is exact and much cheaper to produce.
  if (std::fabs(d) < 1e12) {
    const double k = std::nearbyint(d * 1000.0);
    if (k / 1000.0 == d) {
      const auto v = static_cast<std::int64_t>(k);
      const std::uint64_t a = v < 0 ? static_cast<std::uint64_t>(-v) : static_cast<std::uint64_t>(v);
      if (v < 0) {
        *p++ = '-';
      }
      p = std::to_chars(p, p + 24, a / 1000).ptr;
      const auto frac = static_cast<unsigned>(a % 1000);
      *p++ = '.';
      if (frac == 0) {
        *p++ = '0';
      } else {
        *p++ = static_cast<char>('0' + frac / 100);
        if (frac % 100 != 0) {
          *p++ = static_cast<char>('0' + frac / 10 % 10);
          if (frac % 10 != 0) {
            *p++ = static_cast<char>('0' + frac % 10);
          }
        }
      }
      return p;
    }
  }
  char* start = p;
  p = std::to_chars(p, p + kNumberBound - 2, d).ptr;
  if (std::string_view(start, static_cast<std::size_t>(p - start)).find_first_of(".e") ==
      std::string_view::npos) {
    p = put(p, ".0");
  }
  return p;
}

char* put_time(char* p, sdk::Timestamp t) {
  *p++ = '"';
  p = write_rfc3339(t, p);
  *p++ = '"';
  return p;
}

std::size_t value_bound(const sdk::Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    return string_bound(*s);
  }
  return kNumberBound;
}

char* put_value(char* p, const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      return put(p, "null");
    case sdk::ValueType::boolean:
      return put(p, std::get<bool>(v) ? "true" : "false");
    case sdk::ValueType::integer:
      return std::to_chars(p, p + 24, std::get<std::int64_t>(v)).ptr;
    case sdk::ValueType::floating:
      return put_double(p, std::get<double>(v));
    case sdk::ValueType::string:
      return put_string(p, std::get<std::string>(v));
    case sdk::ValueType::timestamp:
      return put_time(p, std::get<sdk::Timestamp>(v));
  }
  return p;
}

bool reserved(std::string_view name) {
  return name == "schema" || name == "kind" || name == "id" || name == "time" ||
         name == "labels";
}

}  // namespace

void append_json_string(std::string_view s, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + string_bound(s));
  char* end = put_string(out.data() + old, s);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void append_json(const sdk::Record& r, std::string& out) {
  std::size_t bound = 64 + string_bound(r.kind) + string_bound(r.id) + kTimeBound;
  for (const auto& f : r.fields) {
    bound += string_bound(f.name) + 1 + value_bound(f.value) + 1;
  }
  for (const auto& [k, v] : r.labels) {
    bound += string_bound(k) + string_bound(v) + 2;
  }
  const std::size_t old = out.size();
  out.resize(old + bound);
  char* p = out.data() + old;
  p = put(p, R"({"schema":1,"kind":)");
  p = put_string(p, r.kind);
  p = put(p, R"(,"id":)");
  p = put_string(p, r.id);
  p = put(p, R"(,"time":)");
  p = put_time(p, r.time);
  for (const auto& f : r.fields) {
    if (reserved(f.name)) {
      continue;  // cannot be represented; the record model keeps these out of fields
    }
    *p++ = ',';
    p = put_string(p, f.name);
    *p++ = ':';
    p = put_value(p, f.value);
  }
  p = put(p, R"(,"labels":{)");
  bool first = true;
  for (const auto& [k, v] : r.labels) {
    if (!first) {
      *p++ = ',';
    }
    first = false;
    p = put_string(p, k);
    *p++ = ':';
    p = put_string(p, v);
  }
  p = put(p, "}}");
  out.resize(static_cast<std::size_t>(p - out.data()));
}

std::string to_json(const sdk::Record& record) {
  std::string out;
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
  // Our encoder writes fields in schema order, so the next schema field is tried first.
  std::size_t cursor = 0;
  std::uint64_t seen = 0;  // schema fields present and not null
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (reserved(key)) {
      continue;
    }
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
    sdk::Value value;
    if (!convert(field.value, fs, key, value, error)) {
      return false;
    }
    if (fs != nullptr && sdk::type_of(value) != sdk::ValueType::null) {
      seen |= std::uint64_t{1} << static_cast<unsigned>(fs - schema->fields.data());
    }
    out.add(std::string(key), std::move(value));
  }
  if (schema != nullptr) {
    for (std::size_t i = 0; i < schema->fields.size(); ++i) {
      const FieldSchema& fs = schema->fields[i];
      if (!fs.nullable && (seen & (std::uint64_t{1} << i)) == 0) {
        error = "field '" + std::string(fs.name) + "': required " +
                std::string(type_name(fs.type)) + " is missing";
        return false;
      }
    }
  }
  return true;
}

bool is_uuid(std::string_view s) noexcept {
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

}  // namespace webmon::common
