// Validation and COPY encoding of http_check rows (see rows.hpp).
#include "rows.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <variant>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

using sdk::Value;
using sdk::ValueType;

enum Col : std::uint8_t {
  kTarget,
  kUrl,
  kMethod,
  kAgent,
  kSuccess,
  kStatusCode,
  kError,
  kErrorMessage,
  kResponseTime,
  kDns,
  kConnect,
  kTls,
  kTtfb,
  kTransfer,
  kBodyBytes,
  kHttpVersion,
  kRemoteIp,
  kRedirects,
  kRegexMatched,
  kTlsCertNotAfter,
  kTlsCertIssuer,
  kTlsVersion,
  kLateness,
  kColumnCount,
};

constexpr std::array<FieldColumn, kColumnCount> kColumns{{
    {"target", "text NOT NULL", false},
    {"url", "text NOT NULL", false},
    {"method", "text NOT NULL", false},
    {"agent", "text NOT NULL", false},
    {"success", "boolean NOT NULL", false},
    {"status_code", "integer", true},
    {"error", "text", true},
    {"error_message", "text", true},
    {"response_time_ms", "double precision NOT NULL", false},
    {"dns_ms", "double precision", true},
    {"connect_ms", "double precision", true},
    {"tls_ms", "double precision", true},
    {"ttfb_ms", "double precision", true},
    {"transfer_ms", "double precision", true},
    {"body_bytes", "bigint NOT NULL", false},
    {"http_version", "text", true},
    {"remote_ip", "inet", true},
    {"redirects", "integer NOT NULL", false},
    {"regex_matched", "boolean", true},
    {"tls_cert_not_after", "timestamptz", true},
    {"tls_cert_issuer", "text", true},
    {"tls_version", "text", true},
    {"lateness_ms", "double precision NOT NULL", false},
}};

constexpr std::array<ValueType, kColumnCount> kTypes{
    ValueType::string,   ValueType::string,   ValueType::string,    ValueType::string,
    ValueType::boolean,  ValueType::integer,  ValueType::string,    ValueType::string,
    ValueType::floating, ValueType::floating, ValueType::floating,  ValueType::floating,
    ValueType::floating, ValueType::floating, ValueType::integer,   ValueType::string,
    ValueType::string,   ValueType::integer,  ValueType::boolean,   ValueType::timestamp,
    ValueType::string,   ValueType::string,   ValueType::floating,
};

// RFC 3339 years 1..9999, the range the wire format and PostgreSQL both handle.
constexpr std::int64_t kMinTimestamp = -62135596800LL * 1'000'000;
constexpr std::int64_t kMaxTimestamp = 253402300799LL * 1'000'000;

int column_of(std::string_view name) noexcept {
  // Fast path for the canonical order is in Row below; this is the general lookup.
  for (std::size_t i = 0; i < kColumns.size(); ++i) {
    if (kColumns[i].name == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

/// The record's fields by column, plus the ones the table has no column for.
struct Row {
  std::array<const Value*, kColumnCount> v{};
  std::array<const sdk::Field*, 8> extra{};
  std::size_t extra_count = 0;
  bool too_many_extra = false;

  explicit Row(const sdk::Record& r) {
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
      const sdk::Field& f = r.fields[i];
      int c = i < kColumns.size() && kColumns[i].name == f.name ? static_cast<int>(i)
                                                                 : column_of(f.name);
      if (c >= 0) {
        v[static_cast<std::size_t>(c)] = &f.value;
      } else if (extra_count < extra.size()) {
        extra[extra_count++] = &f;
      } else {
        too_many_extra = true;
      }
    }
  }
  [[nodiscard]] bool is_null(Col c) const noexcept {
    return v[c] == nullptr || std::holds_alternative<std::monostate>(*v[c]);
  }
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

}  // namespace

std::span<const FieldColumn> http_check_field_columns() noexcept { return kColumns; }

const std::string& http_check_column_list() {
  static const std::string list = [] {
    std::string s = "\"time\", id";
    for (const auto& c : kColumns) {
      s += ", ";
      s += c.name;
    }
    s += ", labels, extra";
    return s;
  }();
  return list;
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

void append_copy_text(std::string_view s, std::string& out) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char* esc = nullptr;
    switch (c) {
      case '\\':
        esc = "\\\\";
        break;
      case '\n':
        esc = "\\n";
        break;
      case '\r':
        esc = "\\r";
        break;
      case '\t':
        esc = "\\t";
        break;
      default:
        continue;
    }
    out.append(s.data() + start, i - start);
    out += esc;
    start = i + 1;
  }
  out.append(s.data() + start, s.size() - start);
}

std::optional<std::string> validate(const sdk::Record& r, const TimeWindow& window) {
  if (r.kind != "http_check") {
    return "unknown record kind '" + r.kind + "' (this sink stores http_check)";
  }
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
  const Row row(r);
  if (row.too_many_extra) {
    return "too many fields unknown to http_check (at most 8 are kept in 'extra')";
  }
  for (std::size_t i = 0; i < kColumnCount; ++i) {
    const FieldColumn& c = kColumns[i];
    const Value* v = row.v[i];
    const ValueType t = v != nullptr ? sdk::type_of(*v) : ValueType::null;
    if (t == ValueType::null) {
      if (!c.nullable) {
        return "field '" + std::string(c.name) + "': required " +
               std::string(common::type_name(kTypes[i])) + (v == nullptr ? " is missing" : " is null");
      }
      continue;
    }
    if (t != kTypes[i]) {
      return "field '" + std::string(c.name) + "': expected " +
             std::string(common::type_name(kTypes[i])) + (c.nullable ? " or null" : "") +
             ", got " + std::string(common::type_name(t));
    }
    const std::string name(c.name);
    switch (t) {
      case ValueType::string:
        if (!is_storable_text(std::get<std::string>(*v))) {
          return "field '" + name + "': not valid UTF-8 or contains a NUL byte";
        }
        break;
      case ValueType::floating: {
        const double d = std::get<double>(*v);
        if (!std::isfinite(d)) {
          return "field '" + name + "': not a finite number";
        }
        if (i != kLateness && d < 0) {
          return "field '" + name + "': negative duration " + describe(d);
        }
        break;
      }
      case ValueType::timestamp: {
        const std::int64_t m = std::get<sdk::Timestamp>(*v).micros;
        if (m < kMinTimestamp || m > kMaxTimestamp) {
          return "field '" + name + "': timestamp out of range (years 1 to 9999)";
        }
        break;
      }
      default:
        break;
    }
  }
  if (!row.is_null(kStatusCode)) {
    const std::int64_t sc = std::get<std::int64_t>(*row.v[kStatusCode]);
    if (sc < 100 || sc > 599) {
      return "field 'status_code': " + std::to_string(sc) + " is not an HTTP status (100-599)";
    }
  }
  const std::int64_t body = std::get<std::int64_t>(*row.v[kBodyBytes]);
  if (body < 0) {
    return "field 'body_bytes': negative size " + std::to_string(body);
  }
  const std::int64_t redirects = std::get<std::int64_t>(*row.v[kRedirects]);
  if (redirects < 0 || redirects > 1000) {
    return "field 'redirects': " + std::to_string(redirects) + " is out of range (0-1000)";
  }
  if (!row.is_null(kError)) {
    const auto& e = std::get<std::string>(*row.v[kError]);
    bool known = false;
    for (std::string_view cls : common::http_check_error_classes()) {
      known = known || cls == e;
    }
    if (!known) {
      return "field 'error': '" + e + "' is not an error class (dns, connect, timeout, tls, " +
             "http_status, body_mismatch, too_many_redirects, other)";
    }
  }
  if (!row.is_null(kRemoteIp)) {
    const auto& ip = std::get<std::string>(*row.v[kRemoteIp]);
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return "field 'remote_ip': '" + ip + "' is not an IP address";
    }
  }
  for (const auto& [k, val] : r.labels) {
    if (!is_storable_text(k) || !is_storable_text(val)) {
      return "label '" + k + "': not valid UTF-8 or contains a NUL byte";
    }
  }
  for (std::size_t i = 0; i < row.extra_count; ++i) {
    const sdk::Field& f = *row.extra[i];
    if (!is_storable_text(f.name) ||
        (std::holds_alternative<std::string>(f.value) &&
         !is_storable_text(std::get<std::string>(f.value)))) {
      return "field '" + f.name + "': not valid UTF-8 or contains a NUL byte";
    }
    if (std::holds_alternative<sdk::Timestamp>(f.value)) {
      const std::int64_t m = std::get<sdk::Timestamp>(f.value).micros;
      if (m < kMinTimestamp || m > kMaxTimestamp) {
        return "field '" + f.name + "': timestamp out of range (years 1 to 9999)";
      }
    }
  }
  return std::nullopt;
}

void append_copy_row(const sdk::Record& r, std::string& out) {
  const Row row(r);
  common::append_rfc3339(r.time, out);
  out += '\t';
  out += r.id;
  for (std::size_t i = 0; i < kColumnCount; ++i) {
    out += '\t';
    const Value* v = row.v[i];
    if (v == nullptr) {
      out += "\\N";
      continue;
    }
    switch (sdk::type_of(*v)) {
      case ValueType::null:
        out += "\\N";
        break;
      case ValueType::boolean:
        out += std::get<bool>(*v) ? 't' : 'f';
        break;
      case ValueType::integer:
        append_int(std::get<std::int64_t>(*v), out);
        break;
      case ValueType::floating:
        append_double(std::get<double>(*v), out);
        break;
      case ValueType::string:
        append_copy_text(std::get<std::string>(*v), out);
        break;
      case ValueType::timestamp:
        common::append_rfc3339(std::get<sdk::Timestamp>(*v), out);
        break;
    }
  }
  out += '\t';
  std::string json;
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
  append_copy_text(json, out);
  out += '\t';
  if (row.extra_count == 0) {
    out += "\\N";
  } else {
    json.clear();
    json += '{';
    for (std::size_t i = 0; i < row.extra_count; ++i) {
      if (i > 0) {
        json += ',';
      }
      common::append_json_string(row.extra[i]->name, json);
      json += ':';
      append_json_value(row.extra[i]->value, json);
    }
    json += '}';
    append_copy_text(json, out);
  }
  out += '\n';
}

}  // namespace webmon::plugins::postgres_sink
