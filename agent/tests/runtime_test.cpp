// The runtime end to end through real plugins: counts, fan-out, acknowledgements,
// backpressure and graceful stop.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "pipeline_runner.hpp"
#include "record_pool.hpp"

namespace webmon::agent {
namespace {

using nlohmann::json;
using testing::lines;
using testing::read_file;
using testing::run_pipeline;
using testing::TempDir;

const std::string kBroken = WEBMON_TEST_BROKEN_PLUGIN_DIR;

TEST(Runtime, GeneratorCountGivesExactlyNValidJsonRecords) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  auto run = run_pipeline(
      "agent:\n  name: agent-7\nsources:\n  gen:\n    plugin: generator\n"
      "    count: 2345\n    targets: 7\ntransforms:\n  labels:\n"
      "    plugin: add_fields\n    inputs: [gen]\n"
      "    fields: {region: eu-west}\nsinks:\n  out:\n    plugin: file\n"
      "    inputs: [labels]\n    path: " +
      out + "\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  const auto rows = lines(read_file(out));
  ASSERT_EQ(rows.size(), 2345U);
  std::set<std::string> ids;
  std::set<std::string> targets;
  for (const auto& line : rows) {
    const json j = json::parse(line);
    EXPECT_EQ(j.at("schema"), 1);
    EXPECT_EQ(j.at("kind"), "http_check");
    EXPECT_EQ(j.at("agent"), "agent-7");
    EXPECT_EQ(j.at("labels").at("region"), "eu-west");
    EXPECT_TRUE(j.at("response_time_ms").is_number_float());
    EXPECT_TRUE(j.at("status_code").is_number_integer());
    EXPECT_EQ(j.at("time").get<std::string>().size(), 27U);
    ids.insert(j.at("id").get<std::string>());
    targets.insert(j.at("target").get<std::string>());
  }
  EXPECT_EQ(ids.size(), 2345U);
  EXPECT_EQ(targets.size(), 7U);
  EXPECT_EQ(run.counter("gen", "sent"), 2345U);
  EXPECT_EQ(run.counter("labels", "received"), 2345U);
  EXPECT_EQ(run.counter("out", "sent"), 2345U);
  EXPECT_EQ(run.runtime->in_flight(), 0);
}

TEST(Runtime, FanOutDeliversEveryRecordToEverySink) {
  TempDir dir;
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 1000\n"
      "sinks:\n  a:\n    plugin: file\n    inputs: [gen]\n    path: " +
      dir.path() + "/a\n  b:\n    plugin: file\n    inputs: [gen]\n    path: " + dir.path() +
      "/b\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  const std::string a = read_file(dir.path() + "/a");
  EXPECT_EQ(lines(a).size(), 1000U);
  EXPECT_EQ(a, read_file(dir.path() + "/b"));
  EXPECT_EQ(run.counter("gen", "acked_delivered"), 2U);
}

// A kind a source registers at run time (ctx().register_kind) is one it declares: its records
// are checked against that declaration, not counted as schema_mismatch for being unknown.
TEST(Runtime, KindRegisteredAtRunTimeIsAmongTheSourcesKinds) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 500\n"
      "    kind: synthetic_tcp_check\nsinks:\n  out:\n    plugin: file\n"
      "    inputs: [gen]\n    path: " +
      out + "\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  EXPECT_EQ(lines(read_file(out)).size(), 500U);
  EXPECT_EQ(run.counter("gen", "sent"), 500U);
  EXPECT_EQ(run.counter("gen", "schema_mismatch"), 0U);
}

// A transform's output carries its inputs' kinds besides its own: alert with pass_through
// passes the generator's http_check records on, and they are not the transform's mismatches.
TEST(Runtime, TransformPassingItsInputsKindsOnIsNoSchemaMismatch) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 300\n"
      "transforms:\n  alerts:\n    plugin: alert\n    inputs: [gen]\n"
      "    pass_through: true\n    state_file: " +
      dir.path() + "/alert.json\nsinks:\n  out:\n    plugin: file\n    inputs: [alerts]\n" +
      "    path: " + out + "\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  EXPECT_GE(lines(read_file(out)).size(), 300U);
  EXPECT_EQ(run.counter("gen", "schema_mismatch"), 0U);
  EXPECT_EQ(run.counter("alerts", "schema_mismatch"), 0U);
}

// Finished batches are kept for sources (Emitter::take_spare_records) only once one has asked,
// whole, and up to the pool's bound; past it they are left to the caller to free.
TEST(RecordPool, KeepsFinishedBatchesOnlyOnceAskedAndUpToItsBound) {
  auto batch = [](std::size_t n) {
    std::vector<sdk::Record> v(n);
    for (auto& r : v) {
      r.id = std::string(40, 'i');
    }
    return v;
  };
  RecordPool pool(10);
  auto b = batch(4);
  pool.give(std::move(b));
  EXPECT_EQ(pool.held(), 0U);  // nobody asked yet: freed by the caller
  EXPECT_EQ(b.size(), 4U);
  EXPECT_TRUE(pool.take().empty());
  pool.give(batch(4));
  pool.give(batch(6));
  EXPECT_EQ(pool.held(), 10U);
  auto over = batch(1);
  pool.give(std::move(over));  // past the bound
  EXPECT_EQ(pool.held(), 10U);
  EXPECT_EQ(over.size(), 1U);
  const auto got = pool.take();
  EXPECT_EQ(got.size(), 6U);  // whole batches, the last given first
  EXPECT_EQ(got[0].id, std::string(40, 'i'));
  EXPECT_EQ(pool.held(), 4U);
  EXPECT_EQ(pool.take().size(), 4U);
  EXPECT_TRUE(pool.take().empty());
}

struct AckCase {
  const char* a;
  const char* b;
  const char* expected_counter;
};

void PrintTo(const AckCase& c, std::ostream* os) { *os << c.a << "+" << c.b; }

class AckCombination : public ::testing::TestWithParam<AckCase> {};

TEST_P(AckCombination, WorstStatusReachesTheSource) {
  const auto& p = GetParam();
  auto run =
      run_pipeline(std::string("sources:\n  gen:\n    plugin: generator\n    count: 100\n"
                               "    batch_size: 10\nsinks:\n  a:\n    plugin: blackhole\n"
                               "    inputs: [gen]\n    retry: { max_retries: 0 }\n    status: ") +
                   p.a +
                   "\n  b:\n    plugin: blackhole\n    inputs: [gen]\n"
                   "    retry: { max_retries: 0 }\n    status: " +
                   p.b + "\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  for (const char* c : {"acked_delivered", "acked_retryable", "acked_rejected"}) {
    EXPECT_EQ(run.counter("gen", c), std::string(c) == p.expected_counter ? 10U : 0U) << c;
  }
}

INSTANTIATE_TEST_SUITE_P(Runtime, AckCombination,
                         ::testing::Values(AckCase{"delivered", "delivered", "acked_delivered"},
                                           AckCase{"delivered", "retryable", "acked_retryable"},
                                           AckCase{"retryable", "rejected", "acked_rejected"},
                                           AckCase{"rejected", "delivered", "acked_rejected"}));

TEST(Runtime, RecordsDroppedByATransformCountAsDelivered) {
  testing::RunOptions opts;
  opts.plugin_dirs = {kBroken};
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 100\n    batch_size: 10\n"
      "transforms:\n  drop:\n    plugin: dropper\n    inputs: [gen]\n    keep_every: 0\n"
      "  half:\n    plugin: dropper\n    inputs: [gen]\n    keep_every: 2\n"
      "sinks:\n  out:\n    plugin: blackhole\n    inputs: [drop, half]\n",
      opts);
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  EXPECT_EQ(run.counter("gen", "acked_delivered"), 10U);
  EXPECT_EQ(run.counter("drop", "dropped"), 100U);
  EXPECT_EQ(run.counter("half", "dropped"), 50U);
  EXPECT_EQ(run.counter("out", "received"), 50U);
}

TEST(Runtime, SlowSinkBoundsTheBufferAndTellsTheSourceToWait) {
  testing::RunOptions opts;
  opts.stop_after = std::chrono::milliseconds(1500);
  // Endless generator; the sink takes 100 ms per 100-record batch (1,000 records/s at most);
  // the sink's memory buffer holds 500 records and blocks (tells the source to wait) beyond.
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n"
      "    batch_size: 100\nsinks:\n  out:\n    plugin: blackhole\n    inputs: [gen]\n"
      "    delay: 100ms\n    buffer: { max_records: 500 }\n    batch: { max_records: 100 }\n",
      opts);
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  const std::uint64_t emitted = run.counter("gen", "sent");
  // Unthrottled, the generator makes millions per second. Told to wait, it can only run ahead
  // of what the sink took (at most 1,500 in 1.5 s) by the buffer (500) plus one batch past
  // the limit and the batch in the sink.
  EXPECT_LE(emitted, 1500U + 500U + 100U + 100U);
  EXPECT_GE(run.counter("gen", "emit_full"), 1U);
  // Graceful stop drained everything that was emitted.
  EXPECT_EQ(run.counter("out", "sent"), emitted);
  EXPECT_EQ(run.runtime->in_flight(), 0);
}

TEST(Runtime, SigtermMidRunLosesNothingAcknowledged) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  const std::string pipeline =
      dir.write("p.yaml",
                "sources:\n  gen:\n    plugin: generator\n    rate: 20000\nsinks:\n  out:\n"
                "    plugin: file\n    inputs: [gen]\n    path: " +
                    out + "\n");
  testing::Child agent({testing::agent_binary(), "--pipeline", pipeline}, dir.path() + "/stdout",
                       dir.path() + "/stderr");
  // Signal once records are flowing (bounded wait; the machine may be busy).
  for (int i = 0; i < 400 && lines(read_file(out)).size() < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(agent.running()) << read_file(dir.path() + "/stderr");
  agent.signal(SIGTERM);
  const auto code = agent.wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << read_file(dir.path() + "/stderr");
  const std::string err = read_file(dir.path() + "/stderr");
  EXPECT_NE(err.find("received SIGTERM"), std::string::npos) << err;
  // The generator's own count of records taken by the pipeline equals the file's lines.
  const std::string key = "source 'gen' (generator): received=0 sent=";
  const std::size_t pos = err.find(key);
  ASSERT_NE(pos, std::string::npos) << err;
  const std::uint64_t sent = std::stoull(err.substr(pos + key.size()));
  EXPECT_GE(sent, 3000U);
  EXPECT_EQ(lines(read_file(out)).size(), sent);
  EXPECT_NE(err.find("sink 'out' (file): received=" + std::to_string(sent) +
                     " sent=" + std::to_string(sent) + " errors=0"),
            std::string::npos)
      << err;
}

// Each component's thread carries its name, so top -H, perf and gdb show which one is busy.
TEST(Runtime, ThreadsAreNamedAfterTheirComponents) {
  TempDir dir;
  const std::string pipeline =
      dir.write("p.yaml",
                "sources:\n  checks: { plugin: generator, rate: 100 }\ntransforms:\n"
                "  tag: { plugin: add_fields, inputs: [checks], fields: { a: b } }\nsinks:\n"
                "  a_very_long_sink_name: { plugin: blackhole, inputs: [tag] }\n");
  testing::Child agent({testing::agent_binary(), "--pipeline", pipeline}, dir.path() + "/stdout",
                       dir.path() + "/stderr");
  std::set<std::string> names;
  for (int i = 0; i < 200 && names.count("src:checks") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    names.clear();
    const std::string task = "/proc/" + std::to_string(agent.pid()) + "/task";
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator(task, ec)) {
      std::string comm = read_file(t.path().string() + "/comm");
      while (!comm.empty() && comm.back() == '\n') {
        comm.pop_back();
      }
      names.insert(comm);
    }
  }
  agent.signal(SIGTERM);
  EXPECT_EQ(agent.wait(std::chrono::seconds(30)), 0) << read_file(dir.path() + "/stderr");
  EXPECT_EQ(names.count("src:checks"), 1U);
  // Transforms run on the thread of the source that emitted the batch: no thread of their own.
  EXPECT_EQ(names.count("tr:tag"), 0U);
  EXPECT_EQ(names.count("sink:a_very_lon"), 1U);  // Linux keeps 15 bytes
}

TEST(Runtime, ShutdownTimeoutGivesUpWithExitCode1) {
  TempDir dir;
  // Each batch takes 10 s in the sink; a 300 ms shutdown timeout cannot drain it. When the
  // agent gives up, the sink (woken by the abort) answers `retryable`: the batch was not
  // delivered. (Had it answered `delivered` then, nothing would be lost and the exit code
  // would depend on whether that answer came before the agent counted what was left.)
  const std::string pipeline =
      dir.write("p.yaml",
                "agent:\n  shutdown_timeout: 300ms\n  metrics: {listen: \"127.0.0.1:0\"}\n"
                "sources:\n  gen:\n    plugin: generator\n"
                "sinks:\n  out:\n    plugin: blackhole\n    inputs: [gen]\n    delay: 10s\n"
                "    status: retryable\n");
  testing::Child agent({testing::agent_binary(), "--pipeline", pipeline}, dir.path() + "/stdout",
                       dir.path() + "/stderr");
  // Stop once the sink holds its first batch (its in_flight_records gauge on /metrics), so the
  // stop cannot come before it however slowly the agent starts; the deadline only bounds a hang.
  const std::regex port_re(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  const std::regex busy_re(R"(webmon_component_in_flight_records\{component="out"[^}]*\} [1-9])");
  bool busy = false;
  for (int i = 0; i < 1200 && !busy; ++i) {
    std::smatch m;
    const std::string err = read_file(dir.path() + "/stderr");
    if (std::regex_search(err, m, port_re)) {
      httplib::Client client("127.0.0.1", std::stoi(m[1]));
      const auto res = client.Get("/metrics");
      busy = res && std::regex_search(res->body, busy_re);
    }
    if (!busy) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ASSERT_TRUE(busy) << "the sink never got a batch: " << read_file(dir.path() + "/stderr");
  agent.signal(SIGINT);
  const auto code = agent.wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the agent did not give up within 30 s";
  EXPECT_EQ(*code, 1);
  const std::string err = read_file(dir.path() + "/stderr");
  EXPECT_NE(err.find("shutdown timed out after 300 ms"), std::string::npos) << err;
  EXPECT_NE(err.find("records not delivered are LOST (memory buffer"), std::string::npos) << err;
}

TEST(Runtime, MetricsRenderAsPrometheusText) {
  auto run = run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 42\nsinks:\n  out:\n"
      "    plugin: blackhole\n    inputs: [gen]\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  const std::string text = run.runtime->metrics().render();
  EXPECT_NE(text.find("# TYPE webmon_component_sent_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("webmon_component_sent_total{component=\"gen\",plugin=\"generator\","
                      "kind=\"source\"} 42\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("webmon_component_received_total{component=\"out\",plugin=\"blackhole\","
                      "kind=\"sink\"} 42\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace webmon::agent
