// JSON wire format: the hand-written encoder (the hot path of every sink). The decoder is in
// wire_decode.cpp.
#include "webmon/common/wire.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

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

// The encoder writes through a raw cursor into space known to be large enough, which is
// several times faster than appending to std::string piece by piece. The space is bounded from
// sizes alone (a byte never takes more than 6 output bytes, \u00XX), so a record is encoded in
// one pass; records of ordinary size go through a buffer on the stack and are appended with
// one copy, which is cheaper than zero-filling a resized std::string for the worst case.

// Quotes, 6 bytes per input byte, and 16 for a whole-block store past a short string's end.
constexpr std::size_t string_bound(std::size_t n) { return 18 + 6 * n; }
constexpr std::size_t kNumberBound = 40;  // also covers null, booleans and timestamps
constexpr std::size_t kStackBuffer = 8192;
constexpr bool kOwned = true;  // a std::string's data: 16 bytes readable (put_string)

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Writes the byte at s[i], which is not plain, and returns the input bytes consumed.
std::size_t put_special(char*& p, std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c >= 0x80) {
    const std::size_t len = utf8_length(s, i);
    if (len != 0) {
      std::memcpy(p, s.data() + i, len);
      p += len;
      return len;
    }
    p = put(p, "\xEF\xBF\xBD");  // invalid UTF-8 byte → U+FFFD
    return 1;
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
      *p++ = 'u';
      *p++ = '0';
      *p++ = '0';
      *p++ = kHex[c >> 4U];
      *p++ = kHex[c & 0x0FU];
  }
  return 1;
}

// The string literal of s. Plain bytes are checked and copied 16 at a time; the space bound
// leaves room for whole-block stores. With `readable16`, 16 bytes can be read from s.data()
// even when s is shorter (a std::string always owns at least 16 bytes), so a short string is
// checked and copied as one block.
char* put_string(char* p, std::string_view s, bool readable16 = false) {
  *p++ = '"';
  const char* d = s.data();
  const std::size_t n = s.size();
  if (readable16 && n < 16) {
    if ((special_mask16(d) & ((1U << n) - 1U)) == 0) {
      std::memcpy(p, d, 16);
      p[n] = '"';
      return p + n + 1;
    }
  }
  std::size_t i = 0;
  std::size_t run = 0;  // where the current verbatim run started (input index)
  for (;;) {
    bool found = false;
    while (i + 16 <= n) {
      const unsigned m = special_mask16(d + i);
      std::memcpy(p, d + i, 16);
      if (m != 0) {
        const auto k = static_cast<std::size_t>(__builtin_ctz(m));
        p += k;
        i += k;
        found = true;
        break;
      }
      p += 16;
      i += 16;
    }
    if (!found) {
      if (i == n) {
        break;
      }
      if (n >= 16 && n - 16 >= run) {
        // The last 16 bytes overlap what was just copied verbatim: check and store them whole.
        if (special_mask16(d + n - 16) == 0) {
          std::memcpy(p - (16 - (n - i)), d + n - 16, 16);
          p += n - i;
          break;
        }
      }
      while (i < n && kPlain[static_cast<unsigned char>(d[i])]) {
        *p++ = d[i++];
      }
      if (i == n) {
        break;
      }
    }
    i += put_special(p, s, i);
    run = i;
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
      const std::uint64_t a =
          v < 0 ? static_cast<std::uint64_t>(-v) : static_cast<std::uint64_t>(v);
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

char* put_value(char* p, const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      return put(p, "null");
    case sdk::ValueType::boolean:
      return *std::get_if<bool>(&v) ? put(p, "true") : put(p, "false");
    case sdk::ValueType::integer:
      return std::to_chars(p, p + 24, *std::get_if<std::int64_t>(&v)).ptr;
    case sdk::ValueType::floating:
      return put_double(p, *std::get_if<double>(&v));
    case sdk::ValueType::string:
      return put_string(p, *std::get_if<std::string>(&v), kOwned);
    case sdk::ValueType::timestamp:
      return put_time(p, *std::get_if<sdk::Timestamp>(&v));
  }
  return p;
}

// reserved_name() with the common case (no envelope key has 1, 3, 5, 7, 8 or more than 9
// bytes) decided on the size alone.
bool is_reserved(const std::string& name) {
  const std::size_t n = name.size();
  return (n == 2 || n == 4 || n == 6 || n == 9) && reserved_name(name);
}

std::size_t record_bound(const sdk::Record& r, std::string_view kind_hash) {
  std::size_t bound = 64 + 16 + string_bound(kind_hash.size()) + string_bound(r.kind.size()) +
                      string_bound(r.id.size()) + kNumberBound;
  for (const auto& f : r.fields) {
    const auto* s = std::get_if<std::string>(&f.value);
    bound +=
        2 + string_bound(f.name.size()) + (s != nullptr ? string_bound(s->size()) : kNumberBound);
  }
  for (const auto& [k, v] : r.labels) {
    bound += 2 + string_bound(k.size()) + string_bound(v.size());
  }
  return bound;
}

char* put_record(char* p, const sdk::Record& r, std::string_view kind_hash) {
  p = put(p, R"({"schema":1,"kind":)");
  p = put_string(p, r.kind, kOwned);
  if (!kind_hash.empty()) {
    p = put(p, R"(,"kind_hash":)");
    p = put_string(p, kind_hash, !kOwned);
  }
  p = put(p, R"(,"id":)");
  p = put_string(p, r.id, kOwned);
  p = put(p, R"(,"time":)");
  p = put_time(p, r.time);
  for (const auto& f : r.fields) {
    if (is_reserved(f.name)) {
      continue;  // cannot be represented; the record model keeps these out of fields
    }
    *p++ = ',';
    p = put_string(p, f.name, kOwned);
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
    p = put_string(p, k, kOwned);
    *p++ = ':';
    p = put_string(p, v, kOwned);
  }
  return put(p, "}}");
}

}  // namespace

void append_json_string(std::string_view s, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + string_bound(s.size()));
  char* end = put_string(out.data() + old, s);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void append_json(const sdk::Record& r, std::string_view kind_hash, std::string& out) {
  const std::size_t bound = record_bound(r, kind_hash);
  if (bound <= kStackBuffer) {
    char buf[kStackBuffer];
    const char* end = put_record(buf, r, kind_hash);
    out.append(buf, static_cast<std::size_t>(end - buf));
    return;
  }
  const std::size_t old = out.size();
  out.resize(old + bound);
  char* end = put_record(out.data() + old, r, kind_hash);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void append_json(const sdk::Record& r, std::string& out) { append_json(r, {}, out); }

std::string to_json(const sdk::Record& record) {
  std::string out;
  append_json(record, out);
  return out;
}

}  // namespace webmon::common
