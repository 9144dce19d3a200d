// Small helpers plugins commonly need: the current time, time-ordered UUIDs (version 7, so
// ids of records written together sort together in indexes), a fresh record with kind, id and
// time set, a stopwatch for checks, and RFC 3339 formatting.
// Header-only, standard library only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <utility>

#include "webmon/sdk/record.hpp"

namespace webmon::sdk {

/// Wall-clock now, UTC microseconds.
inline Timestamp now() noexcept {
  using namespace std::chrono;
  return Timestamp{duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()};
}

/// A random UUID version 7 (RFC 9562) whose first 48 bits are `at` in milliseconds.
/// Thread-safe (one generator per thread).
inline std::string make_uuid_v7(Timestamp at = now()) {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  const auto ms = static_cast<std::uint64_t>(at.micros / 1000);
  const std::uint64_t r1 = rng();
  const std::uint64_t r2 = rng();
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) {
    b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  }
  b[6] = static_cast<std::uint8_t>(0x70 | ((r1 >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(r1);
  b[8] = static_cast<std::uint8_t>(0x80 | ((r1 >> 16) & 0x3F));
  for (int i = 9; i < 16; ++i) {
    b[i] = static_cast<std::uint8_t>(r2 >> (8 * (i - 9)));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      ++pos;
    }
    out[pos++] = kHex[b[i] >> 4];
    out[pos++] = kHex[b[i] & 0x0F];
  }
  return out;
}

/// A new record of `kind` whose time is `at` and whose id is a UUID v7 of that time: what a
/// source sets on every record it makes (docs/plugins.md, "Records").
inline Record make_record(std::string kind, Timestamp at = now()) {
  Record r;
  r.kind = std::move(kind);
  r.time = at;
  r.id = make_uuid_v7(at);
  return r;
}

/// Measures elapsed time on the monotonic clock (never the wall clock, which can jump).
class Stopwatch {
 public:
  Stopwatch() noexcept : start_(std::chrono::steady_clock::now()) {}
  /// Milliseconds since construction, with microsecond resolution (a `float64` field in "ms").
  [[nodiscard]] double elapsed_ms() const noexcept {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Formats as RFC 3339 UTC with microseconds: 2026-11-27T22:00:00.123456Z.
inline std::string format_rfc3339(Timestamp t) {
  std::int64_t secs = t.micros / 1'000'000;
  std::int64_t frac = t.micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  // Years outside 0..9999 cannot be written in RFC 3339; clamp rather than overflow.
  const int year =
      tm.tm_year + 1900 < 0 ? 0 : (tm.tm_year + 1900 > 9999 ? 9999 : tm.tm_year + 1900);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", year, (tm.tm_mon + 1) % 100,
                tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
                static_cast<int>(frac));
  return buf;
}

}  // namespace webmon::sdk
