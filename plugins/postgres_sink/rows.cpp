// Validation and COPY encoding of http_check rows (see rows.hpp).
#include "rows.hpp"

#include <arpa/inet.h>

#include <array>
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

bool is_uuid(std::string_view s) noexcept { return common::is_uuid(s); }

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
int hex(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
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

void append_copy_row(const sdk::Record& r, std::string& out) {
  const Row row(r);
  put16(static_cast<std::uint16_t>(2 + kColumnCount + 2), out);
  put_timestamp(r.time.micros, out);
  put_uuid(r.id, out);
  for (std::size_t i = 0; i < kColumnCount; ++i) {
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
        if (i == kBodyBytes) {
          put32(8, out);
          put64(static_cast<std::uint64_t>(n), out);
        } else {  // integer columns: validated ranges fit in int4
          put32(4, out);
          put32(static_cast<std::uint32_t>(static_cast<std::int32_t>(n)), out);
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
        if (i == kRemoteIp) {
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
  if (row.extra_count == 0) {
    put_null(out);
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
    put_jsonb(json, out);
  }
}

}  // namespace webmon::plugins::postgres_sink
