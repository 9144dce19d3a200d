// Record codec and CRC32C: round trips of every value type and extreme values, refusal of
// malformed input, and known checksum values.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "delivery/crc32c.hpp"
#include "delivery/record_codec.hpp"
#include "test_util.hpp"

namespace webmon::delivery {
namespace {

using sdk::Record;
using sdk::Timestamp;
using sdk::Value;

Record round_trip(const Record& r) {
  std::string buf;
  encode_record(r, buf);
  Record out;
  std::string error;
  EXPECT_TRUE(decode_record(buf, out, &error)) << error;
  return out;
}

TEST(Codec, EveryValueTypeAndExtremes) {
  Record r;
  r.kind = "k";
  r.id = "0190d2c4-7f7e-7a1b-9c3d-000000000001";
  r.time = Timestamp{std::numeric_limits<std::int64_t>::min()};
  r.add("null", Value());
  r.add("true", true);
  r.add("false", false);
  r.add("int_min", std::numeric_limits<std::int64_t>::min());
  r.add("int_max", std::numeric_limits<std::int64_t>::max());
  r.add("int_zero", std::int64_t{0});
  r.add("int_minus_one", std::int64_t{-1});
  r.add("dbl_max", std::numeric_limits<double>::max());
  r.add("dbl_lowest", std::numeric_limits<double>::lowest());
  r.add("dbl_denorm", std::numeric_limits<double>::denorm_min());
  r.add("dbl_neg_zero", -0.0);
  r.add("dbl_inf", std::numeric_limits<double>::infinity());
  r.add("dbl_neg_inf", -std::numeric_limits<double>::infinity());
  r.add("str_empty", std::string());
  r.add("str_nul", std::string("a\0b\xff", 4));
  r.add("str_utf8", std::string("h\xC3\xA9llo \xE2\x9C\x93"));
  r.add("str_long", std::string(100'000, 'x'));
  r.add("ts_min", Timestamp{std::numeric_limits<std::int64_t>::min()});
  r.add("ts_max", Timestamp{std::numeric_limits<std::int64_t>::max()});
  r.add("", std::int64_t{300});  // an empty field name
  r.labels = {{"", ""}, {"region", "eu-west"}, {"z", std::string(1000, 'z')}};
  const Record out = round_trip(r);
  EXPECT_EQ(out, r);
  EXPECT_TRUE(std::signbit(*out.get<double>("dbl_neg_zero")));
  EXPECT_EQ(out.fields.size(), r.fields.size());
  for (std::size_t i = 0; i < r.fields.size(); ++i) {
    EXPECT_EQ(out.fields[i].value.index(), r.fields[i].value.index()) << r.fields[i].name;
  }
}

TEST(Codec, NanKeepsItsBits) {
  Record r;
  const double nan = std::bit_cast<double>(std::uint64_t{0x7FF8000000000123});
  r.add("nan", nan);
  const Record out = round_trip(r);
  ASSERT_NE(out.get<double>("nan"), nullptr);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(*out.get<double>("nan")), 0x7FF8000000000123u);
}

TEST(Codec, EmptyRecord) {
  const Record r;
  EXPECT_EQ(round_trip(r), r);
}

TEST(Codec, DecodeIntoAUsedRecordReplacesEverything) {
  const Record small = test::check_record(1);
  Record big = test::check_record(2);
  big.add("extra", std::string("x"));
  big.labels["other"] = "y";
  // Different types in the same positions: strings where numbers were and back.
  Record swapped = small;
  swapped.fields[0].value = std::int64_t{5};
  swapped.fields[5].value = std::string("two hundred");
  std::string buf;
  for (const Record* want : std::vector<const Record*>{&big, &small, &swapped, &big}) {
    buf.clear();
    encode_record(*want, buf);
    Record out = swapped;
    ASSERT_TRUE(decode_record(buf, out));
    EXPECT_EQ(out, *want);
  }
}

TEST(Codec, AppendsToExistingOutput) {
  std::string buf = "prefix";
  encode_record(test::check_record(3), buf);
  ASSERT_EQ(buf.substr(0, 6), "prefix");
  Record out;
  ASSERT_TRUE(decode_record(std::string_view(buf).substr(6), out));
  EXPECT_EQ(out, test::check_record(3));
  EXPECT_EQ(static_cast<std::uint8_t>(buf[6]), kCodecVersion);
}

TEST(Codec, RefusesEveryTruncation) {
  std::string buf;
  encode_record(test::check_record(4), buf);
  Record out;
  for (std::size_t n = 0; n < buf.size(); ++n) {
    std::string error;
    EXPECT_FALSE(decode_record(std::string_view(buf).substr(0, n), out, &error)) << n;
    EXPECT_FALSE(error.empty());
  }
}

TEST(Codec, RefusesOtherVersionUnknownTagAndTrailingBytes) {
  Record r;
  r.add("f", std::int64_t{1});
  std::string buf;
  encode_record(r, buf);
  Record out;
  std::string error;

  std::string v = buf;
  v[0] = static_cast<char>(kCodecVersion + 1);
  EXPECT_FALSE(decode_record(v, out, &error));
  EXPECT_NE(error.find("version"), std::string::npos) << error;

  // Layout: version, kind "", id "", 8 time bytes, count 1, name "f", tag.
  std::string t = buf;
  const std::size_t tag_at = 1 + 1 + 1 + 8 + 1 + 2;
  ASSERT_EQ(t[tag_at], static_cast<char>(sdk::ValueType::integer));
  t[tag_at] = 9;
  EXPECT_FALSE(decode_record(t, out, &error));
  EXPECT_NE(error.find("tag"), std::string::npos) << error;

  EXPECT_FALSE(decode_record(buf + "x", out, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos) << error;
}

TEST(Codec, RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  std::string good;
  encode_record(test::check_record(5), good);
  Record out;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    decode_record(b, out);  // may succeed or fail; must not crash or over-read (ASan build)
  }
}

TEST(Crc32c, KnownValues) {
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c(0, "", 0), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(0, zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
}

TEST(Crc32c, HardwareAndTableAgreeAndExtend) {
  std::mt19937_64 rng(11);
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4999}) {
    const std::uint32_t whole = crc32c(0, data.data(), n);
    EXPECT_EQ(whole, crc32c_portable(0, data.data(), n)) << n;
    const std::size_t half = n / 3;
    EXPECT_EQ(crc32c(crc32c(0, data.data(), half), data.data() + half, n - half), whole) << n;
  }
}

}  // namespace
}  // namespace webmon::delivery
