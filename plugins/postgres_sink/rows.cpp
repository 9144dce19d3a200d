// Layouts, validation and COPY encoding of rows of any declared kind (see rows.hpp).
#include "rows.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

using sdk::FieldType;
using sdk::Value;
using sdk::ValueType;

// RFC 3339 years 1..9999, the range the wire format and PostgreSQL both handle.
constexpr std::int64_t kMinTimestamp = -62135596800LL * 1'000'000;
constexpr std::int64_t kMaxTimestamp = 253402300799LL * 1'000'000;

/// Column types of http_check's original table that are narrower or more specific than the
/// declared types' defaults; kept so existing databases keep working.
struct StorageOverride {
  std::string_view kind, field, sql_type, catalog_type;
  Encoding encoding;
};
constexpr StorageOverride kOverrides[] = {
    {"http_check", "status_code", "integer", "integer", Encoding::int4},
    {"http_check", "redirects", "integer", "integer", Encoding::int4},
    {"http_check", "remote_ip", "inet", "inet", Encoding::inet},
};

std::string describe(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, res.ptr);
}

void append_double(double d, std::string& out) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, res.ptr);
}

void append_int(std::int64_t i, std::string& out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, i);
  out.append(buf, res.ptr);
}

// JSON for the `extra` column: the fields the table has no column for.
void append_json_value(const Value& v, std::string& out) {
  switch (sdk::type_of(v)) {
    case ValueType::null:
      out += "null";
      break;
    case ValueType::boolean:
      out += std::get<bool>(v) ? "true" : "false";
      break;
    case ValueType::integer:
      append_int(std::get<std::int64_t>(v), out);
      break;
    case ValueType::floating: {
      const double d = std::get<double>(v);
      if (std::isfinite(d)) {
        append_double(d, out);
      } else {
        out += "null";
      }
      break;
    }
    case ValueType::string:
      common::append_json_string(std::get<std::string>(v), out);
      break;
    case ValueType::timestamp:
      out += '"';
      common::append_rfc3339(std::get<sdk::Timestamp>(v), out);
      out += '"';
      break;
  }
}

/// The record's values by column, plus the fields the layout has no column for.
struct Row {
  std::vector<const Value*> v;
  std::vector<const sdk::Field*> extra;

  void fill(const sdk::Record& r, const Layout& layout) {
    const auto& cols = layout.columns;
    v.assign(cols.size(), nullptr);
    extra.clear();
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
      const sdk::Field& f = r.fields[i];
      // Fast path: fields usually arrive in declaration order.
      if (i < cols.size() && cols[i].name == f.name) {
        v[i] = &f.value;
        continue;
      }
      bool found = false;
      for (std::size_t c = 0; c < cols.size(); ++c) {
        if (cols[c].name == f.name) {
          v[c] = &f.value;
          found = true;
          break;
        }
      }
      if (!found) {
        extra.push_back(&f);
      }
    }
  }
  [[nodiscard]] bool is_null(std::size_t c) const noexcept {
    return v[c] == nullptr || std::holds_alternative<std::monostate>(*v[c]);
  }
};

Row& scratch_row() {
  thread_local Row row;
  return row;
}

int column_index(const Layout& layout, std::string_view name) noexcept {
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    if (layout.columns[i].name == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool is_identifier(std::string_view s, std::size_t max) noexcept {
  if (s.empty() || s.size() > max) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

// http_check's value rules (beyond types): what its table always held.
std::optional<std::string> validate_http_check(const Row& row, const Layout& layout) {
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    const Column& c = layout.columns[i];
    if (c.type == FieldType::float64 && c.name != "lateness_ms" && !row.is_null(i)) {
      const double d = std::get<double>(*row.v[i]);
      if (d < 0) {
        return "field '" + c.name + "': negative duration " + describe(d);
      }
    }
  }
  auto at = [&](std::string_view name) -> const Value* {
    const int i = column_index(layout, name);
    return i < 0 || row.is_null(static_cast<std::size_t>(i)) ? nullptr
                                                             : row.v[static_cast<std::size_t>(i)];
  };
  if (const Value* v = at("status_code")) {
    const std::int64_t sc = std::get<std::int64_t>(*v);
    if (sc < 100 || sc > 599) {
      return "field 'status_code': " + std::to_string(sc) + " is not an HTTP status (100-599)";
    }
  }
  if (const Value* v = at("body_bytes"); v != nullptr && std::get<std::int64_t>(*v) < 0) {
    return "field 'body_bytes': negative size " + std::to_string(std::get<std::int64_t>(*v));
  }
  if (const Value* v = at("redirects")) {
    const std::int64_t n = std::get<std::int64_t>(*v);
    if (n < 0 || n > 1000) {
      return "field 'redirects': " + std::to_string(n) + " is out of range (0-1000)";
    }
  }
  if (const Value* v = at("error")) {
    const auto& e = std::get<std::string>(*v);
    bool known = false;
    std::string classes;
    for (std::string_view cls : common::http_check_error_classes()) {
      known = known || cls == e;
      classes += (classes.empty() ? "" : ", ") + std::string(cls);
    }
    if (!known) {
      return "field 'error': '" + e + "' is not an error class (" + classes + ")";
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view sql_type_of(FieldType type) noexcept {
  switch (type) {
    case FieldType::boolean:
      return "boolean";
    case FieldType::int64:
      return "bigint";
    case FieldType::float64:
      return "double precision";
    case FieldType::string:
      return "text";
    case FieldType::timestamp:
      return "timestamptz";
    case FieldType::string_map:
      return "jsonb";
  }
  return "text";
}

bool is_valid_kind_name(std::string_view kind) noexcept {
  return is_identifier(kind, 48) && kind != "rejected" && kind != "schema_version";
}

std::string duration_field_of(const sdk::KindSpec& kind) {
  std::string first;
  bool has_response = false;
  bool has_total = false;
  for (std::size_t i = 0; i < kind.field_count; ++i) {
    const auto& f = *reinterpret_cast<const sdk::FieldSpec*>(
        reinterpret_cast<const char*>(kind.fields) + i * kind.field_size);
    if (f.type != FieldType::float64) {
      continue;
    }
    if (f.name == nullptr) {
      continue;  // (validated declarations always name their fields)
    }
    const std::string_view name = f.name;
    has_response = has_response || name == "response_time_ms";
    has_total = has_total || name == "total_ms";
    if (first.empty() && name.size() > 3 && name.ends_with("_ms")) {
      first = name;
    }
  }
  return has_response ? "response_time_ms" : has_total ? "total_ms" : first;
}

Layout layout_for(const sdk::KindSpec& kind) {
  Layout l;
  l.kind = kind.name != nullptr ? kind.name : "";
  l.version = kind.version;
  l.http_check = l.kind == "http_check";
  l.key_field = kind.key_field != nullptr ? kind.key_field : "";
  l.column_list = "\"time\", \"id\"";
  for (std::size_t i = 0; i < kind.field_count; ++i) {
    // The host reads declarations with the stride the plugin reports; so does the sink.
    const auto& f = *reinterpret_cast<const sdk::FieldSpec*>(
        reinterpret_cast<const char*>(kind.fields) + i * kind.field_size);
    const std::string name = f.name != nullptr ? f.name : "";
    if (f.type == FieldType::string_map) {
      if (name != "labels" && l.invalid.empty()) {
        l.invalid = "field '" + name + "' is a string map; only 'labels' may be one";
      }
      continue;  // the record's labels: the labels column
    }
    if (!is_identifier(name, 63) || name == "time" || name == "id" || name == "labels" ||
        name == "extra") {
      if (l.invalid.empty()) {
        l.invalid = "field '" + name + "' cannot be a column (a lower-case identifier of at most " +
                    "63 characters other than time, id, labels and extra)";
      }
      continue;
    }
    Column c{name,
             f.type,
             f.nullable,
             std::string(sql_type_of(f.type)),
             std::string(sql_type_of(f.type)),
             Encoding::text};
    switch (f.type) {
      case FieldType::boolean:
        c.encoding = Encoding::boolean;
        break;
      case FieldType::int64:
        c.encoding = Encoding::int8;
        break;
      case FieldType::float64:
        c.encoding = Encoding::float8;
        break;
      case FieldType::timestamp:
        c.encoding = Encoding::timestamptz;
        c.catalog_type = "timestamp with time zone";
        break;
      default:
        break;
    }
    for (const auto& o : kOverrides) {
      if (o.kind == l.kind && o.field == name && f.type != FieldType::boolean) {
        c.sql_type = o.sql_type;
        c.catalog_type = o.catalog_type;
        c.encoding = o.encoding;
      }
    }
    if (name == "success" && f.type == FieldType::boolean) {
      l.has_success = true;
    }
    l.column_list += ", \"" + name + "\"";
    l.columns.push_back(std::move(c));
  }
  l.column_list += ", \"labels\", \"extra\"";
  l.duration_field = duration_field_of(kind);
  return l;
}

bool is_storable_text(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) {
        return false;
      }
      ++p;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) {
      return false;
    }
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

std::string rfc3339(sdk::Timestamp t) {
  std::string s;
  common::append_rfc3339(t, s);
  return s;
}

std::string storable_text(std::string_view s) {
  if (is_storable_text(s)) {
    return std::string(s);
  }
  std::string out;
  common::append_json_string(s, out);
  return out.substr(1, out.size() - 2);
}

bool is_uuid(std::string_view s) noexcept { return common::is_uuid(s); }

std::optional<std::string> validate(const sdk::Record& r, const Layout& layout,
                                    const TimeWindow& window) {
  if (!is_uuid(r.id)) {
    return "id '" + r.id + "' is not a UUID";
  }
  if (r.time.micros < window.min_micros || r.time.micros > window.max_micros) {
    std::string reason = "time ";
    if (r.time.micros >= kMinTimestamp && r.time.micros <= kMaxTimestamp) {
      common::append_rfc3339(r.time, reason);
    } else {
      reason += std::to_string(r.time.micros) + " us";
    }
    reason += r.time.micros < window.min_micros ? " is older than the oldest accepted ("
                                                : " is in the future beyond the accepted (";
    common::append_rfc3339(
        sdk::Timestamp{r.time.micros < window.min_micros ? window.min_micros : window.max_micros},
        reason);
    reason += ")";
    return reason;
  }
  Row& row = scratch_row();
  row.fill(r, layout);
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    const Column& c = layout.columns[i];
    const Value* v = row.v[i];
    const ValueType want = sdk::value_type_of(c.type);
    const ValueType t = v != nullptr ? sdk::type_of(*v) : ValueType::null;
    if (t == ValueType::null) {
      if (!c.nullable) {
        return "field '" + c.name + "': required " + std::string(common::type_name(want)) +
               (v == nullptr ? " is missing" : " is null");
      }
      continue;
    }
    if (t != want) {
      return "field '" + c.name + "': expected " + std::string(common::type_name(want)) +
             (c.nullable ? " or null" : "") + ", got " + std::string(common::type_name(t));
    }
    switch (t) {
      case ValueType::string: {
        const auto& s = std::get<std::string>(*v);
        if (!is_storable_text(s)) {
          return "field '" + c.name + "': not valid UTF-8 or contains a NUL byte";
        }
        if (c.encoding == Encoding::inet) {
          unsigned char buf[16];
          if (inet_pton(AF_INET, s.c_str(), buf) != 1 && inet_pton(AF_INET6, s.c_str(), buf) != 1) {
            return "field '" + c.name + "': '" + s + "' is not an IP address";
          }
        }
        break;
      }
      case ValueType::integer:
        if (c.encoding == Encoding::int4) {
          const std::int64_t n = std::get<std::int64_t>(*v);
          if (n < std::numeric_limits<std::int32_t>::min() ||
              n > std::numeric_limits<std::int32_t>::max()) {
            if (layout.http_check) {
              break;  // the range rules below name the allowed range
            }
            return "field '" + c.name + "': " + std::to_string(n) +
                   " does not fit an integer column";
          }
        }
        break;
      case ValueType::floating:
        if (!std::isfinite(std::get<double>(*v))) {
          return "field '" + c.name + "': not a finite number";
        }
        break;
      case ValueType::timestamp: {
        const std::int64_t m = std::get<sdk::Timestamp>(*v).micros;
        if (m < kMinTimestamp || m > kMaxTimestamp) {
          return "field '" + c.name + "': timestamp out of range (years 1 to 9999)";
        }
        break;
      }
      default:
        break;
    }
  }
  if (layout.http_check) {
    if (auto reason = validate_http_check(row, layout)) {
      return reason;
    }
  }
  for (const auto& [k, val] : r.labels) {
    if (!is_storable_text(k) || !is_storable_text(val)) {
      return "label '" + k + "': not valid UTF-8 or contains a NUL byte";
    }
  }
  for (const sdk::Field* f : row.extra) {
    if (!is_storable_text(f->name) || (std::holds_alternative<std::string>(f->value) &&
                                       !is_storable_text(std::get<std::string>(f->value)))) {
      return "field '" + f->name + "': not valid UTF-8 or contains a NUL byte";
    }
    if (std::holds_alternative<sdk::Timestamp>(f->value)) {
      const std::int64_t m = std::get<sdk::Timestamp>(f->value).micros;
      if (m < kMinTimestamp || m > kMaxTimestamp) {
        return "field '" + f->name + "': timestamp out of range (years 1 to 9999)";
      }
    }
  }
  return std::nullopt;
}

namespace {

constexpr std::int64_t kPgEpochMicros = 946'684'800'000'000LL;  // 2000-01-01 in Unix micros

void put16(std::uint16_t v, std::string& out) {
  out += static_cast<char>(v >> 8U);
  out += static_cast<char>(v & 0xFFU);
}
void put32(std::uint32_t v, std::string& out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out += static_cast<char>((v >> static_cast<unsigned>(shift)) & 0xFFU);
  }
}
void put64(std::uint64_t v, std::string& out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out += static_cast<char>((v >> static_cast<unsigned>(shift)) & 0xFFU);
  }
}
void put_null(std::string& out) { put32(0xFFFFFFFFU, out); }
void put_text(std::string_view s, std::string& out) {
  put32(static_cast<std::uint32_t>(s.size()), out);
  out.append(s);
}
void put_timestamp(std::int64_t unix_micros, std::string& out) {
  put32(8, out);
  put64(static_cast<std::uint64_t>(unix_micros - kPgEpochMicros), out);
}
int hex(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }
void put_uuid(std::string_view id, std::string& out) {
  put32(16, out);
  int hi = -1;
  for (char c : id) {
    if (c == '-') {
      continue;
    }
    if (hi < 0) {
      hi = hex(c);
    } else {
      out += static_cast<char>((hi << 4) | hex(c));
      hi = -1;
    }
  }
}
void put_inet(const std::string& ip, std::string& out) {
  unsigned char addr[16];
  // PostgreSQL's inet wire format: family (2 = IPv4, 3 = IPv6), bits, is_cidr, length, bytes.
  if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
    put32(8, out);
    out += '\x02';
    out += static_cast<char>(32);
    out += '\0';
    out += static_cast<char>(4);
    out.append(reinterpret_cast<const char*>(addr), 4);
  } else if (inet_pton(AF_INET6, ip.c_str(), addr) == 1) {
    put32(20, out);
    out += '\x03';
    out += static_cast<char>(128);
    out += '\0';
    out += static_cast<char>(16);
    out.append(reinterpret_cast<const char*>(addr), 16);
  } else {
    put_null(out);  // not reached: validate() refuses such addresses
  }
}
void put_jsonb(std::string_view json, std::string& out) {
  put32(static_cast<std::uint32_t>(json.size() + 1), out);
  out += '\x01';  // jsonb binary format version
  out.append(json);
}

}  // namespace

void append_copy_header(std::string& out) {
  out.append("PGCOPY\n\xff\r\n\0", 11);
  put32(0, out);  // flags
  put32(0, out);  // header extension length
}

void append_copy_trailer(std::string& out) { put16(0xFFFFU, out); }

void append_copy_row(const sdk::Record& r, const Layout& layout, std::string& out) {
  Row& row = scratch_row();
  row.fill(r, layout);
  put16(static_cast<std::uint16_t>(2 + layout.columns.size() + 2), out);
  put_timestamp(r.time.micros, out);
  put_uuid(r.id, out);
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    const Value* v = row.v[i];
    if (v == nullptr) {
      put_null(out);
      continue;
    }
    switch (sdk::type_of(*v)) {
      case ValueType::null:
        put_null(out);
        break;
      case ValueType::boolean:
        put32(1, out);
        out += std::get<bool>(*v) ? '\x01' : '\0';
        break;
      case ValueType::integer: {
        const std::int64_t n = std::get<std::int64_t>(*v);
        if (layout.columns[i].encoding == Encoding::int4) {  // validated: fits
          put32(4, out);
          put32(static_cast<std::uint32_t>(static_cast<std::int32_t>(n)), out);
        } else {
          put32(8, out);
          put64(static_cast<std::uint64_t>(n), out);
        }
        break;
      }
      case ValueType::floating: {
        std::uint64_t bits = 0;
        const double d = std::get<double>(*v);
        std::memcpy(&bits, &d, sizeof bits);
        put32(8, out);
        put64(bits, out);
        break;
      }
      case ValueType::string:
        if (layout.columns[i].encoding == Encoding::inet) {
          put_inet(std::get<std::string>(*v), out);
        } else {
          put_text(std::get<std::string>(*v), out);
        }
        break;
      case ValueType::timestamp:
        put_timestamp(std::get<sdk::Timestamp>(*v).micros, out);
        break;
    }
  }
  thread_local std::string json;
  json.clear();
  json += '{';
  bool first = true;
  for (const auto& [k, val] : r.labels) {
    if (!first) {
      json += ',';
    }
    first = false;
    common::append_json_string(k, json);
    json += ':';
    common::append_json_string(val, json);
  }
  json += '}';
  put_jsonb(json, out);
  if (row.extra.empty()) {
    put_null(out);
  } else {
    json.clear();
    json += '{';
    for (std::size_t i = 0; i < row.extra.size(); ++i) {
      if (i > 0) {
        json += ',';
      }
      common::append_json_string(row.extra[i]->name, json);
      json += ':';
      append_json_value(row.extra[i]->value, json);
    }
    json += '}';
    put_jsonb(json, out);
  }
}

}  // namespace webmon::plugins::postgres_sink
