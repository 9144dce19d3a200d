// JSON wire format: the hand-written encoder (the hot path of every sink). The decoder is in
// wire_decode.cpp.
#include "webmon/common/wire.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <cstdint>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "wire_internal.hpp"

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
    if (reserved_name(f.name)) {
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

}  // namespace webmon::common
