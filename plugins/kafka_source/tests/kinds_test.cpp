// Kinds and types on the Kafka wire (docs/wire-format.md), on the real broker of the local
// stack: a tcp_check-shaped kind declared only here, on the producer's side, keeps every type
// through kafka_sink -> Kafka -> kafka_source although the consumer never saw its declaration;
// messages captured from the first wire format still decode with the compiled-in http_check
// declaration; keys follow the declared key field or the key_field option; messages without a
// usable declaration go to the dead-letter topic with a reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kafka_sink.hpp"
#include "kafka_source.hpp"
#include "kafka_test_support.hpp"
#include "webmon/common/kind_wire.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::kafka_test {
namespace {

using namespace std::chrono_literals;
using sdk::AckStatus;
using sdk::FieldType;
using sdk::Record;
using sdk::Timestamp;
namespace wt = sdk::testing;

// A tcp_check-shaped kind, declared in this test only.
constexpr sdk::FieldSpec kTcpFields[] = {
    {"target", FieldType::string, false, "", "target name"},
    {"host", FieldType::string, true, "", "host connected to"},
    {"port", FieldType::int64, false, "", "port"},
    {"agent", FieldType::string, false, "", "agent name"},
    {"success", FieldType::boolean, false, "", "connected and the reply matched"},
    {"error", FieldType::string, true, "", "error class"},
    {"connect_ms", FieldType::float64, true, "ms", "TCP connect"},
    {"total_ms", FieldType::float64, false, "ms", "whole check"},
    {"bytes_received", FieldType::int64, true, "bytes", "reply bytes"},
    {"reply_matched", FieldType::boolean, true, "", "reply matched the regex"},
    {"tls_cert_not_after", FieldType::timestamp, true, "UTC", "certificate expiry"},
    {"checked_at", FieldType::timestamp, false, "UTC", "when the check started"},
    {"labels", FieldType::string_map, false, "", "labels"},
};
constexpr sdk::KindSpec kTcpKind =
    sdk::make_kind("tcp_check", 1, kTcpFields, "target", "one TCP check (test declaration)");
constexpr const char* kTcpWireFields =
    "target:s!*,host:s,port:i!,agent:s!,success:b!,error:s,connect_ms:d,total_ms:d!,"
    "bytes_received:i,reply_matched:b,tls_cert_not_after:t,checked_at:t!,labels:m!";

std::string uuid(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "01a2357c-8b26-7bec-9391-%012d", i);
  return buf;
}

std::vector<Record> tcp_records(int n) {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.kind = "tcp_check";
    r.id = uuid(i);
    r.time = Timestamp{1'796'190'000'000'000 + i * 1'000'123};
    const bool ok = i % 4 != 3;
    r.add("target", "db-" + std::to_string(i % 5));
    if (i % 7 == 6) {
      r.add("host", std::monostate{});
    } else {
      r.add("host", "10.0.0." + std::to_string(i % 5));
    }
    r.add("port", std::int64_t{5432 + i % 3});
    r.add("agent", "probe-1");
    r.add("success", ok);
    r.add("error", ok ? sdk::Value{} : sdk::Value{std::string("connect")});
    r.add("connect_ms", ok ? sdk::Value{0.25 * (i + 1)} : sdk::Value{});
    r.add("total_ms", 3.0 + i);                      // integral doubles stay doubles
    const std::int64_t big = 9'007'199'254'740'993;  // not exact as a double
    r.add("bytes_received", ok ? sdk::Value{big - i} : sdk::Value{});
    r.add("reply_matched", ok ? sdk::Value{i % 2 == 0} : sdk::Value{});
    r.add("tls_cert_not_after",
          i % 2 == 0 ? sdk::Value{Timestamp{1'800'000'000'123'456}} : sdk::Value{});
    r.add("checked_at", Timestamp{1'796'190'000'000'000 + i});
    r.labels = {{"region", "eu"}, {"team", i % 2 == 0 ? "db" : "web"}};
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> by_id(std::vector<Record> v) {
  std::sort(v.begin(), v.end(), [](const Record& a, const Record& b) { return a.id < b.id; });
  return v;
}

/// Writes `records` through a KafkaSink whose agent knows `kinds`; returns the batch's Ack.
AckStatus write_through_sink(const std::string& topic, const std::vector<Record>& records,
                             const std::vector<sdk::KindSpec>& kinds,
                             const std::string& key_field = "<unset>") {
  wt::FakeContext ctx("kafka", "producer");
  for (const auto& k : kinds) {
    ctx.add_kind(k);
  }
  auto config = wt::config({{"brokers", Stack::get().plaintext}, {"topic", topic}});
  if (key_field != "<unset>") {
    config.set("key_field", sdk::ConfigNode(key_field, {"test.yaml", 9, 3}));
  }
  plugins::kafka_sink::KafkaSink sink(config, ctx);
  EXPECT_TRUE(sink.start(ctx).is_ok()) << ctx.all_logs();
  wt::AckLog acks;
  sdk::Batch batch;
  batch.records = records;
  batch.token = 1;
  EXPECT_TRUE(sink.write(batch, acks.make()).is_ok());
  EXPECT_TRUE(acks.wait_total(1, 60s));
  EXPECT_TRUE(sink.flush(30s).is_ok());
  for (const auto s : {AckStatus::delivered, AckStatus::retryable, AckStatus::rejected}) {
    if (acks.count(s) == 1) {
      return s;
    }
  }
  return AckStatus::retryable;
}

/// Consumes `topic` with a KafkaSource whose agent knows no kinds, until `n` records were
/// emitted or `dead` messages reached the dead-letter topic (bounded).
std::vector<Record> consume_records(wt::FakeContext& ctx, const std::string& topic, std::size_t n,
                                    std::uint64_t dead = 0) {
  auto config = wt::config({{"brokers", Stack::get().plaintext},
                            {"topics", topic},
                            {"group_id", "g-" + topic},
                            {"decode_threads", "1"},
                            {"drain_timeout", "100ms"}});
  plugins::kafka_source::KafkaSource src(config, ctx);
  EXPECT_TRUE(src.start(ctx, ctx).is_ok()) << ctx.all_logs();
  const sdk::Status s = wt::run_source(
      src, ctx, [&] { return ctx.records().size() >= n && ctx.count("dead_lettered") >= dead; },
      90s);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return ctx.records();
}

/// The dead-letter reasons of the first `n` messages of `topic`, by message key.
std::map<std::string, std::string> dlq_reasons(const std::string& topic, std::size_t n) {
  std::map<std::string, std::string> reason;
  for (const auto& m : consume_raw(topic, n, 30s)) {
    reason[m.key] = m.headers.at("webmon-dlq-reason");
  }
  return reason;
}

/// A message of the first wire format, captured from Kafka (fixtures/*.txt).
RawMessage captured(const std::string& name) {
  std::ifstream in(source_dir() + "/plugins/kafka_source/tests/fixtures/" + name);
  EXPECT_TRUE(in.good()) << name;
  RawMessage m;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("key: ", 0) == 0) {
      m.key = line.substr(5);
    } else if (line.rfind("header: ", 0) == 0) {
      const auto colon = line.find(": ", 8);
      m.headers[line.substr(8, colon - 8)] = line.substr(colon + 2);
    } else if (line.rfind("value: ", 0) == 0) {
      m.value = line.substr(7);
    }
  }
  return m;
}

TEST(KafkaKinds, AKindTheConsumerNeverSawKeepsEveryTypeThroughKafka) {
  const std::string topic = create_topic("kinds.tcp", 3);
  const auto records = tcp_records(60);
  ASSERT_EQ(write_through_sink(topic, records, {kTcpKind}), AckStatus::delivered);

  // On the wire: the declaration in three headers, the key from the declared key field.
  const auto raw = consume_raw(topic, records.size(), 30s);
  ASSERT_EQ(raw.size(), records.size());
  for (const auto& m : raw) {
    EXPECT_EQ(m.headers.at("content-type"), "application/json");
    EXPECT_EQ(m.headers.at("webmon-schema"), "1");
    EXPECT_EQ(m.headers.at("webmon-kind"), "tcp_check");
    EXPECT_EQ(m.headers.at("webmon-kind-version"), "1");
    EXPECT_EQ(m.headers.at("webmon-fields"), kTcpWireFields);
    // ... and the value names it by its hash, right after the kind.
    EXPECT_EQ(m.value.rfind(R"({"schema":1,"kind":"tcp_check","kind_hash":")" +
                                common::kind_hash("tcp_check", "1", kTcpWireFields) + "\",",
                            0),
              0U)
        << m.value;
    ASSERT_TRUE(m.has_key);
    EXPECT_NE(m.value.find("\"target\":\"" + m.key + "\""), std::string::npos) << m.value;
  }

  wt::FakeContext ctx("kafka", "consumer");
  ASSERT_EQ(ctx.find_kind("tcp_check"), nullptr);  // never seen by the consumer
  const auto got = consume_records(ctx, topic, records.size());
  ASSERT_EQ(got.size(), records.size()) << ctx.all_logs();
  // Identical records: same fields in the same order, each value of the same type (a
  // timestamp a Timestamp, an int an int64_t, a null a null, a 3.0 a double).
  const auto want = by_id(records);
  const auto have = by_id(got);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(have[i], want[i]) << "record " << want[i].id;
  }
  EXPECT_EQ(sdk::type_of(*have[0].find("tls_cert_not_after")), sdk::ValueType::timestamp);
  EXPECT_EQ(sdk::type_of(*have[0].find("port")), sdk::ValueType::integer);
  EXPECT_EQ(sdk::type_of(*have[0].find("total_ms")), sdk::ValueType::floating);
  EXPECT_EQ(sdk::type_of(*have[1].find("tls_cert_not_after")), sdk::ValueType::null);
  EXPECT_EQ(ctx.count("dead_lettered"), 0U);

  // The consumer's agent learned the declaration (for sinks downstream).
  const sdk::KindSpec* learned = ctx.find_kind("tcp_check");
  ASSERT_NE(learned, nullptr);
  EXPECT_EQ(learned->version, 1U);
  ASSERT_NE(learned->key_field, nullptr);
  EXPECT_STREQ(learned->key_field, "target");
  ASSERT_EQ(learned->field_count, std::size(kTcpFields));
  for (std::size_t i = 0; i < learned->field_count; ++i) {
    EXPECT_STREQ(learned->fields[i].name, kTcpFields[i].name);
    EXPECT_EQ(learned->fields[i].type, kTcpFields[i].type) << kTcpFields[i].name;
    EXPECT_EQ(learned->fields[i].nullable, kTcpFields[i].nullable) << kTcpFields[i].name;
  }
}

// kafka_source decodes into records of finished batches (Emitter::take_spare_records): every
// part of such a record (kind, id, time, fields, labels) is overwritten, so the records equal
// those decoded into new ones, whatever the spare records held before.
TEST(KafkaKinds, RecordsDecodedIntoSpareRecordsEqualTheOnesWritten) {
  const std::string topic = create_topic("kinds.spare", 1);
  const auto records = tcp_records(60);
  ASSERT_EQ(write_through_sink(topic, records, {kTcpKind}), AckStatus::delivered);

  wt::FakeContext ctx("kafka", "consumer");
  std::vector<Record> junk(40);
  for (std::size_t i = 0; i < junk.size(); ++i) {
    Record& r = junk[i];
    r.kind = "some_other_kind_with_a_long_name";
    r.id = std::string(50, 'x');
    r.time = sdk::Timestamp{42};
    for (int f = 0; f < 30; ++f) {  // more fields than tcp_check, of other types
      r.add("field_number_" + std::to_string(f),
            f % 2 == 0 ? sdk::Value(std::string(40, 'y')) : sdk::Value(std::int64_t{f}));
    }
    r.labels = {{"aaa", "1"}, {"zzz", std::string(30, 'z')}};
    if (i % 2 == 0) {
      r.fields.resize(3);  // fewer fields than tcp_check
      r.labels.clear();
    }
  }
  ctx.give_spare_records(junk);
  const auto got = consume_records(ctx, topic, records.size());
  ASSERT_EQ(got.size(), records.size()) << ctx.all_logs();
  EXPECT_EQ(ctx.spare_taken(), junk.size());  // kafka_source took them to decode into
  const auto want = by_id(records);
  const auto have = by_id(got);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(have[i], want[i]) << "record " << want[i].id;
  }
}

TEST(KafkaKinds, CapturedMessagesOfTheFirstWireFormatDecodeWithTheCompiledInDeclaration) {
  const std::string topic = create_topic("kinds.legacy", 1);
  const RawMessage ok = captured("legacy_http_check_ok.txt");
  const RawMessage failed = captured("legacy_http_check_failed.txt");
  ASSERT_EQ(ok.headers.size(), 2U);
  ASSERT_EQ(failed.headers.count("webmon-fields"), 0U);
  produce_raw(topic, {ok, failed});

  wt::FakeContext ctx("kafka", "consumer");
  const auto got = consume_records(ctx, topic, 2);
  ASSERT_EQ(got.size(), 2U) << ctx.all_logs();
  const Record& r = got[1];
  EXPECT_EQ(r.kind, "http_check");
  EXPECT_EQ(r.id, "01a2357c-8b26-7bec-9391-4285cc45475c");
  EXPECT_EQ(r.time, Timestamp{1'796'193'684'262'993});
  EXPECT_EQ(*r.get<std::int64_t>("status_code"), 500);
  EXPECT_EQ(*r.get<std::int64_t>("redirects"), 0);
  EXPECT_EQ(*r.get<double>("response_time_ms"), 201.489);
  EXPECT_EQ(*r.get<bool>("success"), false);
  EXPECT_EQ(sdk::type_of(*r.find("regex_matched")), sdk::ValueType::null);
  EXPECT_EQ(*r.get<Timestamp>("tls_cert_not_after"), Timestamp{1'803'969'684'262'993});
  EXPECT_EQ(*r.get<std::string>("tls_cert_issuer"), "CN=Example Test CA");
  EXPECT_EQ(ctx.count("dead_lettered"), 0U);
  EXPECT_NE(ctx.find_kind("http_check"), nullptr);
}

TEST(KafkaKinds, KeysFollowTheDeclaredKeyFieldOrTheKeyFieldOption) {
  auto records = tcp_records(14);  // record 6 and 13 have a null host
  {
    const std::string topic = create_topic("kinds.key", 1);
    ASSERT_EQ(write_through_sink(topic, records, {kTcpKind}, "host"), AckStatus::delivered);
    const auto raw = consume_raw(topic, records.size(), 30s);
    ASSERT_EQ(raw.size(), records.size());
    int without = 0;
    for (const auto& m : raw) {
      const std::string host = "\"host\":\"" + m.key + "\"";
      if (m.has_key) {
        EXPECT_NE(m.value.find(host), std::string::npos) << m.value;
      } else {
        ++without;
        EXPECT_NE(m.value.find("\"host\":null"), std::string::npos) << m.value;
      }
    }
    EXPECT_EQ(without, 2);
  }
  {
    // No declaration in the producer's agent: no webmon-fields, and no key (no declared key
    // field); such messages are refused by a consumer that does not know the kind.
    const std::string topic = create_topic("kinds.nokey", 1);
    records.resize(3);
    ASSERT_EQ(write_through_sink(topic, records, {}), AckStatus::delivered);
    const auto raw = consume_raw(topic, records.size(), 30s);
    ASSERT_EQ(raw.size(), records.size());
    for (const auto& m : raw) {
      EXPECT_FALSE(m.has_key);
      EXPECT_EQ(m.headers.at("webmon-kind"), "tcp_check");
      EXPECT_EQ(m.headers.count("webmon-fields"), 0U);
    }
  }
}

TEST(KafkaKinds, MessagesWithoutAUsableDeclarationGoToTheDeadLetterTopicWithTheReason) {
  const std::string topic = create_topic("kinds.dlq", 1);
  auto value = [](const std::string& kind, int i, const std::string& fields) {
    return "{\"schema\":1,\"kind\":\"" + kind + "\",\"id\":\"" + uuid(i) +
           "\",\"time\":\"2026-12-02T06:00:00.000001Z\"" + fields + ",\"labels\":{}}";
  };
  std::vector<RawMessage> msgs(5);
  msgs[0].key = "a";  // an unknown kind, no declaration in the headers
  msgs[0].value = value("mystery", 1, ",\"target\":\"a\"");
  msgs[0].headers = {{"content-type", "application/json"}, {"webmon-schema", "1"}};
  msgs[1].key = "b";  // declared: decodes
  msgs[1].value = value("svc", 2, ",\"target\":\"b\",\"port\":80");
  msgs[1].headers = {{"webmon-kind", "svc"},
                     {"webmon-kind-version", "1"},
                     {"webmon-fields", "target:s!*,port:i!,labels:m!"}};
  msgs[2].key = "c";  // version 2 changes port's type
  msgs[2].value = value("svc", 3, ",\"target\":\"c\",\"port\":\"80\"");
  msgs[2].headers = {{"webmon-kind", "svc"},
                     {"webmon-kind-version", "2"},
                     {"webmon-fields", "target:s!*,port:s!,labels:m!"}};
  msgs[3].key = "d";  // malformed declaration
  msgs[3].value = value("svc", 4, ",\"target\":\"d\",\"port\":80");
  msgs[3].headers = {
      {"webmon-kind", "svc"}, {"webmon-kind-version", "1"}, {"webmon-fields", "target:s!*,port:x"}};
  msgs[4].key = "e";  // the value does not match its declaration
  msgs[4].value = value("svc", 5, ",\"target\":\"e\",\"port\":1.5");
  msgs[4].headers = msgs[1].headers;
  produce_raw(topic, msgs);

  wt::FakeContext ctx("kafka", "consumer");
  const auto got = consume_records(ctx, topic, 1, 4);
  ASSERT_EQ(got.size(), 1U) << ctx.all_logs();
  EXPECT_EQ(got[0].kind, "svc");
  EXPECT_EQ(*got[0].get<std::int64_t>("port"), 80);

  const auto reason = dlq_reasons(topic + ".dlq", 4);
  ASSERT_EQ(reason.size(), 4U);
  EXPECT_EQ(reason.at("a"),
            "kind 'mystery' has no known declaration and the message carries none (no "
            "webmon-fields header): its field types cannot be decoded");
  EXPECT_EQ(reason.at("c"),
            "kind 'svc' field 'port' changes type from int (known declaration, version 1) to "
            "string (message headers, version 2)");
  EXPECT_EQ(reason.at("d"),
            "kind 'svc': header webmon-fields entry 2 'port:x': unknown type (expected one of "
            "b i d s t m)");
  EXPECT_EQ(reason.at("e"), "kind 'svc': field 'port': expected int, got double");
}

// The value's kind_hash names the declaration: the headers of the first message with a hash
// teach it (and must hash to it); later messages with that hash decode with it without
// headers being read. A hash nobody taught, on a message without headers, decodes like a
// message without a hash (with the declaration the agent knows for its kind, or not at all).
// A hash its headers contradict, a malformed one, and a learned one on a value of another kind
// go to the dead-letter topic with the reason.
TEST(KafkaKinds, KindHashNamesTheDeclarationItsFirstMessageTaught) {
  const std::string topic = create_topic("kinds.hash", 1);
  const std::string fields = "target:s!*,port:i!,at:t,labels:m!";
  const std::string hash = common::kind_hash("svc", "1", fields);
  ASSERT_EQ(hash.size(), 32U);
  const std::string untaught = "0123456789abcdef0123456789abcdef";
  auto value = [](int i, const std::string& kind_hash, const std::string& kind = "svc") {
    return R"({"schema":1,"kind":")" + kind + R"(","kind_hash":")" + kind_hash + R"(","id":")" +
           uuid(i) + R"(","time":"2026-12-02T06:00:00.000001Z","target":"t)" + std::to_string(i) +
           R"(","port":)" + std::to_string(i) + R"(,"at":"2026-12-03T10:00:00Z","labels":{}})";
  };
  const std::map<std::string, std::string> headers = {
      {"webmon-kind", "svc"}, {"webmon-kind-version", "1"}, {"webmon-fields", fields}};
  auto raw = [](const std::string& key, std::string v, std::map<std::string, std::string> h) {
    RawMessage m;
    m.key = key;
    m.value = std::move(v);
    m.headers = std::move(h);
    return m;
  };
  const std::vector<RawMessage> msgs = {
      raw("a", value(1, hash), headers),  // teaches the hash
      raw("b", value(2, hash), {}),       // no headers: the learned declaration
      raw("c", value(3, untaught), {}),   // untaught, no headers: svc's known declaration
      raw("d", value(4, "fedcba9876543210fedcba9876543210"), headers),  // headers hash otherwise
      raw("e", value(5, "0123456789ABCDEF0123456789ABCDEF"), headers),  // not lowercase hex
      raw("f", value(6, hash),  // learned: its headers are not even read
          {{"webmon-kind", "svc"}, {"webmon-kind-version", "9"}, {"webmon-fields", "garbage"}}),
      raw("g", value(7, untaught, "mystery"), {}),  // untaught, no headers, an unknown kind
      raw("h", value(8, hash, "other"), {}),        // svc's hash on another kind's value
  };
  produce_raw(topic, msgs);

  wt::FakeContext ctx("kafka", "consumer");
  const auto got = by_id(consume_records(ctx, topic, 4, 4));
  ASSERT_EQ(got.size(), 4U) << ctx.all_logs();
  std::vector<std::string> targets;
  for (const auto& r : got) {
    EXPECT_EQ(r.kind, "svc");
    EXPECT_EQ(sdk::type_of(*r.find("at")), sdk::ValueType::timestamp) << r.id;
    EXPECT_EQ(sdk::type_of(*r.find("port")), sdk::ValueType::integer) << r.id;
    EXPECT_EQ(r.find("kind_hash"), nullptr) << "the envelope is not a field";
    targets.push_back(*r.get<std::string>("target"));
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"t1", "t2", "t3", "t6"}));

  const auto reason = dlq_reasons(topic + ".dlq", 4);
  ASSERT_EQ(reason.size(), 4U);
  EXPECT_EQ(reason.at("d"),
            "'kind_hash' fedcba9876543210fedcba9876543210 does not match the declaration in the "
            "message headers (webmon-kind, webmon-kind-version and webmon-fields hash to " +
                hash + ")");
  EXPECT_EQ(reason.at("e"), "'kind_hash' must be a string of 32 lowercase hex digits");
  EXPECT_EQ(reason.at("g"),
            "kind 'mystery' has no known declaration and the message carries none (no "
            "webmon-fields header): its field types cannot be decoded");
  EXPECT_EQ(reason.at("h"),
            "the value's kind 'other' differs from the kind its kind_hash names, 'svc'");
}

}  // namespace
}  // namespace webmon::kafka_test
