// The binary record codec (format in record_codec.hpp). Encoding sizes the output once with an
// upper bound and writes through a pointer; decoding reuses the target record's storage.
#include "delivery/record_codec.hpp"

#include <bit>
#include <cassert>
#include <cstring>
#include <variant>

namespace webmon::delivery {
namespace {

inline char* put_varint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(static_cast<std::uint8_t>(v) | 0x80u);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline char* put_fixed64(char* p, std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 8);
  } else {
    for (int i = 0; i < 8; ++i) {
      p[i] = static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i)));
    }
  }
  return p + 8;
}

inline char* put_bytes(char* p, std::string_view s) {
  p = put_varint(p, s.size());
  if (!s.empty()) {
    std::memcpy(p, s.data(), s.size());
  }
  return p + s.size();
}

inline std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1u);
}

struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  const char* error = nullptr;

  bool fail(const char* what) {
    if (error == nullptr) {
      error = what;
    }
    p = end;
    return false;
  }
  bool varint(std::uint64_t& v) {
    if (p != end && *p < 0x80) {  // the common case: one byte
      v = *p++;
      return true;
    }
    std::uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) {
        return fail("truncated varint");
      }
      const std::uint8_t b = *p++;
      result |= static_cast<std::uint64_t>(b & 0x7Fu) << shift;
      if ((b & 0x80u) == 0) {
        v = result;
        return true;
      }
    }
    return fail("varint longer than 10 bytes");
  }
  bool fixed64(std::uint64_t& v) {
    if (end - p < 8) {
      return fail("truncated 8-byte value");
    }
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&v, p, 8);
    } else {
      v = 0;
      for (int i = 0; i < 8; ++i) {
        v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
      }
    }
    p += 8;
    return true;
  }
  bool byte(std::uint8_t& v) {
    if (p == end) {
      return fail("truncated byte");
    }
    v = *p++;
    return true;
  }
  bool bytes(std::string& s) {
    std::uint64_t n = 0;
    if (!varint(n)) {
      return false;
    }
    if (n > static_cast<std::uint64_t>(end - p)) {
      return fail("string length beyond the end of the record");
    }
    // resize + memcpy: no reallocation and no aliasing checks when the target (a record being
    // reused) already holds a string of that length, the usual case for field names.
    s.resize(static_cast<std::size_t>(n));
    if (n != 0) {
      std::memcpy(s.data(), p, static_cast<std::size_t>(n));
    }
    p += n;
    return true;
  }
  bool count(std::uint64_t& n, std::size_t min_item_bytes) {
    if (!varint(n)) {
      return false;
    }
    if (n > static_cast<std::uint64_t>(end - p) / min_item_bytes) {
      return fail("count larger than the record can hold");
    }
    return true;
  }
};

inline std::size_t varint_size(std::uint64_t v) {
  return static_cast<std::size_t>(std::bit_width(v | 1u) + 6) / 7;
}

inline std::size_t bytes_size(std::string_view s) { return varint_size(s.size()) + s.size(); }

std::size_t value_size(const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      return 0;
    case sdk::ValueType::boolean:
      return 1;
    case sdk::ValueType::integer:
      return varint_size(zigzag(std::get<std::int64_t>(v)));
    case sdk::ValueType::floating:
    case sdk::ValueType::timestamp:
      return 8;
    case sdk::ValueType::string:
      return bytes_size(std::get<std::string>(v));
  }
  return 0;
}

}  // namespace

void encode_record(const sdk::Record& r, std::string& out) {
  // The exact size first: one resize, no slack to zero-fill and trim.
  std::size_t size = 1 + bytes_size(r.kind) + bytes_size(r.id) + 8 + varint_size(r.fields.size()) +
                     varint_size(r.labels.size());
  for (const auto& f : r.fields) {
    size += bytes_size(f.name) + 1 + value_size(f.value);
  }
  for (const auto& [k, v] : r.labels) {
    size += bytes_size(k) + bytes_size(v);
  }
  const std::size_t start = out.size();
  out.resize(start + size);
  char* const base = out.data() + start;
  char* p = base;
  *p++ = static_cast<char>(kCodecVersion);
  p = put_bytes(p, r.kind);
  p = put_bytes(p, r.id);
  p = put_fixed64(p, static_cast<std::uint64_t>(r.time.micros));
  p = put_varint(p, r.fields.size());
  for (const auto& f : r.fields) {
    p = put_bytes(p, f.name);
    *p++ = static_cast<char>(f.value.index());
    switch (sdk::type_of(f.value)) {
      case sdk::ValueType::null:
        break;
      case sdk::ValueType::boolean:
        *p++ = std::get<bool>(f.value) ? 1 : 0;
        break;
      case sdk::ValueType::integer:
        p = put_varint(p, zigzag(std::get<std::int64_t>(f.value)));
        break;
      case sdk::ValueType::floating: {
        std::uint64_t bits;
        const double d = std::get<double>(f.value);
        std::memcpy(&bits, &d, 8);
        p = put_fixed64(p, bits);
        break;
      }
      case sdk::ValueType::string:
        p = put_bytes(p, std::get<std::string>(f.value));
        break;
      case sdk::ValueType::timestamp:
        p = put_fixed64(p, static_cast<std::uint64_t>(std::get<sdk::Timestamp>(f.value).micros));
        break;
    }
  }
  p = put_varint(p, r.labels.size());
  for (const auto& [k, v] : r.labels) {
    p = put_bytes(p, k);
    p = put_bytes(p, v);
  }
  assert(static_cast<std::size_t>(p - base) == size);
}

bool decode_record(std::string_view in, sdk::Record& out, std::string* error) {
  Reader rd{reinterpret_cast<const unsigned char*>(in.data()),
            reinterpret_cast<const unsigned char*>(in.data()) + in.size()};
  auto failed = [&]() {
    if (error != nullptr) {
      *error = rd.error != nullptr ? rd.error : "malformed record";
    }
    return false;
  };
  std::uint8_t version = 0;
  if (!rd.byte(version)) {
    return failed();
  }
  if (version != kCodecVersion) {
    if (error != nullptr) {
      *error = "unknown record encoding version " + std::to_string(version) + " (expected " +
               std::to_string(kCodecVersion) + ")";
    }
    return false;
  }
  std::uint64_t u = 0;
  if (!rd.bytes(out.kind) || !rd.bytes(out.id) || !rd.fixed64(u)) {
    return failed();
  }
  out.time.micros = static_cast<std::int64_t>(u);
  std::uint64_t n = 0;
  if (!rd.count(n, 2)) {  // a field takes at least a name length and a tag
    return failed();
  }
  out.fields.resize(static_cast<std::size_t>(n));
  for (auto& f : out.fields) {
    std::uint8_t tag = 0;
    if (!rd.bytes(f.name) || !rd.byte(tag)) {
      return failed();
    }
    switch (static_cast<sdk::ValueType>(tag)) {
      case sdk::ValueType::null:
        f.value.emplace<std::monostate>();
        break;
      case sdk::ValueType::boolean: {
        std::uint8_t b = 0;
        if (!rd.byte(b)) {
          return failed();
        }
        if (b > 1) {
          rd.fail("boolean value other than 0 or 1");
          return failed();
        }
        f.value.emplace<bool>(b == 1);
        break;
      }
      case sdk::ValueType::integer:
        if (!rd.varint(u)) {
          return failed();
        }
        f.value.emplace<std::int64_t>(unzigzag(u));
        break;
      case sdk::ValueType::floating: {
        if (!rd.fixed64(u)) {
          return failed();
        }
        double d;
        std::memcpy(&d, &u, 8);
        f.value.emplace<double>(d);
        break;
      }
      case sdk::ValueType::string: {
        auto* s = std::get_if<std::string>(&f.value);
        if (s == nullptr) {
          s = &f.value.emplace<std::string>();
        }
        if (!rd.bytes(*s)) {
          return failed();
        }
        break;
      }
      case sdk::ValueType::timestamp:
        if (!rd.fixed64(u)) {
          return failed();
        }
        f.value.emplace<sdk::Timestamp>(sdk::Timestamp{static_cast<std::int64_t>(u)});
        break;
      default:
        rd.fail("unknown value type tag");
        return failed();
    }
  }
  if (!rd.count(n, 2)) {
    return failed();
  }
  // Labels are usually the same names record after record: values are assigned in place while
  // the names match the target's, the map is rebuilt from the first difference on.
  auto it = out.labels.begin();
  std::string key;
  std::string value;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!rd.bytes(key) || !rd.bytes(value)) {
      return failed();
    }
    if (it != out.labels.end() && it->first == key) {
      it->second.swap(value);
      ++it;
      continue;
    }
    out.labels.erase(it, out.labels.end());
    out.labels.insert_or_assign(key, value);
    it = out.labels.end();
  }
  out.labels.erase(it, out.labels.end());
  if (rd.p != rd.end) {
    if (error != nullptr) {
      *error = "trailing bytes after the record";
    }
    return false;
  }
  return true;
}

}  // namespace webmon::delivery
