// RFC 3339 conversions using Howard Hinnant's days-from-civil algorithms (public domain),
// independent of the C library's time zone state.
#include "webmon/common/time.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace webmon::common {
namespace {

constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t y;
  unsigned m;
  unsigned d;
};

constexpr Civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2 ? 1 : 0), m, d};
}

// "00".."99": timestamps are written two digits at a time (they are a good part of the cost of
// encoding a record).
constexpr auto kDigitPairs = [] {
  std::array<char, 200> t{};
  for (std::size_t i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

char* put2(char* p, unsigned v) {
  std::memcpy(p, kDigitPairs.data() + 2 * std::size_t{v}, 2);
  return p + 2;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned& value) {
  if (pos + n > s.size()) {
    return false;
  }
  value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    value = value * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

char* write_rfc3339(sdk::Timestamp t, char* p) noexcept {
  std::int64_t secs = t.micros / 1'000'000;
  std::int64_t frac = t.micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::int64_t days = secs / 86'400;
  std::int64_t sod = secs % 86'400;
  if (sod < 0) {
    sod += 86'400;
    --days;
  }
  const Civil c = civil_from_days(days);
  const unsigned y4 = static_cast<unsigned>(c.y) % 10000;  // years beyond 9999: the last 4 digits
  const auto s = static_cast<unsigned>(sod);
  const auto f = static_cast<unsigned>(frac);
  p = put2(p, y4 / 100);
  p = put2(p, y4 % 100);
  *p++ = '-';
  p = put2(p, c.m);
  *p++ = '-';
  p = put2(p, c.d);
  *p++ = 'T';
  p = put2(p, s / 3600);
  *p++ = ':';
  p = put2(p, s / 60 % 60);
  *p++ = ':';
  p = put2(p, s % 60);
  *p++ = '.';
  p = put2(p, f / 10000);
  p = put2(p, f / 100 % 100);
  p = put2(p, f % 100);
  *p++ = 'Z';
  return p;
}

void append_rfc3339(sdk::Timestamp t, std::string& out) {
  char buf[32];
  out.append(buf, static_cast<std::size_t>(write_rfc3339(t, buf) - buf));
}

std::optional<sdk::Timestamp> parse_rfc3339(std::string_view s) {
  unsigned y = 0;
  unsigned mo = 0;
  unsigned d = 0;
  unsigned h = 0;
  unsigned mi = 0;
  unsigned se = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap(y) ? 1U : 0U) ||
      h > 23 || mi > 59 || se > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 6) {
        micros = micros * 10 + (s[pos] - '0');
      }
      ++n;
      ++pos;
    }
    if (n == 0 || n > 9) {
      return std::nullopt;
    }
    for (int i = n; i < 6; ++i) {
      micros *= 10;
    }
  }
  std::int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    unsigned oh = 0;
    unsigned om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (static_cast<std::int64_t>(oh) * 3600 + static_cast<std::int64_t>(om) * 60) *
             (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  const std::int64_t secs = days_from_civil(y, mo, d) * 86'400 + std::int64_t{h} * 3600 +
                            std::int64_t{mi} * 60 + std::min<unsigned>(se, 59) - offset;
  return sdk::Timestamp{secs * 1'000'000 + micros};
}

}  // namespace webmon::common
