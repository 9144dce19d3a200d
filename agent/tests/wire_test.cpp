// The JSON wire format: encoding, decoding, validation errors, timestamps.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::common {
namespace {

sdk::Record sample() {
  sdk::Record r;
  r.kind = "http_check";
  r.id = "01890a5d-ac96-774b-bcce-b302099a8057";
  r.time = sdk::Timestamp{1'795'816'800'123'456};  // 2026-11-27T22:00:00.123456Z
  r.add("target", std::string("example \"quoted\" \\ \n"));
  r.add("url", std::string("https://example.com/"));
  r.add("method", std::string("GET"));
  r.add("agent", std::string("a1"));
  r.add("success", true);
  r.add("status_code", std::int64_t{200});
  r.add("error", sdk::Value());
  r.add("error_message", sdk::Value());
  r.add("response_time_ms", 12.0);
  r.add("dns_ms", 0.5);
  r.add("connect_ms", sdk::Value());
  r.add("tls_ms", sdk::Value());
  r.add("ttfb_ms", 3.25);
  r.add("transfer_ms", 1e-7);
  r.add("body_bytes", std::int64_t{1234});
  r.add("http_version", std::string("1.1"));
  r.add("remote_ip", std::string("127.0.0.1"));
  r.add("redirects", std::int64_t{0});
  r.add("regex_matched", sdk::Value());
  r.add("tls_cert_not_after", sdk::Timestamp{1'800'000'000'000'000});
  r.add("tls_cert_issuer", std::string("CN=Test CA"));
  r.add("lateness_ms", 0.25);
  r.labels = {{"region", "eu"}, {"team", "web"}};
  return r;
}

TEST(Wire, EncodesTheDesignFormat) {
  const std::string json = to_json(sample());
  EXPECT_EQ(json.rfind(R"({"schema":1,"kind":"http_check","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-11-27T22:00:00.123456Z","target":"example \"quoted\" \\ \n",)", 0),
            0U)
      << json;
  EXPECT_NE(json.find(R"("response_time_ms":12.0,)"), std::string::npos);
  EXPECT_NE(json.find(R"("tls_cert_not_after":"2027-01-15T08:00:00.000000Z")"), std::string::npos);
  EXPECT_NE(json.find(R"("labels":{"region":"eu","team":"web"}})"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(json));
}

TEST(Wire, RoundTripsExactly) {
  JsonDecoder d;
  sdk::Record back;
  std::string error;
  ASSERT_TRUE(d.decode(to_json(sample()), back, error)) << error;
  EXPECT_EQ(back, sample());
}

TEST(Wire, InvalidUtf8AndControlCharactersStayValidJson) {
  sdk::Record r = sample();
  r.set("error_message", std::string("bad \xff\xfe byte \x01 and \xe2\x82\xac"));
  const std::string json = to_json(r);
  EXPECT_NE(json.find("\"bad \xEF\xBF\xBD\xEF\xBF\xBD byte \\u0001 and \xe2\x82\xac\""),
            std::string::npos)
      << json;
  EXPECT_TRUE(nlohmann::json::accept(json));
}

TEST(Wire, NonFiniteDoublesBecomeNull) {
  sdk::Record r = sample();
  r.set("dns_ms", std::numeric_limits<double>::quiet_NaN());
  EXPECT_NE(to_json(r).find(R"("dns_ms":null)"), std::string::npos);
}

struct DecodeCase {
  const char* name;
  std::string json;
  std::string error;
};

void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

class DecodeErrors : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeErrors, Reason) {
  JsonDecoder d;
  d.set_max_bytes(4096);
  sdk::Record r;
  std::string error;
  EXPECT_FALSE(d.decode(GetParam().json, r, error));
  EXPECT_EQ(error, GetParam().error);
}

std::string with(const std::string& field, const std::string& value) {
  nlohmann::json j = nlohmann::json::parse(to_json(sample()));
  if (value.empty()) {
    j.erase(field);
  } else {
    j[field] = nlohmann::json::parse(value);
  }
  return j.dump();
}

INSTANTIATE_TEST_SUITE_P(
    Wire, DecodeErrors,
    ::testing::Values(
        DecodeCase{"Garbage", "\x01\x02garbage", "not JSON: The JSON document has an improper structure: missing or superfluous commas, braces, missing keys, etc."},
        DecodeCase{"Truncated", to_json(sample()).substr(0, 100),
                   "not JSON: A string is opened, but never closed."},
        DecodeCase{"Array", "[1,2]", "not a JSON object (got array)"},
        DecodeCase{"WrongStatusType", with("status_code", R"("200")"),
                   "field 'status_code': expected int or null, got string"},
        DecodeCase{"MissingRequired", with("success", ""), "field 'success': required bool is missing"},
        DecodeCase{"NullRequired", with("url", "null"), "field 'url': expected string, got null"},
        DecodeCase{"BadTimestamp", with("tls_cert_not_after", R"("yesterday")"),
                   "field 'tls_cert_not_after': expected an RFC 3339 timestamp, got 'yesterday'"},
        DecodeCase{"NestedValue", with("extra", "[1]"), "field 'extra': unsupported type array"},
        DecodeCase{"NoId", with("id", ""), "missing 'id'"},
        DecodeCase{"BadId", with("id", R"("42")"), "'id' is not a UUID"},
        DecodeCase{"BadTime", with("time", R"("2026-13-01T00:00:00Z")"),
                   "'time' must be an RFC 3339 timestamp"},
        DecodeCase{"WrongSchema", with("schema", "2"), "unsupported 'schema' (expected 1)"},
        DecodeCase{"LabelNotString", with("labels", R"({"a":1})"), "label 'a' must be a string"},
        DecodeCase{"Oversized", std::string(5000, ' '),
                   "message of 5000 bytes exceeds the limit of 4096 bytes"}),
    [](const auto& tpi) { return std::string(tpi.param.name); });

TEST(Wire, IntegersWidenToDoublesForDoubleFields) {
  JsonDecoder d;
  sdk::Record r;
  std::string error;
  ASSERT_TRUE(d.decode(with("response_time_ms", "15"), r, error)) << error;
  EXPECT_EQ(*r.get<double>("response_time_ms"), 15.0);
}

TEST(Wire, UnknownKindsKeepJsonTypes) {
  JsonDecoder d;
  sdk::Record r;
  std::string error;
  ASSERT_TRUE(d.decode(R"({"schema":1,"kind":"custom","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-01-01T00:00:00Z","n":3,"x":1.5,"s":"t","b":false,"z":null})",
                       r, error))
      << error;
  EXPECT_EQ(*r.get<std::int64_t>("n"), 3);
  EXPECT_EQ(*r.get<double>("x"), 1.5);
  EXPECT_EQ(*r.get<std::string>("s"), "t");
  EXPECT_EQ(*r.get<bool>("b"), false);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(*r.find("z")));
}

TEST(Time, Rfc3339) {
  std::string s;
  append_rfc3339(sdk::Timestamp{0}, s);
  EXPECT_EQ(s, "1970-01-01T00:00:00.000000Z");
  s.clear();
  append_rfc3339(sdk::Timestamp{-1}, s);
  EXPECT_EQ(s, "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(parse_rfc3339("2026-11-27T22:00:00.123456Z")->micros, 1'795'816'800'123'456);
  EXPECT_EQ(parse_rfc3339("2026-11-27T23:00:00.123456789+01:00")->micros, 1'795'816'800'123'456);
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z")->micros, 1'709'164'800'000'000);
  EXPECT_FALSE(parse_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T22:00:00"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27 22:00"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T22:00:00.Z"));
}

}  // namespace
}  // namespace webmon::common
