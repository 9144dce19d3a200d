// postgres_sink unit tests: configuration, validation, COPY encoding, classification, the
// sample pipeline and README. No server needed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "fake_context.hpp"
#include "options.hpp"
#include "pipeline_runner.hpp"
#include "rows.hpp"
#include "schema.hpp"
#include "sink.hpp"
#include "webmon/common/http_check_kind.hpp"
#include "webmon/common/schema.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

using testing::FakeContext;
using testing::make_check;

sdk::ConfigNode config(std::initializer_list<std::pair<const char*, const char*>> kv) {
  sdk::ConfigNode m = sdk::ConfigNode::make_map({"pipeline.yaml", 3, 5});
  for (const auto& [k, v] : kv) {
    m.set(k, sdk::ConfigNode(v, {"pipeline.yaml", 7, 9}));
  }
  return m;
}

std::string config_error(std::initializer_list<std::pair<const char*, const char*>> kv) {
  FakeContext ctx;
  try {
    PostgresSink sink(config(kv), ctx);
  } catch (const sdk::ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(PostgresSinkConfig, ValidConfigBuildsWithDefaults) {
  FakeContext ctx;
  PostgresSink sink(config({{"host", "127.0.0.1"}, {"user", "webmon"}}), ctx);
  const Options& o = sink.options();
  EXPECT_EQ(o.schema, "webmon");
  EXPECT_EQ(o.partition_interval, std::chrono::hours(24));
  EXPECT_EQ(o.retention.count(), 0);
  ASSERT_NE(o.conn.find("sslmode"), nullptr);
  EXPECT_EQ(*o.conn.find("sslmode"), "verify-full");
  EXPECT_EQ(*o.conn.find("connect_timeout"), "10");
  EXPECT_EQ(o.target, "127.0.0.1 as webmon (sslmode=verify-full)");
}

TEST(PostgresSinkConfig, OptionsOverrideConninfoAndSecretsStayOutOfMessages) {
  FakeContext ctx;
  PostgresSink sink(
      config({{"conninfo", "host=db.example port=6543 password=s3cret sslmode=require"},
              {"port", "15432"},
              {"database", "checks"},
              {"password", "hunter2"}}),
      ctx);
  const Options& o = sink.options();
  EXPECT_EQ(*o.conn.find("port"), "15432");
  EXPECT_EQ(*o.conn.find("password"), "hunter2");
  EXPECT_EQ(o.conn.find("sslmode"), nullptr);  // conninfo's sslmode=require stays in effect
  EXPECT_NE(o.target.find("(sslmode=require)"), std::string::npos) << o.target;
  EXPECT_EQ(o.target.find("s3cret"), std::string::npos);
  EXPECT_EQ(o.target.find("hunter2"), std::string::npos);
  EXPECT_NE(o.target.find("/checks"), std::string::npos);

  const std::string err = config_error({{"conninfo", "host=x password=s3cret bogus"}});
  EXPECT_NE(err.find("pipeline.yaml:7:9: option 'conninfo' is not a valid"), std::string::npos)
      << err;
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
}

TEST(PostgresSinkConfig, SecretsAreMarkedInTheOptionsTable) {
  for (const auto& o : kOptions) {
    const std::string name = o.name;
    EXPECT_EQ(o.secret, name == "password" || name == "conninfo") << name;
  }
}

TEST(PostgresSinkConfig, BadValuesAreRejectedWithPosition) {
  EXPECT_NE(config_error({{"sslmode", "verify"}})
                .find("pipeline.yaml:7:9: option 'sslmode' must be one of"),
            std::string::npos);
  EXPECT_NE(config_error({{"schema", "Bad-Name"}})
                .find("option 'schema' must be a lower-case identifier"),
            std::string::npos);
  EXPECT_NE(config_error({{"port", "70000"}})
                .find("pipeline.yaml:7:9: option 'port' must be at most 65535, got 70000"),
            std::string::npos);
  EXPECT_NE(config_error({{"port", "abc"}}).find("expected an integer"), std::string::npos);
  EXPECT_NE(config_error({{"partition_interval", "90m"}}).find("whole number of hours"),
            std::string::npos);
  EXPECT_NE(config_error({{"retention", "2h"}}).find("at least partition_interval"),
            std::string::npos);
  EXPECT_NE(config_error({{"host", ""}}).find("option 'host' must not be empty"),
            std::string::npos);
  EXPECT_EQ(config_error({{"partition_interval", "6h"}, {"retention", "7d"}}), "");
}

// The table's bounds, choices and types, checked without the host (load_options) ...
TEST(PostgresSinkConfig, TableChecksOutOfRangeBadChoiceAndWrongType) {
  EXPECT_NE(config_error({{"port", "0"}})
                .find("pipeline.yaml:7:9: option 'port' must be at least 1, got 0"),
            std::string::npos);
  EXPECT_NE(config_error({{"partitions_ahead", "1001"}})
                .find("pipeline.yaml:7:9: option 'partitions_ahead' must be at most 1000"),
            std::string::npos);
  EXPECT_NE(config_error({{"partitions_ahead", "-1"}})
                .find("option 'partitions_ahead' must be at least 0"),
            std::string::npos);
  EXPECT_NE(config_error({{"connect_timeout", "500ms"}})
                .find("pipeline.yaml:7:9: option 'connect_timeout' must be at least 1s"),
            std::string::npos);
  EXPECT_NE(config_error({{"partition_interval", "30m"}})
                .find("option 'partition_interval' must be at least 1h"),
            std::string::npos);
  EXPECT_NE(config_error({{"partition_interval", "400d"}})
                .find("option 'partition_interval' must be at most 366d"),
            std::string::npos);
  const std::string choice = config_error({{"sslmode", "VERIFY-FULL"}});
  EXPECT_NE(choice.find("pipeline.yaml:7:9: option 'sslmode' must be one of 'disable', 'allow', "
                        "'prefer', 'require', 'verify-ca', 'verify-full', got 'VERIFY-FULL'"),
            std::string::npos)
      << choice;
  EXPECT_NE(config_error({{"connect_timeout", "soon"}})
                .find("pipeline.yaml:7:9: expected a duration such as 250ms"),
            std::string::npos);
  EXPECT_NE(config_error({{"partitions_ahead", "three"}})
                .find("pipeline.yaml:7:9: expected an integer, got 'three'"),
            std::string::npos);
  // The bounds themselves are accepted.
  EXPECT_EQ(config_error({{"port", "65535"},
                          {"partitions_ahead", "1000"},
                          {"connect_timeout", "1s"},
                          {"partition_interval", "366d"},
                          {"retention", "0"}}),
            "");
}

// ... and by the host, which names the file, line and column of the value in the pipeline.
TEST(PostgresSinkConfig, HostRefusesBadValuesWithTheirPosition) {
  auto error_of = [](const std::string& options) {
    return webmon::testing::validate_pipeline(
        "sources:\n  gen: { plugin: generator, count: 1 }\nsinks:\n  pg:\n"
        "    plugin: postgres_sink\n    inputs: [gen]\n    host: 127.0.0.1\n" +
        options);
  };
  // `option` on line 8: the error is "pipeline.yaml:<at>: sink 'pg' (postgres_sink): <what>".
  auto expect_error = [&](const std::string& option, const std::string& at,
                          const std::string& what) {
    const std::string err = error_of(option);
    EXPECT_NE(err.find("pipeline.yaml:" + at + ": sink 'pg' (postgres_sink): " + what),
              std::string::npos)
        << option << " gave: " << err;
  };
  EXPECT_EQ(error_of(""), "");
  expect_error("    port: 70000\n", "8:11", "option 'port' must be at most 65535, got 70000");
  expect_error("    sslmode: sometimes\n", "8:14",
               "option 'sslmode' must be one of 'disable', 'allow', 'prefer', 'require', "
               "'verify-ca', 'verify-full', got 'sometimes'");
  expect_error("    partitions_ahead: [1]\n", "8:23",
               "option 'partitions_ahead': expected an integer, got a list");
  expect_error("    connect_timeout: 0\n", "8:22",
               "option 'connect_timeout' must be at least 1s, got 0");
  // A rule the table cannot express keeps its own message and position.
  expect_error("    partition_interval: 90m\n", "8:25",
               "option 'partition_interval' must be a whole number of hours");
}

TEST(PostgresSinkConfig, ConstructorDoesNotConnect) {
  // Nothing listens on port 1; constructing must still succeed (validation only).
  EXPECT_EQ(config_error({{"host", "127.0.0.1"}, {"port", "1"}}), "");
}

TEST(PostgresSinkConfig, UnreachableServerFailsStartClearly) {
  FakeContext ctx;
  PostgresSink sink(config({{"host", "127.0.0.1"},
                            {"port", "1"},
                            {"sslmode", "disable"},
                            {"password", "hunter2"},
                            {"start_timeout", "300ms"},
                            {"connect_timeout", "1s"}}),
                    ctx);
  const sdk::Status s = static_cast<sdk::Sink&>(sink).start(ctx);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("cannot use PostgreSQL at 127.0.0.1:1"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Connection refused"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos);
  EXPECT_EQ(ctx.all_logs().find("hunter2"), std::string::npos);
  EXPECT_TRUE(static_cast<sdk::Sink&>(sink).flush(std::chrono::milliseconds(0)).is_ok());
}

// ---------------------------------------------------------------------------------------------

constexpr std::int64_t kNow = 1'790'000'000'000'000LL;  // 2026-09-21
const TimeWindow kWindow{946'684'800'000'000LL, kNow + 3'600'000'000LL};

const Layout& http_layout() {
  static const Layout l = layout_for(common::kHttpCheckKind);
  return l;
}

std::optional<std::string> validate(const sdk::Record& r, const TimeWindow& w) {
  return postgres_sink::validate(r, http_layout(), w);
}

std::optional<std::string> check_with(const std::string& field, sdk::Value v) {
  sdk::Record r = make_check(sdk::Timestamp{kNow}, "t", true, 12.5);
  r.set(field, std::move(v));
  return validate(r, kWindow);
}

TEST(PostgresSinkValidate, AcceptsAGoodRecord) {
  EXPECT_EQ(validate(make_check(sdk::Timestamp{kNow}, "t", true, 12.5), kWindow), std::nullopt);
  EXPECT_EQ(validate(make_check(sdk::Timestamp{kNow}, "t", false, 0), kWindow), std::nullopt);
}

TEST(PostgresSinkValidate, RejectsWithReasons) {
  EXPECT_EQ(check_with("status_code", std::int64_t{99}),
            "field 'status_code': 99 is not an HTTP status (100-599)");
  EXPECT_EQ(check_with("status_code", std::int64_t{600}),
            "field 'status_code': 600 is not an HTTP status (100-599)");
  EXPECT_EQ(check_with("status_code", std::string("200")),
            "field 'status_code': expected int or null, got string");
  EXPECT_EQ(check_with("response_time_ms", -1.0), "field 'response_time_ms': negative duration -1");
  EXPECT_EQ(check_with("dns_ms", std::numeric_limits<double>::infinity()),
            "field 'dns_ms': not a finite number");
  EXPECT_EQ(check_with("target", sdk::Value()), "field 'target': required string is null");
  EXPECT_EQ(check_with("body_bytes", std::int64_t{-5}), "field 'body_bytes': negative size -5");
  EXPECT_EQ(check_with("error", std::string("kaboom")).value().substr(0, 37),
            "field 'error': 'kaboom' is not an err");
  EXPECT_EQ(check_with("remote_ip", std::string("300.1.1.1")),
            "field 'remote_ip': '300.1.1.1' is not an IP address");
  EXPECT_EQ(check_with("remote_ip", std::string("2001:db8::1")), std::nullopt);
  EXPECT_EQ(check_with("url", std::string("https://x/\xff")),
            "field 'url': not valid UTF-8 or contains a NUL byte");
  EXPECT_EQ(check_with("url", std::string("a\0b", 3)),
            "field 'url': not valid UTF-8 or contains a NUL byte");
  EXPECT_EQ(check_with("lateness_ms", -0.25), std::nullopt);

  sdk::Record r = make_check(sdk::Timestamp{kNow}, "t", true, 1);
  r.fields.erase(r.fields.begin() + 2);  // method
  EXPECT_EQ(validate(r, kWindow), "field 'method': required string is missing");
  r = make_check(sdk::Timestamp{kNow}, "t", true, 1);
  r.id = "not-a-uuid";
  EXPECT_EQ(validate(r, kWindow), "id 'not-a-uuid' is not a UUID");
  r = make_check(sdk::Timestamp{kNow + 2 * 3'600'000'000LL}, "t", true, 1);
  EXPECT_NE(validate(r, kWindow).value().find("is in the future beyond the accepted"),
            std::string::npos);
  r = make_check(sdk::Timestamp{0}, "t", true, 1);
  EXPECT_EQ(validate(r, kWindow),
            "time 1970-01-01T00:00:00.000000Z is older than the oldest accepted "
            "(2000-01-01T00:00:00.000000Z)");
  r = make_check(sdk::Timestamp{kNow}, "t", true, 1);
  r.labels["bad"] = std::string("x\0y", 3);
  EXPECT_EQ(validate(r, kWindow), "label 'bad': not valid UTF-8 or contains a NUL byte");
}

TEST(PostgresSinkRows, HttpCheckLayoutFollowsTheDeclaration) {
  const Layout& l = http_layout();
  std::vector<std::string> declared;
  for (const auto& f : common::kHttpCheckFields) {
    if (f.type != sdk::FieldType::string_map) {
      declared.emplace_back(f.name);
    }
  }
  ASSERT_EQ(l.columns.size(), declared.size());
  for (std::size_t i = 0; i < declared.size(); ++i) {
    EXPECT_EQ(l.columns[i].name, declared[i]);
    EXPECT_EQ(l.columns[i].nullable, common::kHttpCheckFields[i].nullable) << declared[i];
  }
  // The original table's types are kept (existing databases keep working).
  auto type_of = [&](std::string_view name) {
    for (const auto& c : l.columns) {
      if (c.name == name) {
        return c.sql_type;
      }
    }
    return std::string("?");
  };
  EXPECT_EQ(type_of("status_code"), "integer");
  EXPECT_EQ(type_of("redirects"), "integer");
  EXPECT_EQ(type_of("remote_ip"), "inet");
  EXPECT_EQ(type_of("body_bytes"), "bigint");
  EXPECT_EQ(type_of("tls_cert_not_after"), "timestamptz");
  EXPECT_EQ(type_of("response_time_ms"), "double precision");
  EXPECT_EQ(l.duration_field, "response_time_ms");
  EXPECT_TRUE(l.has_views());
  EXPECT_EQ(l.key_field, "target");
  EXPECT_TRUE(l.invalid.empty());
}

// A tcp_check-shaped declaration, as a third-party plugin would make it.
constexpr sdk::FieldSpec kTcpFields[] = {
    {"target", sdk::FieldType::string, false, "", "target"},
    {"port", sdk::FieldType::int64, false, "", "port"},
    {"success", sdk::FieldType::boolean, false, "", "connected"},
    {"connect_ms", sdk::FieldType::float64, true, "ms", "connect"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "total"},
    {"cert_not_after", sdk::FieldType::timestamp, true, "UTC", "expiry"},
    {"labels", sdk::FieldType::string_map, false, "", "labels"},
};
constexpr sdk::KindSpec kTcpKind = sdk::make_kind("tcp_check", 1, kTcpFields, "target", "tcp");

TEST(PostgresSinkRows, GenericLayoutTypesAndViewRule) {
  const Layout l = layout_for(kTcpKind);
  ASSERT_EQ(l.columns.size(), 6U);
  EXPECT_EQ(l.columns[1].sql_type, "bigint");
  EXPECT_EQ(l.columns[2].sql_type, "boolean");
  EXPECT_EQ(l.columns[3].sql_type, "double precision");
  EXPECT_EQ(l.columns[5].sql_type, "timestamptz");
  EXPECT_EQ(l.columns[5].catalog_type, "timestamp with time zone");
  EXPECT_EQ(l.column_list,
            "\"time\", \"id\", \"target\", \"port\", \"success\", \"connect_ms\", "
            "\"total_ms\", \"cert_not_after\", \"labels\", \"extra\"");
  // total_ms wins over the first *_ms field (connect_ms); response_time_ms would win over both.
  EXPECT_EQ(l.duration_field, "total_ms");
  EXPECT_TRUE(l.has_views());
  const std::string ddl = create_table_sql("mon", l);
  EXPECT_NE(ddl.find("\"port\" bigint NOT NULL"), std::string::npos) << ddl;
  EXPECT_NE(ddl.find("\"connect_ms\" double precision,"), std::string::npos) << ddl;
  EXPECT_NE(ddl.find("PRIMARY KEY (\"time\", id)"), std::string::npos);
  EXPECT_NE(ddl.find("PARTITION BY RANGE (\"time\")"), std::string::npos);
  EXPECT_NE(ddl.find("\"mon\".\"tcp_check_hourly\""), std::string::npos);
  EXPECT_NE(ddl.find("ORDER BY \"total_ms\""), std::string::npos);

  constexpr sdk::FieldSpec kNoTotal[] = {{"success", sdk::FieldType::boolean, false, "", ""},
                                         {"size", sdk::FieldType::int64, false, "", ""},
                                         {"dns_ms", sdk::FieldType::float64, false, "ms", ""},
                                         {"rtt_ms", sdk::FieldType::float64, false, "ms", ""}};
  EXPECT_EQ(duration_field_of(sdk::make_kind("ping", 1, kNoTotal, nullptr, "")), "dns_ms");
  constexpr sdk::FieldSpec kNoDuration[] = {{"success", sdk::FieldType::boolean, false, "", ""}};
  EXPECT_FALSE(layout_for(sdk::make_kind("x", 1, kNoDuration, nullptr, "")).has_views());

  constexpr sdk::FieldSpec kBad[] = {{"time", sdk::FieldType::string, false, "", ""}};
  EXPECT_NE(layout_for(sdk::make_kind("x", 1, kBad, nullptr, "")).invalid.find("field 'time'"),
            std::string::npos);
}

TEST(PostgresSinkRows, GenericValidationNamesTheField) {
  const Layout l = layout_for(kTcpKind);
  sdk::Record r;
  r.kind = "tcp_check";
  r.time = sdk::Timestamp{kNow};
  r.id = sdk::make_uuid_v7(r.time);
  r.add("target", std::string("db"));
  r.add("port", std::int64_t{5432});
  r.add("success", true);
  r.add("connect_ms", sdk::Value());
  r.add("total_ms", 3.5);
  EXPECT_EQ(postgres_sink::validate(r, l, kWindow), std::nullopt);
  r.fields.erase(r.fields.begin() + 1);  // port
  EXPECT_EQ(postgres_sink::validate(r, l, kWindow), "field 'port': required int is missing");
  r.add("port", std::string("x"));
  EXPECT_EQ(postgres_sink::validate(r, l, kWindow), "field 'port': expected int, got string");
}

TEST(PostgresSinkRows, KindNames) {
  EXPECT_TRUE(is_valid_kind_name("tcp_check"));
  EXPECT_TRUE(is_valid_kind_name("_x9"));
  EXPECT_FALSE(is_valid_kind_name("Bad-Kind"));
  EXPECT_FALSE(is_valid_kind_name("9lives"));
  EXPECT_FALSE(is_valid_kind_name(""));
  EXPECT_FALSE(is_valid_kind_name("rejected"));
  EXPECT_FALSE(is_valid_kind_name("schema_version"));
  EXPECT_FALSE(is_valid_kind_name(std::string(49, 'a')));
  EXPECT_TRUE(is_valid_kind_name(std::string(48, 'a')));
}

/// Splits one binary COPY row into its fields (nullopt = NULL).
std::vector<std::optional<std::string>> fields_of(std::string_view row) {
  auto get = [&](std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8U) | static_cast<unsigned char>(row[i]);
    }
    row.remove_prefix(n);
    return v;
  };
  std::vector<std::optional<std::string>> out;
  const auto count = get(2);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto len = static_cast<std::uint32_t>(get(4));
    if (len == 0xFFFFFFFFU) {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(std::string(row.substr(0, len)));
      row.remove_prefix(len);
    }
  }
  EXPECT_TRUE(row.empty());
  return out;
}

std::string be(std::uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) {
    s += static_cast<char>((v >> (8U * static_cast<unsigned>(i))) & 0xFFU);
  }
  return s;
}

TEST(PostgresSinkRows, BinaryCopyEncoding) {
  std::string header;
  append_copy_header(header);
  EXPECT_EQ(header, std::string("PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", 19));
  std::string trailer;
  append_copy_trailer(trailer);
  EXPECT_EQ(trailer, "\xff\xff");

  sdk::Record r = make_check(sdk::Timestamp{kNow + 123456}, "t\tab", true, 0.1);
  r.id = "0190a8e4-0000-7000-8000-0000000000ff";
  r.set("error_message", std::string("line1\nline2\\"));
  r.set("remote_ip", std::string("2001:db8::1"));
  r.set("extra_field", std::int64_t{7});
  r.labels["k"] = "v\"q";
  std::string out;
  append_copy_row(r, http_layout(), out);
  const auto f = fields_of(out);
  ASSERT_EQ(f.size(), 29U);  // http_check v2: body_bytes_wire, failed_url
  EXPECT_EQ(f[0], be(static_cast<std::uint64_t>(kNow + 123456 - 946'684'800'000'000LL), 8));
  EXPECT_EQ(f[1], std::string("\x01\x90\xa8\xe4\0\0\x70\0\x80\0\0\0\0\0\0\xff", 16));
  EXPECT_EQ(f[2], "t\tab");                 // target
  EXPECT_EQ(f[6], std::string("\x01", 1));  // success
  EXPECT_EQ(f[7], be(200, 4));              // status_code int4
  EXPECT_EQ(f[8], std::nullopt);            // error
  EXPECT_EQ(f[9], "line1\nline2\\");        // error_message
  double d = 0.1;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, 8);
  EXPECT_EQ(f[10], be(bits, 8));   // response_time_ms float8
  EXPECT_EQ(f[13], std::nullopt);  // tls_ms
  EXPECT_EQ(f[16], be(1256, 8));   // body_bytes int8
  EXPECT_EQ(f[17], std::nullopt);  // body_bytes_wire
  EXPECT_EQ(f[19], std::string("\x03\x80\0\x10\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 20));
  EXPECT_EQ(f[20], be(1, 4));                                         // redirects
  EXPECT_EQ(f[21], std::nullopt);                                     // failed_url
  EXPECT_EQ(f[27], "\x01{\"k\":\"v\\\"q\",\"region\":\"eu-west\"}");  // labels jsonb
  EXPECT_EQ(f[28], "\x01{\"extra_field\":7}");                        // extra jsonb
}

TEST(PostgresSinkRows, HelperFunctions) {
  EXPECT_TRUE(is_uuid("0190A8E4-0000-7000-8000-00000000000f"));
  EXPECT_FALSE(is_uuid("0190a8e4-0000-7000-8000-00000000000"));
  EXPECT_FALSE(is_uuid("0190a8e4x0000-7000-8000-000000000001"));
  EXPECT_TRUE(is_storable_text("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_storable_text("\xc0\xaf"));      // overlong
  EXPECT_FALSE(is_storable_text("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(is_storable_text("\xe2\x82"));      // truncated
  EXPECT_EQ(storable_text(std::string("a\0b", 3)), "a\\u0000b");
  EXPECT_EQ(Partitions::name_for("http_check", kNow - kNow % 86'400'000'000LL),
            "http_check_p20260921");
  EXPECT_EQ(Partitions::name_for("tcp_check", kNow - kNow % 3'600'000'000LL),
            "tcp_check_p20260921_1400");
}

TEST(PostgresSinkPg, FailureClassification) {
  EXPECT_EQ(classify_sqlstate("23505"), FailureKind::duplicate);
  EXPECT_EQ(classify_sqlstate("23514"), FailureKind::setup);
  EXPECT_EQ(classify_sqlstate("42P01"), FailureKind::setup);
  EXPECT_EQ(classify_sqlstate("22P02"), FailureKind::data);
  EXPECT_EQ(classify_sqlstate("22021"), FailureKind::data);
  EXPECT_EQ(classify_sqlstate("54000"), FailureKind::data);
  EXPECT_EQ(classify_sqlstate("08006"), FailureKind::transient);
  EXPECT_EQ(classify_sqlstate("53300"), FailureKind::transient);
  EXPECT_EQ(classify_sqlstate("57P01"), FailureKind::transient);
  EXPECT_EQ(classify_sqlstate("42501"), FailureKind::transient);
  EXPECT_EQ(classify_sqlstate(""), FailureKind::transient);
  EXPECT_TRUE(connect_error_is_transient(
      "connection to server at \"127.0.0.1\", port 1 failed: Connection refused"));
  EXPECT_TRUE(connect_error_is_transient("FATAL:  sorry, too many clients already"));
  EXPECT_TRUE(connect_error_is_transient("FATAL:  the database system is starting up"));
  EXPECT_TRUE(connect_error_is_transient("FATAL:  too many connections for database \"x\""));
  EXPECT_FALSE(connect_error_is_transient("SSL error: certificate verify failed"));
  EXPECT_FALSE(connect_error_is_transient("password authentication failed for user \"x\""));
}

TEST(PostgresSinkMigrations, AreOrderedAndNameTheSchema) {
  const auto m = migrations("mon");
  ASSERT_FALSE(m.empty());
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].version, static_cast<int>(i) + 1);
  }
  EXPECT_NE(m[0].sql.find("CREATE TABLE \"mon\".\"http_check\""), std::string::npos);
  EXPECT_NE(m[0].sql.find("PRIMARY KEY (\"time\", id)"), std::string::npos);
  EXPECT_EQ(m[0].sql.find("webmon."), std::string::npos);
}

// ---------------------------------------------------------------------------------------------

TEST(PostgresSinkSample, SampleValidatesWithoutAServer) {
  const std::string sample =
      read(std::string(WEBMON_SOURCE_DIR) + "/plugins/postgres_sink/sample.yaml");
  ASSERT_FALSE(sample.empty());
  EXPECT_EQ(webmon::testing::validate_pipeline(sample), "");
  EXPECT_NE(sample.find("plugin: generator"), std::string::npos);
  EXPECT_NE(sample.find("count: 100"), std::string::npos);
  for (const auto& o : kOptions) {
    EXPECT_NE(sample.find(std::string(o.name) + ":"), std::string::npos)
        << "sample.yaml lacks option " << o.name;
  }
}

TEST(PostgresSinkSample, ReadmeDocumentsEveryOption) {
  const std::string readme =
      read(std::string(WEBMON_SOURCE_DIR) + "/plugins/postgres_sink/README.md");
  ASSERT_FALSE(readme.empty());
  for (const auto& o : kOptions) {
    EXPECT_NE(readme.find("`" + std::string(o.name) + "`"), std::string::npos)
        << "README.md lacks option " << o.name;
  }
  for (const char* name : {"http_check_hourly", "http_check_daily", "rejected", "schema_version",
                           "uptime_pct", "p95_ms"}) {
    EXPECT_NE(readme.find(name), std::string::npos) << name;
  }
}

TEST(PostgresSinkSample, ReadmeTableLayoutOfHttpCheckFollowsTheDeclaration) {
  const std::string readme =
      read(std::string(WEBMON_SOURCE_DIR) + "/plugins/postgres_sink/README.md");
  const auto start = readme.find("### `webmon.http_check`");
  ASSERT_NE(start, std::string::npos);
  const auto end = readme.find("\n### ", start + 1);
  std::istringstream section(readme.substr(start, end - start));
  // "| `name` | type | meaning |" rows of the section's table, in order.
  std::vector<std::pair<std::string, std::string>> documented;
  std::string line;
  while (std::getline(section, line)) {
    if (!line.starts_with("| `")) {
      continue;
    }
    const auto name_end = line.find('`', 3);
    const auto type_start = line.find("| ", name_end) + 2;
    const auto type_end = line.find(" |", type_start);
    documented.emplace_back(line.substr(3, name_end - 3),
                            line.substr(type_start, type_end - type_start));
  }
  std::vector<std::pair<std::string, std::string>> expected{{"time", "timestamptz, not null"},
                                                            {"id", "uuid, not null"}};
  for (const Column& c : http_layout().columns) {
    expected.emplace_back(c.name, c.sql_type + (c.nullable ? "" : ", not null"));
  }
  expected.emplace_back("labels", "jsonb, not null");
  expected.emplace_back("extra", "jsonb");
  EXPECT_EQ(documented, expected)
      << "the README's webmon.http_check table differs from the declaration in "
         "common/include/webmon/common/http_check_kind.hpp";
}

}  // namespace
}  // namespace webmon::plugins::postgres_sink
