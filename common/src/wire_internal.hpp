// Internal to the wire format's encoder and decoder.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace webmon::common {

/// Names of the envelope keys, which a record field cannot take.
inline bool reserved_name(std::string_view name) {
  return name == "schema" || name == "kind" || name == "id" || name == "time" || name == "labels" ||
         name == "kind_hash";
}

// Bit i set when byte i of the 16 at s is not plain (>= 0x80, < 0x20, '"' or '\\'); without
// SSE2, bits above a special byte may be set as well, but the lowest set bit is always exact.
inline unsigned special_mask16(const char* s) {
#if defined(__SSE2__)
  __m128i v;
  std::memcpy(&v, s, 16);
  // Signed compare: bytes >= 0x80 are negative, so one compare catches them and controls.
  const __m128i ctl = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(quote, bslash))));
#else
  static_assert(std::endian::native == std::endian::little, "the word tricks assume it");
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  auto mask8 = [&](std::uint64_t w) {
    const std::uint64_t m = (w & kHigh) | ((w - kOnes * 0x20) & ~w & kHigh) |
                            has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'));
    return static_cast<unsigned>(((m >> 7U) * 0x0102040810204080ULL) >> 56U);
  };
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  std::memcpy(&lo, s, 8);
  std::memcpy(&hi, s + 8, 8);
  const unsigned l = mask8(lo);
  return l != 0 ? l : mask8(hi) << 8U;
#endif
}

}  // namespace webmon::common
