// The JSON wire format: encoding, decoding, validation errors, timestamps.
#include "webmon/common/wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "webmon/common/kind_wire.hpp"
#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"

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

// `json` with its keys in reverse alphabetical order (fields before the envelope).
std::string keys_reversed(const std::string& json) {
  const nlohmann::json j = nlohmann::json::parse(json);
  std::string reordered = "{";
  for (auto it = j.rbegin(); it != j.rend(); ++it) {
    reordered += (reordered.size() > 1 ? "," : "") + nlohmann::json(it.key()).dump() + ":" +
                 it.value().dump();
  }
  return reordered + "}";
}

// sample() with its keys in reverse alphabetical order.
std::string sample_keys_reversed() { return keys_reversed(to_json(sample())); }

// The same, with a kind_hash.
std::string sample_keys_reversed_with_hash() {
  std::string json;
  append_json(sample(), "0123456789abcdef0123456789abcdef", json);
  return keys_reversed(json);
}

TEST(Wire, EncodesTheDesignFormat) {
  const std::string json = to_json(sample());
  EXPECT_EQ(
      json.rfind(
          R"({"schema":1,"kind":"http_check","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-11-27T22:00:00.123456Z","target":"example \"quoted\" \\ \n",)",
          0),
      0U)
      << json;
  EXPECT_NE(json.find(R"("response_time_ms":12.0,)"), std::string::npos);
  EXPECT_NE(json.find(R"("tls_cert_not_after":"2027-01-15T08:00:00.000000Z")"), std::string::npos);
  EXPECT_NE(json.find(R"("labels":{"region":"eu","team":"web"}})"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(json));
}

// The hash is specified (docs/wire-format.md) so that any producer can write it: the first 128
// bits of the SHA-256 of "kind\nversion\nfields", 32 lowercase hex digits. The expected values
// were computed independently of this code (Python's hashlib).
TEST(Wire, KindHashIsTheSha256OfTheThreeHeaderValues) {
  EXPECT_EQ(kind_hash("tcp_check", "1", "target:s!*,port:i!,labels:m!"),
            "e2f6c921ad49f0b93d6c7ceb64afddd4");
  EXPECT_EQ(kind_hash("", "", ""), "75a11da44c802486bc6f65640aa48a73");
  EXPECT_NE(kind_hash("tcp_check", "2", "target:s!*,port:i!,labels:m!"),
            kind_hash("tcp_check", "1", "target:s!*,port:i!,labels:m!"));
  EXPECT_TRUE(is_kind_hash("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(is_kind_hash("0123456789ABCDEF0123456789ABCDEF"));
  EXPECT_FALSE(is_kind_hash("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(is_kind_hash("0123456789abcdef0123456789abcdef0"));
  EXPECT_FALSE(is_kind_hash("0123456789abcdef0123456789abcdeg"));
}

// A lookup that answers with the compiled-in schemas and remembers what it was asked.
class RecordingLookup final : public SchemaLookup {
 public:
  const KindSchema* find(std::string_view kind, std::string_view hash,
                         std::string& /*error*/) override {
    kinds.emplace_back(kind);
    hashes.emplace_back(hash);
    return find_schema(kind);
  }
  std::vector<std::string> kinds;
  std::vector<std::string> hashes;
};

// The sample's JSON with one piece of text replaced (below).
std::string replaced(const std::string& from, const std::string& to);

// kafka_sink's form: "kind_hash" right after "kind"; it is envelope, not a field, and reaches
// the lookup on both of the decoder's paths, wherever it stands.
TEST(Wire, KindHashIsWrittenAfterTheKindAndGivenToTheLookup) {
  std::string json;
  append_json(sample(), "0123456789abcdef0123456789abcdef", json);
  EXPECT_EQ(
      json.rfind(
          R"({"schema":1,"kind":"http_check","kind_hash":"0123456789abcdef0123456789abcdef","id":)",
          0),
      0U)
      << json;
  EXPECT_TRUE(nlohmann::json::accept(json));
  std::string plain;
  append_json(sample(), "", plain);
  EXPECT_EQ(plain, to_json(sample()));

  sdk::Record reversed = sample();  // the fields in the reversed document's order
  std::sort(reversed.fields.begin(), reversed.fields.end(),
            [](const sdk::Field& x, const sdk::Field& y) { return x.name > y.name; });
  for (const bool fast : {true, false}) {
    for (const bool reverse : {false, true}) {
      const std::string doc = reverse ? sample_keys_reversed_with_hash() : json;
      JsonDecoder d;
      d.set_fast_path(fast);
      RecordingLookup lookup;
      sdk::Record r;
      std::string error;
      ASSERT_TRUE(d.decode(doc, r, error, lookup)) << error;
      EXPECT_EQ(r, reverse ? reversed : sample()) << "kind_hash is not a field";
      ASSERT_FALSE(lookup.hashes.empty());
      for (const auto& h : lookup.hashes) {
        EXPECT_EQ(h, "0123456789abcdef0123456789abcdef");
      }
    }
  }
  // Elsewhere in the object (another producer's order): the only question names it, and a
  // second copy of the same value is accepted; neither becomes a field.
  for (const std::string& doc :
       {replaced(R"(,"target":)", R"(,"kind_hash":"0123456789abcdef0123456789abcdef","target":)"),
        replaced(R"("kind":"http_check",)",
                 R"("kind":"http_check","kind_hash":"0123456789abcdef0123456789abcdef",)"
                 R"("kind_hash":"0123456789abcdef0123456789abcdef",)")}) {
    JsonDecoder d;
    RecordingLookup lookup;
    sdk::Record r;
    std::string error;
    ASSERT_TRUE(d.decode(doc, r, error, lookup)) << error << " FOR " << doc;
    EXPECT_EQ(r, sample()) << doc;
    ASSERT_FALSE(lookup.hashes.empty());
    for (const auto& h : lookup.hashes) {
      EXPECT_EQ(h, "0123456789abcdef0123456789abcdef") << doc;
    }
  }
  // Without one, the lookup is told so.
  JsonDecoder d;
  RecordingLookup lookup;
  sdk::Record r;
  std::string error;
  ASSERT_TRUE(d.decode(plain, r, error, lookup)) << error;
  ASSERT_FALSE(lookup.hashes.empty());
  EXPECT_EQ(lookup.hashes.front(), "");

  // A record field cannot take the name.
  sdk::Record odd = sample();
  odd.add("kind_hash", std::string("x"));
  EXPECT_EQ(to_json(odd), to_json(sample()));
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

// The sample's JSON with one piece of text replaced.
std::string replaced(const std::string& from, const std::string& to) {
  std::string json = to_json(sample());
  const auto at = json.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? json : json.replace(at, from.size(), to);
}

INSTANTIATE_TEST_SUITE_P(
    Wire, DecodeErrors,
    ::testing::Values(
        DecodeCase{"Garbage", "\x01\x02garbage",
                   "not JSON: The JSON document has an improper structure: missing or superfluous "
                   "commas, braces, missing keys, etc."},
        DecodeCase{"Truncated", to_json(sample()).substr(0, 100),
                   "not JSON: A string is opened, but never closed."},
        DecodeCase{"TruncatedAfterValue", to_json(sample()).substr(0, 31),  // ..."http_check"
                   "not JSON: The JSON document has an improper structure: missing or superfluous "
                   "commas, braces, missing keys, etc."},
        DecodeCase{"Empty", "", "not JSON: Empty: no JSON found"},
        DecodeCase{"TrailingContent", to_json(sample()) + " {}",
                   "not JSON: The JSON document has an improper structure: missing or superfluous "
                   "commas, braces, missing keys, etc."},
        DecodeCase{"MissingComma", R"({"schema":1 "kind":"x"})",
                   "not JSON: The JSON document has an improper structure: missing or superfluous "
                   "commas, braces, missing keys, etc."},
        DecodeCase{"LeadingZero", R"({"schema":1,"kind":"k","n":01})",
                   "not JSON: Problem while parsing a number"},
        DecodeCase{"BadEscape", R"({"schema":1,"kind":"a\q"})",
                   "not JSON: Problem while parsing a string"},
        DecodeCase{"LoneSurrogate", R"({"schema":1,"kind":"\ud800x"})",
                   "not JSON: Problem while parsing a string"},
        DecodeCase{"InvalidUtf8", "{\"schema\":1,\"kind\":\"\xC3\x28\"}",
                   "not JSON: The input is not valid UTF-8"},
        DecodeCase{"ControlInString", "{\"schema\":1,\"kind\":\"a\tb\"}",
                   "not JSON: Within strings, some characters must be escaped, we found "
                   "unescaped characters"},
        DecodeCase{
            "HugeInteger",
            replaced("\"status_code\":200", "\"status_code\":123456789012345678901234567890"),
            "not JSON: Problem while parsing a number"},
        DecodeCase{"HugeDouble", replaced("\"dns_ms\":0.5", "\"dns_ms\":1e999"),
                   "not JSON: Problem while parsing a number"},
        DecodeCase{"DeepNesting", replaced("\"dns_ms\":0.5", "\"dns_ms\":" + std::string(100, '[')),
                   "not JSON: The JSON document has an improper structure: missing or superfluous "
                   "commas, braces, missing keys, etc."},
        DecodeCase{"Array", "[1,2]", "not a JSON object (got array)"},
        DecodeCase{"WrongStatusType", with("status_code", R"("200")"),
                   "field 'status_code': expected int or null, got string"},
        DecodeCase{"MissingRequired", with("success", ""),
                   "field 'success': required bool is missing"},
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
        DecodeCase{"KindHashNotHex", with("kind_hash", R"("0123456789abcdef0123456789abcdeg")"),
                   "'kind_hash' must be a string of 32 lowercase hex digits"},
        DecodeCase{"KindHashUppercase", with("kind_hash", R"("0123456789ABCDEF0123456789ABCDEF")"),
                   "'kind_hash' must be a string of 32 lowercase hex digits"},
        DecodeCase{"KindHashShort", with("kind_hash", R"("0123")"),
                   "'kind_hash' must be a string of 32 lowercase hex digits"},
        DecodeCase{"KindHashNumber", with("kind_hash", "123"),
                   "'kind_hash' must be a string of 32 lowercase hex digits"},
        DecodeCase{"KindHashTwice",
                   replaced(R"("kind":"http_check",)",
                            R"("kind":"http_check","kind_hash":"0123456789abcdef0123456789abcdef",)"
                            R"("kind_hash":"0123456789abcdef0123456789abcde0",)"),
                   "'kind_hash' appears twice with different values"},
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
  ASSERT_TRUE(d.decode(
      R"({"schema":1,"kind":"custom","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-01-01T00:00:00Z","n":3,"x":1.5,"s":"t","b":false,"z":null})",
      r, error))
      << error;
  EXPECT_EQ(*r.get<std::int64_t>("n"), 3);
  EXPECT_EQ(*r.get<double>("x"), 1.5);
  EXPECT_EQ(*r.get<std::string>("s"), "t");
  EXPECT_EQ(*r.get<bool>("b"), false);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(*r.find("z")));
}

// The decoder accepts a message exactly when it is valid JSON (for scalar field values), and
// reads the same values as an independent parser (nlohmann::json).
TEST(Wire, AcceptsExactlyValidJson) {
  const std::string prefix =
      R"({"schema":1,"kind":"custom","id":"01890a5d-ac96-774b-bcce-b302099a8057","time":"2026-01-01T00:00:00Z","x":)";
  const std::vector<std::string> values = {"0",
                                           "-0",
                                           "7",
                                           "-12",
                                           "1.5e10",
                                           "-1E-5",
                                           "1e+2",
                                           "0.1",
                                           "2.5E3",
                                           "1e-320",
                                           "9223372036854775807",
                                           "-9223372036854775808",
                                           R"("\u00e9")",
                                           R"("\ud83d\ude00")",
                                           R"("a\/b")",
                                           R"("\b\f\n\r\t\"\\")",
                                           "true",
                                           "false",
                                           "null",
                                           "\"\xC3\xA9\xE2\x82\xAC\"",
                                           R"("")",
                                           " \t\n\r 5 \n",
                                           "01",
                                           "-",
                                           "1.",
                                           ".5",
                                           "1e",
                                           "1e+",
                                           "+1",
                                           "0x10",
                                           "-01",
                                           "tru",
                                           "nul",
                                           "falsey",
                                           R"("\x")",
                                           R"("\u12")",
                                           R"("\u12G4")",
                                           R"("\uD800")",
                                           R"("\uDC00")",
                                           R"("\uD800\u0041")",
                                           R"("a)",
                                           "'a'",
                                           "NaN",
                                           "Infinity",
                                           "-Infinity",
                                           "\"\xFF\"",
                                           "\"\xC0\xAF\"",
                                           "\"\xED\xA0\x80\"",
                                           "\"\xF4\x90\x80\x80\"",
                                           "\"a\x01\"",
                                           "1 2",
                                           "\"a\" \"b\"",
                                           "",
                                           ","};
  JsonDecoder d;
  for (const auto& v : values) {
    const std::string doc = prefix + v + "}";
    sdk::Record r;
    std::string error;
    const bool ok = d.decode(doc, r, error);
    const bool valid = nlohmann::json::accept(doc);
    EXPECT_EQ(ok, valid) << "value <" << v << ">: " << error;
    if (!valid) {
      EXPECT_EQ(error.rfind("not JSON: ", 0), 0U) << v << ": " << error;
    }
    if (!ok || !valid) {
      continue;
    }
    const nlohmann::json x = nlohmann::json::parse(doc)["x"];
    const sdk::Value* got = r.find("x");
    ASSERT_NE(got, nullptr) << v;
    if (x.is_string()) {
      EXPECT_EQ(std::get<std::string>(*got), x.get<std::string>()) << v;
    } else if (x.is_number_float()) {
      EXPECT_EQ(std::get<double>(*got), x.get<double>()) << v;
    } else if (x.is_number_integer()) {
      EXPECT_EQ(std::get<std::int64_t>(*got), x.get<std::int64_t>()) << v;
    } else if (x.is_boolean()) {
      EXPECT_EQ(std::get<bool>(*got), x.get<bool>()) << v;
    } else {
      EXPECT_TRUE(x.is_null()) << v;
      EXPECT_TRUE(std::holds_alternative<std::monostate>(*got)) << v;
    }
  }
}

// `doc` with one to three bytes replaced, removed or inserted (from `alphabet`) at random.
template <typename Rng>
std::string damaged(std::string doc, const std::string& alphabet, Rng& rng) {
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits && !doc.empty(); ++e) {
    const std::size_t at = rng() % doc.size();
    const char c = alphabet[rng() % alphabet.size()];
    switch (rng() % 3) {
      case 0:
        doc[at] = c;
        break;
      case 1:
        doc.erase(at, 1);
        break;
      default:
        doc.insert(at, 1, c);
    }
  }
  return doc;
}

// Random damage to a real message: whatever the decoder accepts is valid JSON, and what is not
// valid JSON is refused as "not JSON". Deterministic (fixed seed), so a failure reproduces.
TEST(Wire, DamagedMessagesNeverPassAsValid) {
  const std::string original = to_json(sample());
  const std::string alphabet = std::string("\"\\{}[],:01-.eE+ atnu\x80\xC3\x1F") + '\0';
  std::mt19937 rng(20261128);
  JsonDecoder d;
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string doc = damaged(original, alphabet, rng);
    sdk::Record r;
    std::string error;
    const bool ok = d.decode(doc, r, error);
    const bool valid = nlohmann::json::accept(doc);
    if (ok) {
      ++accepted;
      ASSERT_TRUE(valid) << "accepted invalid JSON: " << doc;
    }
    if (!valid) {
      ASSERT_EQ(error.rfind("not JSON: ", 0), 0U) << error << " FOR " << doc;
    }
  }
  EXPECT_GT(accepted, 0);  // some damage (inside strings) leaves a valid record
}

// The fast path (messages in the exact layout our encoder writes, of a kind with a schema)
// decodes exactly as the general decoder: the same outcome, the same error, the same record —
// into a new record and into a used one — for our own messages with random values and for the
// same messages damaged at random or with one value swapped for an awkward one.
TEST(Wire, FastPathDecodesAsTheGeneralDecoder) {
  std::mt19937_64 rng(20261202);
  JsonDecoder fast;
  JsonDecoder general;
  general.set_fast_path(false);
  sdk::Record reused;  // decoded into again and again, whatever it held
  std::size_t compared = 0;
  auto check = [&](const std::string& doc) {
    sdk::Record a;
    sdk::Record b;
    std::string ea;
    std::string eb;
    RecordingLookup la;
    RecordingLookup lb;
    const bool oka = fast.decode(doc, a, ea, la);
    const bool okb = general.decode(doc, b, eb, lb);
    ASSERT_EQ(oka, okb) << (oka ? eb : ea) << " FOR " << doc;
    std::string er;
    const bool okr = fast.decode(doc, reused, er);
    ASSERT_EQ(okr, okb) << er << " FOR " << doc;
    if (okb) {
      ASSERT_EQ(a, b) << doc;
      ASSERT_EQ(reused, b) << doc;
      // Every question to the lookup named the same kind and kind_hash (the general path asks
      // again when the fast one gives up after asking).
      ASSERT_FALSE(la.kinds.empty() || lb.kinds.empty()) << doc;
      for (std::size_t q = 0; q < la.kinds.size(); ++q) {
        ASSERT_EQ(la.kinds[q], lb.kinds.back()) << doc;
        ASSERT_EQ(la.hashes[q], lb.hashes.back()) << doc;
      }
    } else {
      ASSERT_EQ(ea, eb) << doc;
      ASSERT_EQ(er, eb) << doc;
    }
    ++compared;
  };
  auto any_double = [&] {
    double d = 0;
    do {
      const std::uint64_t bits = rng();
      std::memcpy(&d, &bits, sizeof d);
    } while (!std::isfinite(d));
    return d;
  };
  // Values that sit on the edges of what the fast path takes.
  const std::vector<std::string> awkward = {"0",
                                            "-0",
                                            "01",
                                            "-",
                                            "1.",
                                            ".5",
                                            "1e2",
                                            "1E+2",
                                            "1e-2",
                                            "-1.5e-300",
                                            "1.0",
                                            "1e400",
                                            "-1e400",
                                            "1e-400",
                                            "4.9e-324",
                                            "2.2250738585072014e-308",
                                            "1.7976931348623157e308",
                                            "-0.0",
                                            "0.000",
                                            "123456789.012345",
                                            "1234567890.12345678",
                                            "0.1000000000000000055511151231257827",
                                            "123456789012345678",
                                            "-123456789012345678",
                                            "1234567890123456789",
                                            "9223372036854775807",
                                            "-9223372036854775808",
                                            "18446744073709551616",
                                            "0.1",
                                            "0.30000000000000004",
                                            "null",
                                            "true",
                                            "false",
                                            "nul",
                                            "tru",
                                            R"("")",
                                            R"("x")",
                                            R"("2026-01-01T00:00:00Z")",
                                            R"("2026-01-01T00:00:00.1+02:00")",
                                            R"("2026-13-01T00:00:00Z")",
                                            R"("caf\u00e9")",
                                            "\"caf\xC3\xA9\"",
                                            R"({})",
                                            R"([])",
                                            R"("a\"b")"};
  const std::vector<std::string> targets = {
      "status_code", "body_bytes", "redirects",     "response_time_ms",
      "dns_ms",      "success",    "regex_matched", "tls_cert_not_after",
      "target",      "url",        "error",         "time",
      "id",          "schema",     "kind",          "kind_hash"};
  const std::string alphabet = std::string("\"\\{}[],:01-.eE+ atnul\x80\xC3\x1F") + '\0';
  for (int i = 0; i < 400; ++i) {
    sdk::Record r = sample();
    r.fields.front().value = "target-" + std::to_string(i);  // plain: the fast path's kind
    for (auto& f : r.fields) {
      switch (sdk::type_of(f.value)) {
        case sdk::ValueType::integer:
          f.value =
              static_cast<std::int64_t>(rng() >> (5 + rng() % 59)) * (rng() % 2 == 0 ? 1 : -1);
          break;
        case sdk::ValueType::floating:
          f.value = i % 2 == 0 ? any_double() : static_cast<double>(rng() % 100'000) / 1000.0;
          break;
        case sdk::ValueType::timestamp:
          f.value = sdk::Timestamp{static_cast<std::int64_t>(rng() % 253'402'300'799'000'000)};
          break;
        default:
          break;
      }
    }
    r.labels.clear();
    for (std::uint64_t l = rng() % 4; l > 0; --l) {
      r.labels["k" + std::to_string(rng() % 10)] = "v" + std::to_string(rng() % 1000);
    }
    // Half of them as kafka_sink writes them, with a kind_hash.
    std::string doc;
    append_json(r, i % 2 == 0 ? "0123456789abcdef0123456789abcdef" : "", doc);
    const std::uint64_t before = fast.fast_decodes();
    check(doc);
    ASSERT_EQ(fast.fast_decodes(), before + 2) << "not on the fast path: " << doc;
    // One value swapped for an awkward one.
    const std::string& key = targets[rng() % (i % 2 == 0 ? targets.size() : targets.size() - 1)];
    const auto at = doc.find("\"" + key + "\":");
    ASSERT_NE(at, std::string::npos) << key;
    const std::size_t begin = at + key.size() + 3;
    const std::size_t end =
        doc[begin] == '"' ? doc.find('"', begin + 1) + 1 : doc.find_first_of(",}", begin);
    check(doc.substr(0, begin) + awkward[rng() % awkward.size()] + doc.substr(end));
    // Random damage.
    for (int m = 0; m < 25; ++m) {
      check(damaged(doc, alphabet, rng));
    }
  }
  EXPECT_EQ(compared, 400U * 27U);
}

// Keys in another order than ours (fields before the envelope) decode to the same record.
TEST(Wire, AnyKeyOrderDecodesTheSame) {
  const std::string reordered = sample_keys_reversed();
  JsonDecoder d;
  sdk::Record r;
  std::string error;
  ASSERT_TRUE(d.decode(reordered, r, error)) << error;
  sdk::Record expected = sample();  // nlohmann keeps keys sorted: we wrote them in reverse
  std::sort(expected.fields.begin(), expected.fields.end(),
            [](const sdk::Field& x, const sdk::Field& y) { return x.name > y.name; });
  EXPECT_EQ(r, expected);
}

// Decoding into a record used before (kafka_source decodes into records of finished batches)
// gives the same record as decoding into a new one, whatever the old one held: more or fewer
// fields, other types in the same places, other labels, another kind.
TEST(Wire, DecodingIntoAUsedRecordEqualsDecodingIntoANewOne) {
  const std::string id = "01890a5d-ac96-774b-bcce-b302099a8057";
  const std::string head =
      R"({"schema":1,"kind":"custom","id":")" + id + R"(","time":"2026-01-01T00:00:00Z")";
  const std::vector<std::string> docs = {
      to_json(sample()),
      with("labels", R"({"a":"1","region":"eu","zone":"z-with-a-long-value-0000000"})"),
      with("labels", R"({"b":"2"})"),
      with("labels", ""),
      with("labels", "{}"),
      with("url", R"("https://a-much-longer-url.example.com/with/a/path?and=query")"),
      with("status_code", "null"),
      with("error_message", R"("a message long enough to live on the heap")"),
      sample_keys_reversed(),
      head + R"(,"n":3,"x":1.5,"s":"a string longer than fifteen","b":false,"z":null})",
      head + R"(,"n":"now a string","labels":{"only":"one"}})",
      head + "}",
      head + R"(,"labels":{"a":"1"},"labels":{"b":"2"}})",  // a repeated key adds to the first
      head + R"(,"labels":{"z":"1","a":"2"}})",             // not in the map's order
  };
  JsonDecoder d;
  std::string error;
  for (const auto& before : docs) {
    for (const auto& doc : docs) {
      sdk::Record used;
      ASSERT_TRUE(d.decode(before, used, error)) << error << " FOR " << before;
      ASSERT_TRUE(d.decode(doc, used, error)) << error << " FOR " << doc;
      sdk::Record fresh;
      ASSERT_TRUE(d.decode(doc, fresh, error)) << error << " FOR " << doc;
      EXPECT_EQ(used, fresh) << doc << " AFTER " << before;
    }
  }
  // A repeated labels key adds to the first; keys in any order end up in the map.
  sdk::Record r;
  ASSERT_TRUE(d.decode(docs[12], r, error)) << error;
  EXPECT_EQ(r.labels, (sdk::Labels{{"a", "1"}, {"b", "2"}}));
  ASSERT_TRUE(d.decode(docs[13], r, error)) << error;
  EXPECT_EQ(r.labels, (sdk::Labels{{"a", "2"}, {"z", "1"}}));
}

// Random records (valid UTF-8 with quotes, backslashes and control characters; any int64;
// doubles of every kind; timestamps in years 1-9999; labels): the encoder's output is valid JSON
// that an independent parser reads back with the same values, and our decoder returns the same
// record (timestamps as their text: an unknown kind has no schema).
TEST(Wire, RandomRecordsRoundTripThroughAnIndependentParser) {
  std::mt19937_64 rng(20261128);
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           "0",
                                           " ",
                                           "\"",
                                           "\\",
                                           "/",
                                           "\n",
                                           "\t",
                                           "\x01",
                                           "\x1f",
                                           "\x7f",
                                           "\xC3\xA9",
                                           "\xE2\x82\xAC",
                                           "\xF0\x9F\x98\x80",
                                           "\xEF\xBF\xBF",
                                           "{",
                                           "}",
                                           ","};
  auto text = [&] {
    std::string out;
    const std::uint64_t n = pick(4) == 0 ? pick(200) : pick(20);
    for (std::uint64_t i = 0; i < n; ++i) {
      out += pieces[pick(pieces.size())];
    }
    return out;
  };
  auto number = [&]() -> double {
    switch (pick(6)) {
      case 0:
        return static_cast<double>(static_cast<std::int64_t>(pick(20'000'000)) - 10'000'000) /
               1000.0;
      case 1: {
        double d = 0;
        const std::uint64_t bits = rng();
        std::memcpy(&d, &bits, sizeof d);
        return d;  // any bit pattern: subnormals, huge, NaN, infinities
      }
      case 2:
        return static_cast<double>(pick(1000)) / 7.0;
      case 3:
        return 1e15 + static_cast<double>(pick(1000));
      case 4:
        return std::numeric_limits<double>::denorm_min() * static_cast<double>(pick(100));
      default:
        return -static_cast<double>(pick(100000)) * 1e-9;
    }
  };
  JsonDecoder d;
  for (int n = 0; n < 3000; ++n) {
    sdk::Record r;
    r.kind = "custom";
    r.id = "01890a5d-ac96-774b-bcce-b302099a8057";
    r.time = sdk::Timestamp{static_cast<std::int64_t>(pick(253'402'300'799'000'000ULL)) -
                            62'135'596'800'000'000LL};  // 0001-01-01 .. 9999-12-31
    sdk::Record expected = r;
    const auto fields = pick(30);
    for (std::uint64_t f = 0; f < fields; ++f) {
      std::string name = text() + "#" + std::to_string(f);  // unique: JSON objects keep the last
      sdk::Value v;
      switch (pick(6)) {
        case 0:
          break;
        case 1:
          v = pick(2) == 1;
          break;
        case 2:
          v = static_cast<std::int64_t>(rng());
          break;
        case 3:
          v = number();
          break;
        case 4:
          v = text();
          break;
        default:
          v = sdk::Timestamp{static_cast<std::int64_t>(pick(253'402'300'799'000'000ULL)) -
                             62'135'596'800'000'000LL};
      }
      r.add(name, v);
      sdk::Value want = v;
      if (const auto* dv = std::get_if<double>(&v); dv != nullptr && !std::isfinite(*dv)) {
        want = std::monostate{};
      } else if (const auto* ts = std::get_if<sdk::Timestamp>(&v)) {
        std::string t;
        append_rfc3339(*ts, t);
        want = t;
      }
      expected.add(name, want);
    }
    for (std::uint64_t l = pick(4); l > 0; --l) {
      r.labels[text()] = text();
    }
    expected.labels = r.labels;

    const std::string json = to_json(r);
    ASSERT_TRUE(nlohmann::json::accept(json)) << json;
    const nlohmann::json j = nlohmann::json::parse(json);
    for (const auto& f : expected.fields) {
      ASSERT_TRUE(j.contains(f.name)) << f.name;
      const nlohmann::json& x = j[f.name];
      switch (sdk::type_of(f.value)) {
        case sdk::ValueType::null:
          EXPECT_TRUE(x.is_null()) << f.name;
          break;
        case sdk::ValueType::boolean:
          EXPECT_EQ(x.get<bool>(), std::get<bool>(f.value));
          break;
        case sdk::ValueType::integer:
          EXPECT_EQ(x.get<std::int64_t>(), std::get<std::int64_t>(f.value));
          break;
        case sdk::ValueType::floating:
          ASSERT_TRUE(x.is_number_float()) << x.dump();
          EXPECT_EQ(x.get<double>(), std::get<double>(f.value)) << x.dump();
          break;
        default:
          EXPECT_EQ(x.get<std::string>(), std::get<std::string>(f.value));
      }
    }
    using LabelMap = std::map<std::string, std::string>;
    const LabelMap labels(r.labels.begin(), r.labels.end());
    EXPECT_EQ(j["labels"].get<LabelMap>(), labels);

    sdk::Record back;
    std::string error;
    ASSERT_TRUE(d.decode(json, back, error)) << error << ": " << json;
    ASSERT_EQ(back, expected) << json;
  }
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
