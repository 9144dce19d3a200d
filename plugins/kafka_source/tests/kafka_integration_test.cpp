// kafka_sink + kafka_source against the real broker of the local stack (fixture webmon_stack):
// round trips over PLAINTEXT, SSL with client certificates and SASL_SSL; clear errors for a
// wrong CA, a missing certificate and a wrong password; a broker killed while producing; a
// consumer killed while consuming; dead letters; retryable and rejected acknowledgements; two
// consumers in one group. Every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "kafka_test_support.hpp"
#include "pipeline_runner.hpp"

namespace webmon::kafka_test {
namespace {

using namespace std::chrono_literals;
using testing::lines;
using testing::read_file;
using testing::run_pipeline;
using testing::TempDir;

std::string plaintext_conn() { return "brokers: " + Stack::get().plaintext + "\n"; }

std::string ssl_conn() {
  const Stack& s = Stack::get();
  return "brokers: " + s.ssl + "\nsecurity_protocol: SSL\nca_file: " + s.ca +
         "\ncert_file: " + s.cert + "\nkey_file: " + s.key + "\n";
}

// Kafka 4.x refuses the SCRAM exchange of librdkafka < 2.6.1 (Debian 12 ships 2.0.2), so the
// stack's SASL_SSL listener is exercised with PLAIN (see docs/stack.md).
std::string sasl_conn(const std::string& password) {
  const Stack& s = Stack::get();
  return "brokers: " + s.sasl + "\nsecurity_protocol: SASL_SSL\nca_file: " + s.ca +
         "\nsasl_mechanism: PLAIN\nsasl_username: " + s.sasl_user + "\nsasl_password: \"" +
         password + "\"\n";
}

std::string indent(const std::string& text, int n) {
  std::string out;
  const std::string pad(static_cast<std::size_t>(n), ' ');
  for (const auto& l : lines(text)) {
    out += pad + l + "\n";
  }
  return out;
}

std::string producer_yaml(const std::string& conn, const std::string& topic, int count,
                          const std::string& expected_file, const std::string& gen_extra = "") {
  return "sources:\n  gen:\n    plugin: generator\n    count: " + std::to_string(count) + "\n" +
         gen_extra +
         "sinks:\n  kafka:\n    plugin: kafka_sink\n    inputs: [gen]\n    topic: " + topic +
         "\n    compression: lz4\n" + indent(conn, 4) +
         "  expected:\n    plugin: file\n    inputs: [gen]\n    append: false\n    path: " +
         expected_file + "\n";
}

std::string consumer_yaml(const std::string& conn, const std::string& topic,
                          const std::string& group, const std::string& out_file,
                          const std::string& source_extra = "",
                          const std::string& more_sinks = "") {
  return "sources:\n  kafka:\n    plugin: kafka_source\n    topics: [" + topic +
         "]\n    group_id: " + group + "\n" + indent(conn, 4) + source_extra +
         "sinks:\n  out:\n    plugin: file\n    inputs: [kafka]\n    path: " + out_file + "\n" +
         more_sinks;
}

/// The value of a string field in a JSON line (a cheap scan, not a parser; "" when absent).
std::string json_string_field(const std::string& line, const std::string& name) {
  const std::string open = "\"" + name + "\":\"";
  const auto at = line.find(open);
  if (at == std::string::npos) {
    return "";
  }
  const auto from = at + open.size();
  return line.substr(from, line.find('"', from) - from);
}

std::size_t line_count(const std::string& path) { return lines(read_file(path)).size(); }

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// The same lines in any order, each as often; on failure says how they differ (briefly).
::testing::AssertionResult same_lines(std::vector<std::string> got, std::vector<std::string> want) {
  got = sorted(std::move(got));
  want = sorted(std::move(want));
  if (got == want) {
    return ::testing::AssertionSuccess();
  }
  std::vector<std::string> extra, missing;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  return ::testing::AssertionFailure()
         << got.size() << " lines, expected " << want.size() << "; " << missing.size()
         << " missing, " << extra.size() << " unexpected"
         << (missing.empty() ? "" : "; first missing: " + missing.front().substr(0, 200))
         << (extra.empty() ? "" : "; first unexpected: " + extra.front().substr(0, 200));
}

/// Produces `n` generator records through kafka_sink; returns the lines the generator emitted.
std::vector<std::string> produce_records(const std::string& conn, const std::string& topic, int n,
                                         const TempDir& dir, const std::string& gen_extra = "") {
  const std::string expected = dir.path() + "/expected.jsonl";
  auto run = run_pipeline(producer_yaml(conn, topic, n, expected, gen_extra));
  EXPECT_EQ(run.config_error, "");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.counter("kafka", "sent"), static_cast<std::uint64_t>(n));
  EXPECT_EQ(run.counter("gen", "acked_retryable"), 0U);
  EXPECT_EQ(run.counter("gen", "acked_rejected"), 0U);
  return lines(read_file(expected));
}

/// Sum of the group's committed offsets over the topic's partitions (none counts 0).
std::int64_t committed_sum(const std::string& group, const std::string& topic, int partitions) {
  std::int64_t sum = 0;
  for (auto c : committed_offsets(group, topic, partitions)) {
    sum += std::max<std::int64_t>(c, 0);
  }
  return sum;
}

/// Consumes in-process until `out_file` has `n` lines and the group has committed every
/// offset of the topic (their sum is `end`, the topic's message count), then stops (bounded).
/// A commit at the end means every record was acknowledged and none is waiting to be read
/// again, so whatever the consumer was going to write is written by then: a duplicate would
/// show as an extra line, without waiting for it.
testing::PipelineRun consume_until(const std::string& yaml, const std::string& out_file,
                                   std::size_t n, const std::string& group,
                                   const std::string& topic, int partitions, std::int64_t end,
                                   std::chrono::milliseconds timeout = 60s) {
  testing::RunOptions opts;
  opts.during = [&](agent::Runtime& rt) {
    (void)eventually(
        [&] { return line_count(out_file) >= n && committed_sum(group, topic, partitions) == end; },
        timeout);
    rt.request_stop();
  };
  auto run = run_pipeline(yaml, opts);
  EXPECT_EQ(committed_sum(group, topic, partitions), end) << "not everything was committed";
  return run;
}

void round_trip(const std::string& conn, const std::string& prefix, int n, int partitions) {
  const std::string topic = create_topic(prefix, partitions);
  TempDir dir;
  const auto expected = produce_records(conn, topic, n, dir);
  ASSERT_EQ(expected.size(), static_cast<std::size_t>(n));

  const std::string got = dir.path() + "/got.jsonl";
  auto run = consume_until(consumer_yaml(conn, topic, "g-" + topic, got), got, expected.size(),
                           "g-" + topic, topic, partitions, n);
  EXPECT_EQ(run.config_error, "");
  EXPECT_EQ(run.exit_code, 0);
  // Identical content: the same JSON lines, each exactly once.
  EXPECT_TRUE(same_lines(lines(read_file(got)), expected));

  // Keys are the target names, headers as DESIGN.md says, per-target order kept.
  const auto raw = consume_raw(topic, expected.size(), 30s);
  ASSERT_EQ(raw.size(), expected.size());
  std::map<std::string, std::int32_t> partition_of_key;
  for (const auto& m : raw) {
    ASSERT_TRUE(m.has_key);
    EXPECT_NE(m.value.find("\"target\":\"" + m.key + "\""), std::string::npos) << m.value;
    EXPECT_EQ(m.headers.at("content-type"), "application/json");
    EXPECT_EQ(m.headers.at("webmon-schema"), "1");
    auto [it, inserted] = partition_of_key.emplace(m.key, m.partition);
    EXPECT_EQ(it->second, m.partition) << "key " << m.key << " in two partitions";
  }
  // Per-target order: kafka_sink produces each batch grouped by partition, which must keep
  // every target's records in the order the source emitted them.
  std::vector<const RawMessage*> by_offset;
  for (const auto& m : raw) {
    by_offset.push_back(&m);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const RawMessage* a, const RawMessage* b) {
    return std::tie(a->partition, a->offset) < std::tie(b->partition, b->offset);
  });
  std::map<std::string, std::vector<std::string>> got_ids, want_ids;
  for (const RawMessage* m : by_offset) {
    got_ids[m->key].push_back(ids_of({m->value}).at(0));
  }
  for (const auto& line : expected) {
    want_ids[json_string_field(line, "target")].push_back(ids_of({line}).at(0));
  }
  EXPECT_EQ(got_ids.size(), want_ids.size());
  for (const auto& [key, ids] : want_ids) {
    EXPECT_EQ(got_ids[key], ids) << "records of target " << key << " out of order";
  }
  // Everything committed: a new run of the same group reads nothing.
  const auto committed = committed_offsets("g-" + topic, topic, partitions);
  std::int64_t sum = 0;
  for (auto c : committed) {
    sum += std::max<std::int64_t>(c, 0);
  }
  EXPECT_EQ(sum, n);
}

TEST(KafkaStack, RoundTripPlaintext) { round_trip(plaintext_conn(), "h5.rt", 20000, 3); }

// librdkafka < 2.4 stops fetching while the prefetch queue is full and looks again up to a
// second later; kafka_source wakes the fetcher once the queue has drained to half. With a
// 1 MiB queue and ~12 MiB of records the queue fills many times: the waker must have fired,
// and every record arrives exactly once.
TEST(KafkaStack, SmallPrefetchQueueWakesTheFetcherAndLosesNothing) {
  const std::string topic = create_topic("h5.prefetch", 2);
  TempDir dir;
  const auto expected = produce_records(plaintext_conn(), topic, 20000, dir);
  ASSERT_EQ(expected.size(), 20000U);
  const std::string got = dir.path() + "/got.jsonl";
  auto run = consume_until(
      consumer_yaml(plaintext_conn(), topic, "g-" + topic, got, "    prefetch_max_size: 1MiB\n"),
      got, expected.size(), "g-" + topic, topic, 2, 20000);
  EXPECT_EQ(run.config_error, "");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(same_lines(lines(read_file(got)), expected));
  if (rd_kafka_version() < 0x02040000) {
    EXPECT_GT(run.counter("kafka", "fetch_wakeups"), 0U);
  } else {
    EXPECT_EQ(run.counter("kafka", "fetch_wakeups"), 0U);
  }
}

TEST(KafkaStack, RoundTripSslClientCertificates) { round_trip(ssl_conn(), "h5.ssl", 2000, 2); }

TEST(KafkaStack, RoundTripSaslSsl) {
  round_trip(sasl_conn(Stack::get().sasl_password), "h5.sasl", 2000, 2);
}

/// Runs a 10-record producer through the agent binary; returns (exit code, output).
std::pair<int, std::string> run_producer_agent(const std::string& conn) {
  TempDir dir;
  const std::string yaml =
      "sources:\n  gen: { plugin: generator, count: 10 }\nsinks:\n  kafka:\n"
      "    plugin: kafka_sink\n    inputs: [gen]\n    topic: h5.auth\n    connect_timeout: 20s\n" +
      indent(conn, 4);
  const std::string file = dir.write("p.yaml", yaml);
  auto r = testing::run_process({testing::agent_binary(), "--pipeline", file}, 60s);
  return {r.exit_code, r.out + r.err};
}

TEST(KafkaStack, WrongCaIsAClearError) {
  TempDir dir;
  const std::string key = dir.path() + "/other.key";
  const std::string ca = dir.path() + "/other-ca.pem";
  auto gen = testing::run_process(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
       ca, "-days", "1", "-subj", "/CN=not-the-stack-ca"},
      30s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const Stack& s = Stack::get();
  const auto [code, out] =
      run_producer_agent("brokers: " + s.ssl + "\nsecurity_protocol: SSL\n" + "ca_file: " + ca +
                         "\ncert_file: " + s.cert + "\nkey_file: " + s.key + "\n");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("failed to start: cannot connect to Kafka (SSL to " + s.ssl + ")"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("certificate verify failed"), std::string::npos) << out;
}

TEST(KafkaStack, MissingClientCertificateIsAClearError) {
  const Stack& s = Stack::get();
  const auto [code, out] =
      run_producer_agent("brokers: " + s.ssl + "\nsecurity_protocol: SSL\nca_file: " + s.ca + "\n");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("failed to start: cannot connect to Kafka (SSL to " + s.ssl + ")"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("bad certificate"), std::string::npos) << out;
}

TEST(KafkaStack, MissingCertificateFileIsAConfigError) {
  const Stack& s = Stack::get();
  const auto [code, out] =
      run_producer_agent("brokers: " + s.ssl + "\nsecurity_protocol: SSL\nca_file: " + s.ca +
                         "\ncert_file: /nonexistent/service.cert\nkey_file: " + s.key + "\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("option 'cert_file': cannot read '/nonexistent/service.cert'"),
            std::string::npos)
      << out;
}

TEST(KafkaStack, WrongPasswordIsAClearErrorAndNeverPrinted) {
  const std::string secret = "wrong-Pa55word-h5";
  const auto [code, out] = run_producer_agent(sasl_conn(secret));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("failed to start: cannot connect to Kafka (SASL_SSL to"), std::string::npos)
      << out;
  EXPECT_NE(out.find("Authentication failed"), std::string::npos) << out;
  EXPECT_EQ(out.find(secret), std::string::npos) << "the password was printed";
}

TEST(KafkaStackFaults, BrokerKilledWhileProducingLosesNothing) {
  const std::string topic = create_topic("h5.kill", 3);
  TempDir dir;
  const std::string expected = dir.path() + "/expected.jsonl";
  const int n = 20000;
  testing::RunOptions opts;
  std::string fault_log;
  opts.during = [&](agent::Runtime&) {
    std::this_thread::sleep_for(2s);
    auto k = testing::run_process({source_dir() + "/scripts/stack", "kafka", "kill"}, 60s);
    fault_log += "kill: " + std::to_string(k.exit_code) + " " + k.err + "\n";
    std::this_thread::sleep_for(3s);
    auto s = testing::run_process({source_dir() + "/scripts/stack", "kafka", "start"}, 180s);
    fault_log += "start: " + std::to_string(s.exit_code) + " " + s.err + "\n";
  };
  // The broker may need longer than the default 30 s shutdown timeout to come back (JVM start
  // and log recovery after SIGKILL): the final flush waits for it.
  auto run = run_pipeline("agent: { shutdown_timeout: 150s }\n" +
                              producer_yaml(plaintext_conn(), topic, n, expected,
                                            "    rate: 2000\n    batch_size: 100\n"),
                          opts);
  EXPECT_EQ(run.exit_code, 0) << fault_log;
  EXPECT_NE(fault_log.find("kill: 0"), std::string::npos) << fault_log;
  EXPECT_NE(fault_log.find("start: 0"), std::string::npos) << fault_log;
  EXPECT_EQ(run.counter("kafka", "sent"), static_cast<std::uint64_t>(n));
  EXPECT_EQ(run.counter("gen", "acked_retryable"), 0U);

  const auto want = ids_of(lines(read_file(expected)));
  ASSERT_EQ(want.size(), static_cast<std::size_t>(n));
  std::vector<std::string> values;
  for (auto& m : consume_raw(topic, static_cast<std::size_t>(n), 60s)) {
    values.push_back(std::move(m.value));
  }
  const auto got_ids = ids_of(values);
  const std::set<std::string> got(got_ids.begin(), got_ids.end());
  std::size_t missing = 0;
  for (const auto& id : want) {
    missing += got.count(id) == 0 ? 1 : 0;
  }
  EXPECT_EQ(missing, 0U) << "records lost across the broker restart";
}

/// Seconds since `t`, for the recovery times the fault tests print (never asserted).
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// kill -9 and start again with the same agent name: with static membership (the default) the
// restarted consumer takes its partitions back at once and resumes from the committed offsets.
// The test prints the time from the restart to the first stored record.
TEST(KafkaStackFaults, ConsumerKilledResumesFromCommittedOffsets) {
  const std::string topic = create_topic("h5.ckill", 3);
  TempDir dir;
  const int n = 20000;
  const auto expected = produce_records(plaintext_conn(), topic, n, dir);
  const std::string group = "g-" + topic;
  const std::string agent = "agent: { name: consumer-" + topic + " }\n";
  const std::string slow = "  slow:\n    plugin: blackhole\n    inputs: [kafka]\n    delay: 20ms\n";
  const std::string extra = "    batch_size: 100\n    commit_interval: 200ms\n";
  const std::string got1 = dir.path() + "/got1.jsonl";
  const std::string got2 = dir.path() + "/got2.jsonl";
  {
    Agent a(dir.write("c1.yaml",
                      agent + consumer_yaml(plaintext_conn(), topic, group, got1, extra, slow)),
            dir.path() + "/c1.log");
    // Kill it mid-way, once it has committed something (the slow sink holds the commits back).
    ASSERT_TRUE(eventually(
        [&] { return line_count(got1) >= 3000 && committed_sum(group, topic, 3) > 0; }, 60s))
        << read_file(dir.path() + "/c1.log");
    a.signal(SIGKILL);
    ASSERT_EQ(a.wait(10s), -SIGKILL);
  }
  const std::size_t l1 = line_count(got1);
  const std::int64_t committed = committed_sum(group, topic, 3);
  EXPECT_GT(committed, 0) << "nothing was committed before the kill";
  EXPECT_LE(committed, static_cast<std::int64_t>(l1)) << "committed more than was delivered";
  ASSERT_LT(l1, static_cast<std::size_t>(n)) << "consumer finished before it was killed";

  const auto restarted = std::chrono::steady_clock::now();
  Agent b(dir.write("c2.yaml", agent + consumer_yaml(plaintext_conn(), topic, group, got2)),
          dir.path() + "/c2.log");
  ASSERT_TRUE(eventually([&] { return line_count(got2) > 0; }, 120s))
      << read_file(dir.path() + "/c2.log");
  std::cout << "consumer killed -9 and restarted: first record stored " << seconds_since(restarted)
            << " s after the restart\n";
  // Every record was committed by the end, so nothing more will be written: the counts are
  // final.
  ASSERT_TRUE(eventually([&] { return committed_sum(group, topic, 3) == n; }, 120s))
      << read_file(dir.path() + "/c2.log");
  const auto want = ids_of(expected);
  auto ids = ids_of(lines(read_file(got1)));
  auto more = ids_of(lines(read_file(got2)));
  ids.insert(ids.end(), more.begin(), more.end());
  const std::set<std::string> seen(ids.begin(), ids.end());
  EXPECT_TRUE(std::all_of(want.begin(), want.end(), [&](const auto& id) { return seen.count(id); }))
      << "records missing after the restart";
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(40s), 0) << read_file(dir.path() + "/c2.log");
  // Resumed from the committed offsets, not from the start.
  EXPECT_EQ(line_count(got2), static_cast<std::size_t>(n - committed));
}

/// `n` valid wire-format records (JSON lines) from the generator, without Kafka.
std::vector<std::string> generated_records(int n, const TempDir& dir) {
  const std::string file = dir.path() + "/generated.jsonl";
  auto gen = run_pipeline(
      "sources:\n  gen: { plugin: generator, count: " + std::to_string(n) +
      " }\nsinks:\n  f:\n    plugin: file\n    inputs: [gen]\n    path: " + file + "\n");
  EXPECT_EQ(gen.exit_code, 0);
  return lines(read_file(file));
}

std::vector<RawMessage> as_messages(const std::vector<std::string>& values) {
  std::vector<RawMessage> msgs;
  for (const auto& v : values) {
    RawMessage m;
    m.key = json_string_field(v, "target");
    m.value = v;
    msgs.push_back(std::move(m));
  }
  return msgs;
}

// The shared broker is stopped under a running consumer and started again once the consumer's
// group session has timed out (librdkafka then forgets its member id: with dynamic membership
// the group would wait for the old member's session to expire before anyone reads again). The
// consumer stays up, rejoins and stores the records produced after the restart, each once. The
// test prints the time from the broker being back to the first stored record.
TEST(KafkaStackFaults, BrokerRestartedConsumerRecovers) {
  const std::string topic = create_topic("h5.brestart", 3);
  TempDir dir;
  const auto records = generated_records(400, dir);
  ASSERT_EQ(records.size(), 400U);
  const std::vector<std::string> before(records.begin(), records.begin() + 200);
  const std::vector<std::string> after(records.begin() + 200, records.end());
  const std::string group = "g-" + topic;
  const std::string got = dir.path() + "/got.jsonl";
  produce_raw(topic, as_messages(before), -1);
  Agent a(dir.write("c.yaml", "agent: { name: consumer-" + topic + " }\n" +
                                  consumer_yaml(plaintext_conn(), topic, group, got)),
          dir.path() + "/c.log");
  ASSERT_TRUE(eventually(
      [&] { return line_count(got) == 200 && committed_sum(group, topic, 3) == 200; }, 60s))
      << read_file(dir.path() + "/c.log");

  const std::string stack = source_dir() + "/scripts/stack";
  struct Restore {  // leaves the shared broker running whatever happens
    std::string stack;
    bool started = false;
    ~Restore() {
      if (!started) {
        (void)testing::run_process({stack, "kafka", "start"}, 240s);
      }
    }
  } restore{stack};
  const auto stopping = std::chrono::steady_clock::now();
  auto stop = testing::run_process({stack, "kafka", "stop"}, 120s);
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  const bool session_lost = eventually(
      [&] {
        return read_file(dir.path() + "/c.log").find("Consumer group session timed out") !=
               std::string::npos;
      },
      120s);
  const double down = seconds_since(stopping);
  auto start = testing::run_process({stack, "kafka", "start"}, 240s);
  restore.started = start.exit_code == 0;
  ASSERT_TRUE(session_lost) << read_file(dir.path() + "/c.log");
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  const auto back = std::chrono::steady_clock::now();
  produce_raw(topic, as_messages(after), -1);
  const double produced = seconds_since(back);
  ASSERT_TRUE(eventually([&] { return line_count(got) > 200; }, 180s))
      << "nothing stored after the broker restart\n"
      << read_file(dir.path() + "/c.log");
  std::cout << "broker down " << down << " s (session timed out), back "
            << std::chrono::duration<double>(back - stopping).count()
            << " s after the stop; records produced " << produced
            << " s after it was back; first stored " << seconds_since(back)
            << " s after it was back\n";
  ASSERT_TRUE(eventually([&] { return committed_sum(group, topic, 3) == 400; }, 180s))
      << read_file(dir.path() + "/c.log");
  EXPECT_EQ(a.wait(0ms), std::nullopt) << "the consumer exited\n"
                                       << read_file(dir.path() + "/c.log");
  a.signal(SIGTERM);
  EXPECT_EQ(a.wait(40s), 0) << read_file(dir.path() + "/c.log");
  // Everything committed: each record stored once at least; a restart of the broker may
  // repeat records delivered but not yet committed, never lose one.
  const auto got_ids = ids_of(lines(read_file(got)));
  const std::set<std::string> seen(got_ids.begin(), got_ids.end());
  for (const auto& id : ids_of(records)) {
    EXPECT_EQ(seen.count(id), 1U) << "record " << id << " missing";
  }
}

// Two consumers of one group with the same agent name (so the same group.instance.id): the
// second one fences the first, which logs why and rejoins as a dynamic member instead of
// failing, so neither keeps stopping the other. Together they store every record.
TEST(KafkaStack, TwoConsumersWithTheSameNameBothKeepRunning) {
  const std::string topic = create_topic("h5.samename", 4);
  TempDir dir;
  const int n = 4000;
  const auto expected = produce_records(plaintext_conn(), topic, n, dir, "    targets: 500\n");
  const std::string group = "g-" + topic;
  const std::string agent = "agent: { name: twin-" + topic + " }\n";
  const std::string slow =
      "  slow:\n    plugin: blackhole\n    inputs: [kafka]\n    delay: 50ms\n"
      "    batch: { max_records: 50 }\n";  // 1,000 records/s: slow enough to see a split
  const std::string extra = "    batch_size: 50\n    max_in_flight: 500\n";
  const std::string got_a = dir.path() + "/a.jsonl";
  const std::string got_b = dir.path() + "/b.jsonl";
  const std::string log_a = dir.path() + "/a.log";
  const std::string log_b = dir.path() + "/b.log";
  Agent a(dir.write("a.yaml",
                    agent + consumer_yaml(plaintext_conn(), topic, group, got_a, extra, slow)),
          log_a);
  ASSERT_TRUE(eventually([&] { return line_count(got_a) > 0; }, 60s)) << read_file(log_a);
  Agent b(dir.write("b.yaml",
                    agent + consumer_yaml(plaintext_conn(), topic, group, got_b, extra, slow)),
          log_b);
  const std::string fenced = "continuing as a dynamic member";
  ASSERT_TRUE(eventually(
      [&] {
        return read_file(log_a).find(fenced) != std::string::npos ||
               read_file(log_b).find(fenced) != std::string::npos;
      },
      60s))
      << "--- a.log\n"
      << read_file(log_a) << "--- b.log\n"
      << read_file(log_b);
  // The fenced one joined again and was given partitions.
  const std::string fenced_log = read_file(log_a).find(fenced) != std::string::npos ? log_a : log_b;
  ASSERT_TRUE(eventually(
      [&] {
        const std::string text = read_file(fenced_log);
        return text.find("assigned " + topic, text.find(fenced)) != std::string::npos;
      },
      60s))
      << read_file(fenced_log);
  ASSERT_TRUE(eventually([&] { return committed_sum(group, topic, 4) == n; }, 120s))
      << "--- a.log\n"
      << read_file(log_a) << "--- b.log\n"
      << read_file(log_b);
  EXPECT_EQ(a.wait(0ms), std::nullopt) << read_file(log_a);
  EXPECT_EQ(b.wait(0ms), std::nullopt) << read_file(log_b);
  a.signal(SIGTERM);
  b.signal(SIGTERM);
  EXPECT_EQ(a.wait(40s), 0) << read_file(log_a);
  EXPECT_EQ(b.wait(40s), 0) << read_file(log_b);
  auto ids = ids_of(lines(read_file(got_a)));
  auto more = ids_of(lines(read_file(got_b)));
  ids.insert(ids.end(), more.begin(), more.end());
  const std::set<std::string> seen(ids.begin(), ids.end());
  for (const auto& id : ids_of(expected)) {
    EXPECT_EQ(seen.count(id), 1U) << "record " << id << " missing";
  }
  const std::string both = read_file(log_a) + read_file(log_b);
  EXPECT_EQ(both.find("the Kafka consumer hit a fatal error"), std::string::npos) << both;
}

TEST(KafkaStack, UndecodableMessagesGoToTheDeadLetterTopic) {
  const std::string topic = create_topic("h5.dlq", 1);
  TempDir dir;
  // Five valid wire-format records from the generator.
  const std::string valid_file = dir.path() + "/valid.jsonl";
  auto gen = run_pipeline(
      "sources:\n  gen: { plugin: generator, count: 6 }\nsinks:\n  f:\n"
      "    plugin: file\n    inputs: [gen]\n    path: " +
      valid_file + "\n");
  ASSERT_EQ(gen.exit_code, 0);
  const auto valid = lines(read_file(valid_file));
  ASSERT_EQ(valid.size(), 6U);
  std::string wrong_type = valid[5];
  const auto pos = wrong_type.find("\"status_code\":");
  ASSERT_NE(pos, std::string::npos);
  wrong_type.replace(pos, std::string("\"status_code\":200").size(), "\"status_code\":\"abc\"");
  std::string oversized = valid[5];
  oversized.insert(oversized.size() - 1, ",\"padding\":\"" + std::string(10000, 'x') + "\"");
  const std::string garbage("\x00\xff\xfe garbage \x01", 13);
  const std::string truncated = valid[5].substr(0, valid[5].size() / 2);

  std::vector<RawMessage> msgs;
  auto add = [&](const std::string& v) {
    RawMessage m;
    m.key = "k" + std::to_string(msgs.size());
    m.value = v;
    m.headers["origin-header"] = "kept";
    msgs.push_back(m);
  };
  add(valid[0]);    // 0
  add(garbage);     // 1
  add(valid[1]);    // 2
  add(truncated);   // 3
  add(valid[2]);    // 4
  add(wrong_type);  // 5
  add(valid[3]);    // 6
  add(oversized);   // 7
  add(valid[4]);    // 8
  produce_raw(topic, msgs);

  const std::string got = dir.path() + "/got.jsonl";
  const std::string group = "g-" + topic;
  // 9 messages: 5 delivered, 4 dead-lettered; all committed.
  auto run = consume_until(
      consumer_yaml(plaintext_conn(), topic, group, got, "    max_message_size: 8KiB\n"), got, 5,
      group, topic, 1, 9);
  EXPECT_EQ(run.exit_code, 0);
  const std::vector<std::string> want(valid.begin(), valid.begin() + 5);
  EXPECT_TRUE(same_lines(lines(read_file(got)), want))
      << "the records around bad messages are delivered";
  EXPECT_EQ(run.counter("kafka", "dead_lettered"), 4U);

  const auto dlq = consume_raw(topic + ".dlq", 4, 30s);
  ASSERT_EQ(dlq.size(), 4U);
  const std::int64_t offsets[] = {1, 3, 5, 7};
  const char* reasons[] = {"not JSON", "not JSON", "field 'status_code'", "exceeds the limit"};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& m = dlq[i];
    const auto& orig = msgs[static_cast<std::size_t>(offsets[i])];
    EXPECT_EQ(m.value, orig.value) << i;
    EXPECT_EQ(m.key, orig.key) << i;
    EXPECT_EQ(m.headers.at("webmon-dlq-topic"), topic);
    EXPECT_EQ(m.headers.at("webmon-dlq-partition"), "0");
    EXPECT_EQ(m.headers.at("webmon-dlq-offset"), std::to_string(offsets[i]));
    EXPECT_NE(m.headers.at("webmon-dlq-reason").find(reasons[i]), std::string::npos)
        << m.headers.at("webmon-dlq-reason");
    EXPECT_EQ(m.headers.at("origin-header"), "kept");
  }
  EXPECT_EQ(committed_offsets(group, topic, 1), std::vector<std::int64_t>{9});
}

TEST(KafkaStack, RetryableBatchesAreReadAgainAndNotCommitted) {
  const std::string topic = create_topic("h5.retry", 1);
  TempDir dir;
  const auto expected = produce_records(plaintext_conn(), topic, 50, dir);
  const std::string group = "g-" + topic;
  const std::string got = dir.path() + "/got.jsonl";
  // Runs until the 50 records were written four times (each pass acknowledged retryable: the
  // flaky sink's host delivery gives up at once, so the source reads them again).
  testing::RunOptions stop_soon;
  stop_soon.during = [&](agent::Runtime& rt) {
    (void)eventually([&] { return line_count(got) >= 200; }, 60s);
    rt.request_stop();
  };
  auto run = run_pipeline(
      consumer_yaml(plaintext_conn(), topic, group, got,
                    "    retry_backoff: 200ms\n    drain_timeout: 2s\n",
                    "  flaky:\n    plugin: blackhole\n    inputs: [kafka]\n    status: retryable\n"
                    "    retry: { max_retries: 0 }\n"),  // straight back to the source
      stop_soon);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_GE(line_count(got), 200U) << "each retryable batch is delivered again";
  EXPECT_GE(run.counter("kafka", "retried_batches"), 3U);
  // Nothing past the first (never delivered) record is committed: -1 (none) or 0.
  EXPECT_LE(committed_offsets(group, topic, 1).at(0), 0);

  const std::string got2 = dir.path() + "/got2.jsonl";
  auto again = consume_until(consumer_yaml(plaintext_conn(), topic, group, got2), got2, 50, group,
                             topic, 1, 50);
  EXPECT_TRUE(same_lines(lines(read_file(got2)), expected));
  EXPECT_EQ(committed_offsets(group, topic, 1), std::vector<std::int64_t>{50});
}

TEST(KafkaStack, RejectedBatchesGoToTheDeadLetterTopicAndAreCommitted) {
  const std::string topic = create_topic("h5.reject", 1);
  TempDir dir;
  const auto expected = produce_records(plaintext_conn(), topic, 50, dir);
  const std::string group = "g-" + topic;
  const std::string yaml = "sources:\n  kafka:\n    plugin: kafka_source\n    topics: [" + topic +
                           "]\n    group_id: " + group + "\n    dead_letter_topic: " + topic +
                           ".rejected\n" + indent(plaintext_conn(), 4) +
                           "sinks:\n  no:\n    plugin: blackhole\n    inputs: [kafka]\n"
                           "    status: rejected\n";
  testing::RunOptions opts;
  opts.during = [&](agent::Runtime& rt) {
    (void)eventually(
        [&] { return committed_offsets(group, topic, 1) == std::vector<std::int64_t>{50}; }, 30s);
    rt.request_stop();
  };
  auto run = run_pipeline(yaml, opts);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(committed_offsets(group, topic, 1), std::vector<std::int64_t>{50});
  const auto dlq = consume_raw(topic + ".rejected", 50, 30s);
  ASSERT_EQ(dlq.size(), 50U);
  std::vector<std::string> values;
  for (const auto& m : dlq) {
    EXPECT_EQ(m.headers.at("webmon-dlq-reason"), "rejected by a sink");
    values.push_back(m.value);
  }
  // The dead letters are the consumed messages byte for byte (kafka_sink's values, which
  // carry a kind_hash the file sink's lines do not).
  std::vector<std::string> originals;
  for (const auto& m : consume_raw(topic, 50, 30s)) {
    originals.push_back(m.value);
  }
  ASSERT_EQ(expected.size(), 50U);
  EXPECT_TRUE(same_lines(values, originals));
}

/// Whether the log has an "assigned" line naming every partition of `topic` (0 to n-1).
bool assigned_all(const std::string& log, const std::string& topic, int partitions) {
  for (const auto& line : lines(log)) {
    if (line.find("assigned ") == std::string::npos) {
      continue;
    }
    bool all = true;
    for (int p = 0; p < partitions && all; ++p) {
      const std::string name = topic + "/" + std::to_string(p);
      const auto at = line.find(name);
      all = at != std::string::npos &&
            (at + name.size() == line.size() || line[at + name.size()] == ',');
    }
    if (all) {
      return true;
    }
  }
  return false;
}

// Records are produced in three rounds, each after the group has settled, so what each
// consumer must read does not depend on how fast the first one got through the backlog: the
// second round lands on partitions of both members, the third (after the first consumer
// stopped) only on the second's.
TEST(KafkaStack, TwoConsumersSplitPartitionsAndTakeOver) {
  const std::string topic = create_topic("h5.group", 4);
  TempDir dir, dir2, dir3;
  const int n1 = 8000, n2 = 2000, n3 = 2000;
  // Many targets (keys), so every partition holds a fair share of the records.
  const std::string targets = "    targets: 1000\n";
  const auto round1 = produce_records(plaintext_conn(), topic, n1, dir, targets);
  const std::string group = "g-" + topic;
  const std::string slow =
      "  slow:\n    plugin: blackhole\n    inputs: [kafka]\n    delay: 50ms\n"
      "    batch: { max_records: 50 }\n";  // 1,000 records/s: a backlog to share
  const std::string extra = "    batch_size: 50\n    max_in_flight: 500\n";
  const std::string got_a = dir.path() + "/a.jsonl";
  const std::string got_b = dir.path() + "/b.jsonl";
  const std::string a_log = dir.path() + "/a.log";
  const std::string b_log = dir.path() + "/b.log";
  auto logs = [&] { return "--- b.log\n" + read_file(b_log) + "--- a.log\n" + read_file(a_log); };
  // Distinct agent names: each is its own static member (see the same-name test above).
  Agent a(dir.write("a.yaml", "agent: { name: a }\n" + consumer_yaml(plaintext_conn(), topic, group,
                                                                     got_a, extra, slow)),
          a_log);
  ASSERT_TRUE(eventually([&] { return line_count(got_a) > 0; }, 30s)) << read_file(a_log);
  Agent b(dir.write("b.yaml", "agent: { name: b }\n" + consumer_yaml(plaintext_conn(), topic, group,
                                                                     got_b, extra, slow)),
          b_log);
  // The group has split once the first consumer gave partitions up and the second got some.
  ASSERT_TRUE(eventually(
      [&] {
        return read_file(a_log).find("revoked") != std::string::npos &&
               read_file(b_log).find("assigned " + topic) != std::string::npos;
      },
      60s))
      << logs();
  const auto round2 = produce_records(plaintext_conn(), topic, n2, dir2, targets);
  ASSERT_TRUE(eventually([&] { return line_count(got_b) > 0; }, 30s))
      << "the second consumer delivered nothing of its partitions\n"
      << logs();
  a.signal(SIGTERM);
  EXPECT_EQ(a.wait(40s), 0) << read_file(a_log);
  // A static member that leaves is noticed after its session timeout (10 s).
  ASSERT_TRUE(eventually([&] { return assigned_all(read_file(b_log), topic, 4); }, 60s))
      << "the second consumer never took every partition over\n"
      << logs();
  const auto round3 = produce_records(plaintext_conn(), topic, n3, dir3, targets);

  std::vector<std::string> want = ids_of(round1);
  for (const auto* round : {&round2, &round3}) {
    const auto ids = ids_of(*round);
    want.insert(want.end(), ids.begin(), ids.end());
  }
  auto seen_in = [](const std::vector<std::string>& ids, const std::set<std::string>& seen) {
    return std::all_of(ids.begin(), ids.end(), [&](const auto& id) { return seen.count(id); });
  };
  auto all_seen = [&] {
    auto ids = ids_of(lines(read_file(got_a)));
    auto more = ids_of(lines(read_file(got_b)));
    ids.insert(ids.end(), more.begin(), more.end());
    return seen_in(want, std::set<std::string>(ids.begin(), ids.end()));
  };
  EXPECT_TRUE(eventually(all_seen, 90s)) << "records missed after the first consumer stopped";
  const auto b_ids = ids_of(lines(read_file(got_b)));
  EXPECT_TRUE(seen_in(ids_of(round3), std::set<std::string>(b_ids.begin(), b_ids.end())))
      << "records produced after the first consumer stopped are all the second's";
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(40s), 0) << read_file(b_log);
  EXPECT_EQ(committed_sum(group, topic, 4), n1 + n2 + n3);
}

}  // namespace
}  // namespace webmon::kafka_test
