// postgres_sink against the local stack's real PostgreSQL (scripts/stack; ctest fixture
// webmon_stack). Every test uses a fresh database; waits are bounded.
#include <deque>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>

#include "fake_context.hpp"
#include "pipeline_runner.hpp"
#include "runtime.hpp"
#include "schema.hpp"
#include "sink.hpp"
#include "test_db.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::postgres_sink::testing {
namespace {

using namespace std::chrono_literals;
using Rows = std::vector<std::vector<std::string>>;

constexpr std::int64_t kDay = 86'400'000'000LL;

/// A sink driven directly (no host): start, write batches, flush.
struct DirectSink {
  FakeContext ctx;
  AckLog acks;
  std::deque<sdk::Batch> batches;  // a batch stays valid until its Ack is resolved
  std::unique_ptr<PostgresSink> sink;

  explicit DirectSink(const sdk::ConfigNode& config, const std::string& id = "pg") : ctx(id) {
    sink = std::make_unique<PostgresSink>(config, ctx);
  }
  sdk::Sink& base() { return *sink; }
  sdk::Status start() { return base().start(ctx); }
  void write(std::vector<sdk::Record> records) {
    batches.push_back(sdk::Batch{std::move(records), 0});
    base().write(batches.back(), acks.make());
  }
  sdk::Status flush(std::chrono::milliseconds t = 30s) { return base().flush(t); }
};

std::vector<sdk::Record> checks(int n, std::int64_t time, const std::string& target = "t") {
  std::vector<sdk::Record> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(make_check(sdk::Timestamp{time + i}, target, i % 4 != 3, 10.0 + i));
  }
  return v;
}

std::string pipeline(const TestDb& db, const std::string& generator_opts,
                     const std::vector<std::pair<std::string, std::string>>& sink_opts = {},
                     const std::string& extra_sinks = "") {
  return "agent:\n  name: itest\n  shutdown_timeout: 60s\nsources:\n  gen:\n    plugin: generator\n" +
         generator_opts + "sinks:\n  pg:\n    plugin: postgres_sink\n    inputs: [gen]\n" +
         db.sink_yaml(4, sink_opts) + extra_sinks;
}

// ---------------------------------------------------------------------------------------------

TEST(PostgresSinkIntegration, StoresEveryRecordWithTheRightValuesInEveryColumn) {
  TestDb db("pgsink_values");
  webmon::testing::TempDir dir;
  const std::string out = dir.path() + "/records.jsonl";
  const int n = 3000;
  const auto run = webmon::testing::run_pipeline(pipeline(
      db,
      "    count: " + std::to_string(n) + "\n    targets: 7\n    batch_size: 250\n"
      "    failure_every: 10\n",
      {{"batch_size", "1000"}},
      "  file:\n    plugin: file\n    inputs: [gen]\n    path: " + out + "\n"));
  ASSERT_EQ(run.config_error, "");
  ASSERT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.counter("pg", "rows_inserted"), static_cast<std::uint64_t>(n));
  EXPECT_EQ(run.counter("gen", "acked_delivered"), static_cast<std::uint64_t>(n / 250));
  EXPECT_EQ(run.counter("gen", "acked_retryable"), 0U);

  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), std::to_string(n));
  EXPECT_EQ(db.value("SELECT count(DISTINCT id) FROM webmon.http_check"), std::to_string(n));

  // Compare every column with the same records as the file sink wrote them.
  const Rows rows = db.query(
      "SELECT id::text, (extract(epoch FROM \"time\") * 1000000)::bigint, target, url, method, "
      "agent, success, status_code, error, error_message, response_time_ms, dns_ms, connect_ms, "
      "tls_ms, ttfb_ms, transfer_ms, body_bytes, http_version, host(remote_ip), redirects, "
      "regex_matched, (extract(epoch FROM tls_cert_not_after) * 1000000)::bigint, "
      "tls_cert_issuer, tls_version, lateness_ms, labels::text, coalesce(extra::text, '-') "
      "FROM webmon.http_check");
  std::map<std::string, const std::vector<std::string>*> by_id;
  for (const auto& r : rows) {
    by_id[r[0]] = &r;
  }
  const std::vector<std::string> fields{
      "target", "url", "method", "agent", "success", "status_code", "error", "error_message",
      "response_time_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms",
      "body_bytes", "http_version", "remote_ip", "redirects", "regex_matched",
      "tls_cert_not_after", "tls_cert_issuer", "tls_version", "lateness_ms"};
  common::JsonDecoder decoder;
  int compared = 0;
  for (const auto& line : webmon::testing::lines(webmon::testing::read_file(out))) {
    sdk::Record rec;
    std::string err;
    ASSERT_TRUE(decoder.decode(line, rec, err)) << err;
    auto it = by_id.find(rec.id);
    ASSERT_NE(it, by_id.end()) << "record " << rec.id << " not stored";
    const auto& row = *it->second;
    EXPECT_EQ(row[1], std::to_string(rec.time.micros));
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::string& got = row[i + 2];
      const sdk::Value* v = rec.find(fields[i]);
      const std::string ctx = rec.id + " field " + fields[i];
      if (v == nullptr || std::holds_alternative<std::monostate>(*v)) {
        EXPECT_EQ(got, "\\N") << ctx;
      } else if (const auto* b = std::get_if<bool>(v)) {
        EXPECT_EQ(got, *b ? "t" : "f") << ctx;
      } else if (const auto* i64 = std::get_if<std::int64_t>(v)) {
        EXPECT_EQ(got, std::to_string(*i64)) << ctx;
      } else if (const auto* d = std::get_if<double>(v)) {
        EXPECT_EQ(std::stod(got), *d) << ctx;  // exact: shortest round-trip both ways
      } else if (const auto* s = std::get_if<std::string>(v)) {
        EXPECT_EQ(got, *s) << ctx;
      } else if (const auto* t = std::get_if<sdk::Timestamp>(v)) {
        EXPECT_EQ(got, std::to_string(t->micros)) << ctx;
      }
    }
    EXPECT_EQ(row[25], "{}") << "labels";
    EXPECT_EQ(row[26], "-") << "extra";
    ++compared;
  }
  EXPECT_EQ(compared, n);
}

TEST(PostgresSinkIntegration, SameRecordsAgainAddNothing) {
  TestDb db("pgsink_replay");
  const std::int64_t now = sdk::now().micros;
  const auto records = checks(500, now - 1000);
  {
    DirectSink s(db.sink_config({{"batch_size", "200"}}));
    ASSERT_TRUE(s.start().is_ok()) << s.ctx.all_logs();
    s.write(records);
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
    EXPECT_EQ(s.ctx.count("rows_inserted"), 500U);
  }
  ASSERT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "500");
  {
    // The same records again, mixed with 10 new ones, through a new sink (as after a restart).
    DirectSink s(db.sink_config());
    ASSERT_TRUE(s.start().is_ok());
    s.write(std::vector<sdk::Record>(records.begin(), records.begin() + 300));
    auto more = std::vector<sdk::Record>(records.begin() + 300, records.end());
    auto fresh = checks(10, now + 5000, "new");
    more.insert(more.end(), fresh.begin(), fresh.end());
    s.write(more);
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 2);
    EXPECT_EQ(s.ctx.count("rows_duplicate"), 500U);
    EXPECT_EQ(s.ctx.count("rows_inserted"), 10U);
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "510");
}

TEST(PostgresSinkIntegration, PostgresKilledAndRestartedMidStreamLosesAndDuplicatesNothing) {
  TestDb db("pgsink_kill");
  const int n = 24000;
  webmon::testing::RunOptions opts;
  std::string fault_error;
  opts.during = [&](agent::Runtime& /*rt*/) {
    try {
      std::this_thread::sleep_for(2500ms);
      run_stack({"postgres", "kill"});
      std::this_thread::sleep_for(1500ms);
      run_stack({"postgres", "start"});
    } catch (const std::exception& e) {
      fault_error = e.what();
    }
  };
  const auto run = webmon::testing::run_pipeline(
      pipeline(db, "    count: " + std::to_string(n) + "\n    rate: 3000\n",
               {{"retry_backoff", "50ms"}, {"retry_backoff_max", "1s"}}),
      opts);
  // Whatever happened, bring the server back for the following tests.
  if (!fault_error.empty()) {
    try {
      run_stack({"postgres", "start"});
    } catch (const std::exception&) {
    }
  }
  ASSERT_EQ(fault_error, "");
  ASSERT_EQ(run.config_error, "");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_GE(run.counter("pg", "reconnects"), 1U);
  EXPECT_GE(run.counter("pg", "retries"), 1U);
  EXPECT_EQ(run.counter("gen", "acked_retryable"), 0U);
  EXPECT_EQ(run.counter("gen", "acked_rejected"), 0U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), std::to_string(n));
  EXPECT_EQ(db.value("SELECT count(DISTINCT id) FROM webmon.http_check"), std::to_string(n));
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected"), "0");
}

TEST(PostgresSinkIntegration, InvalidRecordsGoToRejectedWithReasonsAndValidOnesAreStored) {
  TestDb db("pgsink_rejected");
  const std::int64_t now = sdk::now().micros;
  auto batch = checks(20, now - 100000);
  auto bad = checks(6, now - 50000, "bad");
  bad[0].set("status_code", std::int64_t{700});
  bad[1].set("response_time_ms", -3.0);
  bad[2].set("url", std::string("https://x/\xff\xfe"));
  bad[3].kind = "dns_check";
  bad[4].time = sdk::Timestamp{now + 30 * kDay};
  bad[5].set("success", std::string("yes"));
  batch.insert(batch.end(), bad.begin(), bad.end());
  for (int round = 0; round < 2; ++round) {  // the second round replays everything
    DirectSink s(db.sink_config());
    ASSERT_TRUE(s.start().is_ok());
    s.write(batch);
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
    EXPECT_EQ(s.ctx.count("rows_rejected"), 6U);
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "20");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check WHERE target = 'bad'"), "0");
  const Rows rej = db.query("SELECT id, kind, reason, raw::jsonb->>'id' FROM webmon.rejected ORDER BY reason");
  ASSERT_EQ(rej.size(), 6U);
  std::string reasons;
  for (const auto& r : rej) {
    EXPECT_EQ(r[0], r[3]);  // raw holds the record
    reasons += r[2] + "\n";
  }
  EXPECT_NE(reasons.find("field 'status_code': 700 is not an HTTP status (100-599)"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("field 'response_time_ms': negative duration -3"), std::string::npos);
  EXPECT_NE(reasons.find("field 'url': not valid UTF-8"), std::string::npos);
  EXPECT_NE(reasons.find("unknown record kind 'dns_check'"), std::string::npos);
  EXPECT_NE(reasons.find("is in the future beyond the accepted"), std::string::npos);
  EXPECT_NE(reasons.find("field 'success': expected bool, got string"), std::string::npos);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected WHERE raw::jsonb->>'kind' = 'dns_check'"), "1");
}

TEST(PostgresSinkIntegration, RowsPostgresRefusesAreIsolatedBySplittingTheBatch) {
  TestDb db("pgsink_split");
  {
    DirectSink s(db.sink_config());
    ASSERT_TRUE(s.start().is_ok());
    ASSERT_TRUE(s.flush().is_ok());
  }
  // A server-side rule the sink cannot know about.
  db.query("ALTER TABLE webmon.http_check ADD CONSTRAINT no_evil CHECK (target <> 'evil')");
  const std::int64_t now = sdk::now().micros;
  auto batch = checks(100, now - 100000);
  for (int i : {7, 50, 93}) {
    batch[static_cast<std::size_t>(i)].set("target", std::string("evil"));
  }
  DirectSink s(db.sink_config());
  ASSERT_TRUE(s.start().is_ok());
  s.write(batch);
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
  EXPECT_GE(s.ctx.count("batches_split"), 1U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "97");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected WHERE reason LIKE 'refused by PostgreSQL:%no_evil%'"),
            "3");
}

TEST(PostgresSinkIntegration, VerifyFullSucceedsAndAWrongCaIsRefused) {
  TestDb db("pgsink_tls");
  {
    DirectSink s(db.sink_config({{"start_timeout", "5s"}}));
    ASSERT_TRUE(s.start().is_ok()) << s.ctx.all_logs();
    EXPECT_EQ(db.value("SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a "
                       "USING (pid) WHERE a.application_name = 'webmon postgres_sink pg'"),
              "true");
    ASSERT_TRUE(s.flush().is_ok());
  }
  webmon::testing::TempDir dir;
  const auto gen = webmon::testing::run_process(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
       "-subj", "/CN=Some Other CA", "-keyout", dir.path() + "/other.key", "-out",
       dir.path() + "/other-ca.pem"},
      60s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  DirectSink s(db.sink_config({{"sslrootcert", dir.path() + "/other-ca.pem"},
                               {"start_timeout", "5s"}}));
  const auto start = std::chrono::steady_clock::now();
  const sdk::Status st = s.start();
  ASSERT_FALSE(st.is_ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "a TLS refusal is not retried";
  EXPECT_NE(st.message().find("cannot use PostgreSQL at " + stack_env().host), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("certificate verify failed"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(stack_env().password), std::string::npos);
  EXPECT_EQ(s.ctx.all_logs().find(stack_env().password), std::string::npos);
  EXPECT_TRUE(s.flush(0ms).is_ok());
}

TEST(PostgresSinkIntegration, RetentionDropsOldPartitionsAndKeepsNewOnes) {
  TestDb db("pgsink_retention");
  const std::int64_t now = sdk::now().micros;
  const std::int64_t today = now - now % kDay;
  {
    DirectSink s(db.sink_config());
    ASSERT_TRUE(s.start().is_ok());
    for (int days : {10, 5, 1, 0}) {
      s.write(checks(3, today - days * kDay + 3'600'000'000LL));
    }
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.ctx.count("rows_inserted"), 12U);
  }
  const std::string parts =
      "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'webmon.http_check'::regclass";
  const std::string before = db.value(parts);
  EXPECT_NE(before.find(Partitions::name_for(today - 10 * kDay)), std::string::npos) << before;
  EXPECT_NE(before.find(Partitions::name_for(today + 3 * kDay)), std::string::npos) << before;

  DirectSink s(db.sink_config({{"retention", "3d"}}));
  ASSERT_TRUE(s.start().is_ok());
  s.write(checks(2, today - 5 * kDay));  // older than retention: rejected, not stored
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.ctx.count("partitions_dropped"), 2U);
  const std::string after = db.value(parts);
  EXPECT_EQ(after.find(Partitions::name_for(today - 10 * kDay)), std::string::npos) << after;
  EXPECT_EQ(after.find(Partitions::name_for(today - 5 * kDay)), std::string::npos) << after;
  EXPECT_NE(after.find(Partitions::name_for(today - 1 * kDay)), std::string::npos) << after;
  EXPECT_NE(after.find(Partitions::name_for(today)), std::string::npos) << after;
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "6");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected WHERE reason LIKE '%older than the oldest accepted%'"),
            "2");
}

TEST(PostgresSinkIntegration, SeveralSinksCreatingTheSchemaAtOnce) {
  TestDb db("pgsink_concurrent");
  constexpr int kSinks = 4;
  std::vector<std::unique_ptr<DirectSink>> sinks;
  for (int i = 0; i < kSinks; ++i) {
    sinks.push_back(std::make_unique<DirectSink>(db.sink_config(), "pg" + std::to_string(i)));
  }
  std::vector<sdk::Status> status(kSinks);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSinks; ++i) {
    threads.emplace_back([&, i] { status[static_cast<std::size_t>(i)] = sinks[static_cast<std::size_t>(i)]->start(); });
  }
  for (auto& t : threads) {
    t.join();
  }
  const std::int64_t now = sdk::now().micros;
  for (int i = 0; i < kSinks; ++i) {
    ASSERT_TRUE(status[static_cast<std::size_t>(i)].is_ok()) << status[static_cast<std::size_t>(i)].message();
    sinks[static_cast<std::size_t>(i)]->write(checks(50, now - 1000 * (i + 1) * 100, "s" + std::to_string(i)));
  }
  for (auto& s : sinks) {
    ASSERT_TRUE(s->flush().is_ok());
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.schema_version"),
            std::to_string(migrations("webmon").size()));
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), std::to_string(50 * kSinks));
}

TEST(PostgresSinkIntegration, ViewsReturnUptimeAndPercentilesOfKnownData) {
  TestDb db("pgsink_views");
  const std::int64_t now = sdk::now().micros;
  const std::int64_t hour = now - now % 3'600'000'000LL - 3'600'000'000LL;  // previous hour
  std::vector<sdk::Record> records;
  for (int i = 0; i < 10; ++i) {  // target a: 10..100 ms, 2 failures
    records.push_back(make_check(sdk::Timestamp{hour + i * 60'000'000LL}, "a", i != 3 && i != 8,
                                 10.0 * (i + 1)));
  }
  for (int i = 0; i < 4; ++i) {  // target b: all fine, 1..4 ms
    records.push_back(make_check(sdk::Timestamp{hour + i * 60'000'000LL}, "b", true, i + 1.0));
  }
  DirectSink s(db.sink_config());
  ASSERT_TRUE(s.start().is_ok());
  s.write(records);
  ASSERT_TRUE(s.flush().is_ok());
  const std::string cols = "target, checks, failures, uptime_pct, round(p50_ms::numeric, 3), "
                           "round(p95_ms::numeric, 3), round(p99_ms::numeric, 3)";
  const Rows hourly = db.query("SELECT " + cols + " FROM webmon.http_check_hourly ORDER BY target");
  const Rows expected{{"a", "10", "2", "80.000", "55.000", "95.500", "99.100"},
                      {"b", "4", "0", "100.000", "2.500", "3.850", "3.970"}};
  EXPECT_EQ(hourly, expected);
  const Rows daily = db.query("SELECT " + cols + " FROM webmon.http_check_daily ORDER BY target");
  EXPECT_EQ(daily, expected);  // all records lie in one hour, hence in one UTC day
  const Rows summary = db.query("SELECT " + cols +
                                " FROM webmon.http_check_summary(now() - interval '1 day', now(), "
                                "'1 hour') ORDER BY target");
  EXPECT_EQ(summary, expected);
}

TEST(PostgresSinkIntegration, ConnectionKilledAndTooManyConnectionsAreRetried) {
  TestDb db("pgsink_conn");
  // Start-up while the database refuses connections ("too many connections"): waits, then works.
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT 0");
  DirectSink s(db.sink_config({{"retry_backoff", "50ms"}, {"retry_backoff_max", "500ms"},
                               {"start_timeout", "30s"}, {"batch_size", "100"}}));
  sdk::Status started;
  std::thread starter([&] { started = s.start(); });
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(db.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                     "'webmon postgres_sink pg'"),
            "0");
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT -1");
  starter.join();
  ASSERT_TRUE(started.is_ok()) << started.message();
  EXPECT_NE(s.ctx.all_logs().find("too many connections"), std::string::npos) << s.ctx.all_logs();

  // Mid-stream: the sink's session is terminated and new ones are refused for a while.
  const std::int64_t now = sdk::now().micros;
  s.write(checks(300, now - 10'000'000));
  db.wait_for_value("SELECT count(*) FROM webmon.http_check", "300", 20s);
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT 0");
  db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
           "'webmon postgres_sink pg'");
  s.write(checks(300, now - 5'000'000));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "300");
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT -1");
  ASSERT_TRUE(s.flush(30s).is_ok()) << s.ctx.all_logs();
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 2);
  EXPECT_GE(s.ctx.count("reconnects"), 1U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "600");
  EXPECT_EQ(db.value("SELECT count(DISTINCT id) FROM webmon.http_check"), "600");
}

TEST(PostgresSinkIntegration, SamplePipelineRunsInTheAgent) {
  TestDb db("pgsink_sample");
  const StackEnv& e = stack_env();
  const auto r = webmon::testing::run_process(
      {webmon::testing::agent_binary(), "--pipeline",
       std::string(WEBMON_SOURCE_DIR) + "/plugins/postgres_sink/sample.yaml"},
      120s,
      {"DATABASE_HOST=" + e.host, "DATABASE_PORT=" + e.port, "DATABASE_DB=" + db.name(),
       "DATABASE_USER=" + e.user, "DATABASE_PASSWD=" + e.password,
       "DATABASE_SSLMODE=verify-full", "DATABASE_SSLROOTCERT=" + e.sslrootcert});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(e.password), std::string::npos);
  EXPECT_EQ(r.out.find(e.password), std::string::npos);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "100");
  EXPECT_EQ(db.value("SELECT count(DISTINCT target) FROM webmon.http_check"), "10");
}

}  // namespace
}  // namespace webmon::plugins::postgres_sink::testing
