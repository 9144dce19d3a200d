// postgres_sink against the local stack's real PostgreSQL (scripts/stack; ctest fixture
// webmon_stack). Every test uses a fresh database; waits are bounded.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
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

/// generator → postgres_sink; `host_yaml` holds the sink's host keys (batch:, retry:, …).
std::string pipeline(const TestDb& db, const std::string& generator_opts,
                     const std::string& host_yaml = "", const std::string& extra_sinks = "") {
  return "agent:\n  name: itest\n  shutdown_timeout: 60s\nsources:\n  gen:\n    plugin: "
         "generator\n" +
         generator_opts + "sinks:\n  pg:\n    plugin: postgres_sink\n    inputs: [gen]\n" +
         db.sink_yaml(4) + host_yaml + extra_sinks;
}

/// Waits (bounded: the deadline only bounds a hang) until the sink logged `text`.
bool wait_for_log(FakeContext& ctx, const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ctx.all_logs().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::vector<sdk::Record> tcp_checks(int n, std::int64_t time, const std::string& target = "t") {
  std::vector<sdk::Record> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(make_tcp(sdk::Timestamp{time + i}, target, i % 5 != 4, 1.0 + i));
  }
  return v;
}

// ---------------------------------------------------------------------------------------------

TEST(PostgresSinkIntegration, StoresEveryRecordWithTheRightValuesInEveryColumn) {
  TestDb db("pgsink_values");
  webmon::testing::TempDir dir;
  const std::string out = dir.path() + "/records.jsonl";
  const int n = 3000;
  const auto run = webmon::testing::run_pipeline(
      pipeline(db,
               "    count: " + std::to_string(n) +
                   "\n    targets: 7\n    batch_size: 250\n"
                   "    failure_every: 10\n",
               "    batch:\n      max_records: 1000\n",
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
      "target",           "url",         "method",        "agent",
      "success",          "status_code", "error",         "error_message",
      "response_time_ms", "dns_ms",      "connect_ms",    "tls_ms",
      "ttfb_ms",          "transfer_ms", "body_bytes",    "http_version",
      "remote_ip",        "redirects",   "regex_matched", "tls_cert_not_after",
      "tls_cert_issuer",  "tls_version", "lateness_ms"};
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
    DirectSink s(db.sink_config());
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
               "    retry:\n      initial_backoff: 50ms\n      max_backoff: 1s\n"),
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
  const Rows rej =
      db.query("SELECT id, kind, reason, raw::jsonb->>'id' FROM webmon.rejected ORDER BY reason");
  ASSERT_EQ(rej.size(), 6U);
  std::string reasons;
  for (const auto& r : rej) {
    EXPECT_EQ(r[0], r[3]);  // raw holds the record
    reasons += r[2] + "\n";
  }
  EXPECT_NE(reasons.find("field 'status_code': 700 is not an HTTP status (100-599)"),
            std::string::npos)
      << reasons;
  EXPECT_NE(reasons.find("field 'response_time_ms': negative duration -3"), std::string::npos);
  EXPECT_NE(reasons.find("field 'url': not valid UTF-8"), std::string::npos);
  EXPECT_NE(reasons.find("unknown record kind 'dns_check'"), std::string::npos);
  EXPECT_NE(reasons.find("is in the future beyond the accepted"), std::string::npos);
  EXPECT_NE(reasons.find("field 'success': expected bool, got string"), std::string::npos);
  EXPECT_EQ(
      db.value("SELECT count(*) FROM webmon.rejected WHERE raw::jsonb->>'kind' = 'dns_check'"),
      "1");
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
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected WHERE reason LIKE 'refused by "
                     "PostgreSQL:%no_evil%'"),
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
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=Some Other CA", "-keyout", dir.path() + "/other.key", "-out",
       dir.path() + "/other-ca.pem"},
      60s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  DirectSink s(
      db.sink_config({{"sslrootcert", dir.path() + "/other-ca.pem"}, {"start_timeout", "5s"}}));
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
  EXPECT_NE(before.find(Partitions::name_for("http_check", today - 10 * kDay)), std::string::npos)
      << before;
  EXPECT_NE(before.find(Partitions::name_for("http_check", today + 3 * kDay)), std::string::npos)
      << before;

  DirectSink s(db.sink_config({{"retention", "3d"}}));
  ASSERT_TRUE(s.start().is_ok());
  s.write(checks(2, today - 5 * kDay));  // older than retention: rejected, not stored
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.ctx.count("partitions_dropped"), 2U);
  const std::string after = db.value(parts);
  EXPECT_EQ(after.find(Partitions::name_for("http_check", today - 10 * kDay)), std::string::npos)
      << after;
  EXPECT_EQ(after.find(Partitions::name_for("http_check", today - 5 * kDay)), std::string::npos)
      << after;
  EXPECT_NE(after.find(Partitions::name_for("http_check", today - 1 * kDay)), std::string::npos)
      << after;
  EXPECT_NE(after.find(Partitions::name_for("http_check", today)), std::string::npos) << after;
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "6");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected WHERE reason LIKE '%older than the "
                     "oldest accepted%'"),
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
    threads.emplace_back([&, i] {
      status[static_cast<std::size_t>(i)] = sinks[static_cast<std::size_t>(i)]->start();
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const std::int64_t now = sdk::now().micros;
  for (int i = 0; i < kSinks; ++i) {
    ASSERT_TRUE(status[static_cast<std::size_t>(i)].is_ok())
        << status[static_cast<std::size_t>(i)].message();
    sinks[static_cast<std::size_t>(i)]->write(
        checks(50, now - 1000 * (i + 1) * 100, "s" + std::to_string(i)));
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
    records.push_back(
        make_check(sdk::Timestamp{hour + i * 60'000'000LL}, "a", i != 3 && i != 8, 10.0 * (i + 1)));
  }
  for (int i = 0; i < 4; ++i) {  // target b: all fine, 1..4 ms
    records.push_back(make_check(sdk::Timestamp{hour + i * 60'000'000LL}, "b", true, i + 1.0));
  }
  DirectSink s(db.sink_config());
  ASSERT_TRUE(s.start().is_ok());
  s.write(records);
  ASSERT_TRUE(s.flush().is_ok());
  const std::string cols =
      "target, checks, failures, uptime_pct, round(p50_ms::numeric, 3), "
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
  DirectSink s(db.sink_config({{"start_timeout", "60s"}}));
  sdk::Status started;
  std::thread starter([&] { started = s.start(); });
  // The sink was refused at least once (it says so) and keeps waiting.
  const bool refused = wait_for_log(s.ctx, "too many connections", 30s);
  EXPECT_TRUE(refused) << s.ctx.all_logs();
  EXPECT_EQ(db.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                     "'webmon postgres_sink pg'"),
            "0");
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT -1");
  starter.join();
  ASSERT_TRUE(started.is_ok()) << started.message();

  // Mid-stream: the sink's session is terminated and new ones are refused for a while. The
  // write completes synchronously: stored (delivered) or not (retryable, for the host to retry).
  const std::int64_t now = sdk::now().micros;
  s.write(checks(300, now - 10'000'000));
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "300");
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT 0");
  db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'webmon postgres_sink pg'");
  const auto second = checks(300, now - 5'000'000);
  s.write(second);
  EXPECT_EQ(s.acks.count(sdk::AckStatus::retryable), 1) << s.ctx.all_logs();
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "300");
  EXPECT_GE(s.ctx.count("retries"), 1U);
  db.query("ALTER DATABASE \"" + db.name() + "\" CONNECTION LIMIT -1");
  // The host writes the same batch again after its backoff: the sink reconnects.
  s.write(second);
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 2) << s.ctx.all_logs();
  ASSERT_TRUE(s.flush(30s).is_ok()) << s.ctx.all_logs();
  EXPECT_GE(s.ctx.count("reconnects"), 1U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "600");
  EXPECT_EQ(db.value("SELECT count(DISTINCT id) FROM webmon.http_check"), "600");
}

// ---------------------------------------------------------------------------------------------
// Every declared kind gets its own table.

TEST(PostgresSinkIntegration, GenericKindGetsItsOwnTableWithTypedColumnsValuesAndViews) {
  TestDb db("pgsink_generic");
  DirectSink s(db.sink_config());
  s.ctx.add_kind(kTcpKindV1);
  ASSERT_TRUE(s.start().is_ok()) << s.ctx.all_logs();
  const std::int64_t now = sdk::now().micros;
  const std::int64_t hour = now - now % 3'600'000'000LL - 3'600'000'000LL;  // previous hour
  std::vector<sdk::Record> records;
  for (int i = 0; i < 10; ++i) {  // target a: 10..100 ms total, 2 failures
    records.push_back(
        make_tcp(sdk::Timestamp{hour + i * 60'000'000LL}, "a", i != 3 && i != 8, 10.0 * (i + 1)));
  }
  records.push_back(make_check(sdk::Timestamp{hour}, "web", true, 5));  // and an http_check
  s.write(records);
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
  EXPECT_EQ(s.ctx.count("rows_inserted"), 11U);
  EXPECT_EQ(s.ctx.count("rows_rejected"), 0U) << s.ctx.all_logs();
  EXPECT_EQ(s.ctx.count("tables_created"), 1U);

  const Rows types = db.query(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
      "WHERE a.attrelid = 'webmon.tcp_check'::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum");
  const Rows expected_types{{"time", "timestamp with time zone", "t"},
                            {"id", "uuid", "t"},
                            {"target", "text", "t"},
                            {"host", "text", "t"},
                            {"port", "bigint", "t"},
                            {"success", "boolean", "t"},
                            {"error", "text", "f"},
                            {"connect_ms", "double precision", "f"},
                            {"total_ms", "double precision", "t"},
                            {"cert_not_after", "timestamp with time zone", "f"},
                            {"labels", "jsonb", "t"},
                            {"extra", "jsonb", "f"}};
  EXPECT_EQ(types, expected_types);
  EXPECT_EQ(db.value("SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i "
                     "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(att, n) "
                     "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att "
                     "WHERE i.indrelid = 'webmon.tcp_check'::regclass AND i.indisprimary"),
            "time,id");
  EXPECT_EQ(db.value("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                     "'webmon.tcp_check'::regclass"),
            db.value("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                     "'webmon.http_check'::regclass"));

  const Rows rows = db.query(
      "SELECT id::text, (extract(epoch FROM \"time\") * 1000000)::bigint, target, host, port, "
      "success, error, connect_ms, total_ms, "
      "(extract(epoch FROM cert_not_after) * 1000000)::bigint, labels::text, "
      "coalesce(extra::text, '-') FROM webmon.tcp_check ORDER BY \"time\"");
  ASSERT_EQ(rows.size(), 10U);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const sdk::Record& r = records[i];
    const auto& row = rows[i];
    EXPECT_EQ(row[0], r.id);
    EXPECT_EQ(row[1], std::to_string(r.time.micros));
    EXPECT_EQ(row[2], "a");
    EXPECT_EQ(row[3], "a.example");
    EXPECT_EQ(row[4], "5432");
    EXPECT_EQ(row[5], *r.get<bool>("success") ? "t" : "f");
    EXPECT_EQ(row[6], *r.get<bool>("success") ? "\\N" : "connect");
    if (*r.get<bool>("success")) {
      EXPECT_EQ(std::stod(row[7]), *r.get<double>("connect_ms"));
    } else {
      EXPECT_EQ(row[7], "\\N");
    }
    EXPECT_EQ(std::stod(row[8]), *r.get<double>("total_ms"));
    EXPECT_EQ(row[9], std::to_string(r.get<sdk::Timestamp>("cert_not_after")->micros));
    EXPECT_EQ(row[10], "{\"zone\": \"a\"}");
    EXPECT_EQ(row[11], "-");
  }
  // The uptime and percentile views over total_ms, like http_check's.
  const std::string cols =
      "target, checks, failures, uptime_pct, round(p50_ms::numeric, 3), "
      "round(p95_ms::numeric, 3), round(p99_ms::numeric, 3)";
  const Rows expected{{"a", "10", "2", "80.000", "55.000", "95.500", "99.100"}};
  EXPECT_EQ(db.query("SELECT " + cols + " FROM webmon.tcp_check_hourly"), expected);
  EXPECT_EQ(db.query("SELECT " + cols + " FROM webmon.tcp_check_daily"), expected);
  EXPECT_EQ(db.query("SELECT " + cols +
                     " FROM webmon.tcp_check_summary(now() - interval '1 day', "
                     "now(), '1 hour')"),
            expected);
}

TEST(PostgresSinkIntegration, GenericKindReplayAddsNothing) {
  TestDb db("pgsink_generic_replay");
  const auto records = tcp_checks(200, sdk::now().micros - 1'000'000);
  for (int round = 0; round < 2; ++round) {
    DirectSink s(db.sink_config());
    s.ctx.add_kind(kTcpKindV1);
    ASSERT_TRUE(s.start().is_ok());
    s.write(records);
    s.write(records);  // within one sink too
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 2);
    EXPECT_EQ(s.ctx.count("rows_inserted"), round == 0 ? 200U : 0U);
    EXPECT_EQ(s.ctx.count("rows_duplicate"), round == 0 ? 200U : 400U);
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check"), "200");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected"), "0");
}

TEST(PostgresSinkIntegration, AnAddedFieldAddsAColumn) {
  TestDb db("pgsink_add_column");
  const std::int64_t now = sdk::now().micros;
  {
    DirectSink s(db.sink_config());
    s.ctx.add_kind(kTcpKindV1);
    ASSERT_TRUE(s.start().is_ok());
    s.write(tcp_checks(5, now - 2'000'000, "old"));
    ASSERT_TRUE(s.flush().is_ok());
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                     "'webmon' AND table_name = 'tcp_check' AND column_name = 'tls_version'"),
            "0");
  DirectSink s(db.sink_config());
  s.ctx.add_kind(kTcpKindV1);
  ASSERT_TRUE(s.start().is_ok());
  s.write(tcp_checks(3, now - 1'500'000, "v1"));
  // A newer version of the declaration is registered while the sink runs (as kafka_source does
  // when it learns one): the next batch adds the column.
  s.ctx.add_kind(kTcpKindV2);
  auto v2 = tcp_checks(4, now - 1'000'000, "new");
  for (auto& r : v2) {
    r.add("tls_version", std::string("TLSv1.3"));
  }
  s.write(v2);
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 2);
  EXPECT_EQ(s.ctx.count("columns_added"), 1U);
  EXPECT_EQ(s.ctx.count("rows_rejected"), 0U) << s.ctx.all_logs();
  EXPECT_EQ(db.value("SELECT data_type FROM information_schema.columns WHERE table_schema = "
                     "'webmon' AND table_name = 'tcp_check' AND column_name = 'tls_version'"),
            "text");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check WHERE tls_version = 'TLSv1.3'"), "4");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check WHERE tls_version IS NULL"), "8");
  EXPECT_NE(s.ctx.all_logs().find("added columns tls_version to webmon.tcp_check"),
            std::string::npos)
      << s.ctx.all_logs();
}

TEST(PostgresSinkIntegration, AFieldChangingTypeSendsTheKindsRecordsToRejected) {
  TestDb db("pgsink_type_change");
  const std::int64_t now = sdk::now().micros;
  {
    DirectSink s(db.sink_config());
    s.ctx.add_kind(kTcpKindV1);
    ASSERT_TRUE(s.start().is_ok());
    s.write(tcp_checks(5, now - 2'000'000));
    ASSERT_TRUE(s.flush().is_ok());
  }
  DirectSink s(db.sink_config());
  s.ctx.add_kind(kTcpKindPortString);
  ASSERT_TRUE(s.start().is_ok());
  std::vector<sdk::Record> batch;
  for (int i = 0; i < 3; ++i) {
    sdk::Record r;
    r.kind = "tcp_check";
    r.time = sdk::Timestamp{now - 1'000'000 + i};
    r.id = sdk::make_uuid_v7(r.time);
    r.add("target", std::string("t"));
    r.add("host", std::string("db.example"));
    r.add("port", std::string("postgresql"));
    r.add("success", true);
    r.add("total_ms", 2.0);
    batch.push_back(std::move(r));
  }
  batch.push_back(make_check(sdk::Timestamp{now - 1'000'000}, "web", true, 3));  // unaffected
  s.write(batch);
  ASSERT_TRUE(s.flush().is_ok());
  // Not a stopped consumer: the batch is delivered, the affected records are in rejected.
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
  EXPECT_EQ(s.ctx.count("rows_rejected"), 3U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check"), "5");
  EXPECT_EQ(db.value("SELECT data_type FROM information_schema.columns WHERE table_schema = "
                     "'webmon' AND table_name = 'tcp_check' AND column_name = 'port'"),
            "bigint");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "1");
  const Rows rej = db.query("SELECT DISTINCT kind, reason FROM webmon.rejected");
  ASSERT_EQ(rej.size(), 1U);
  EXPECT_EQ(rej[0][0], "tcp_check");
  const std::string& reason = rej[0][1];
  for (const char* part : {"kind 'tcp_check'", "field 'port'", "from bigint", "to string"}) {
    EXPECT_NE(reason.find(part), std::string::npos) << part << " in: " << reason;
  }
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected"), "3");
}

TEST(PostgresSinkIntegration, TwoSinksCreatingTheSameNewTableAtOnceBothSucceed) {
  TestDb db("pgsink_concurrent_kind");
  {
    DirectSink s(db.sink_config());  // the schema exists; the tcp_check table does not
    ASSERT_TRUE(s.start().is_ok());
    ASSERT_TRUE(s.flush().is_ok());
  }
  constexpr int kSinks = 2;
  std::vector<std::unique_ptr<DirectSink>> sinks;
  for (int i = 0; i < kSinks; ++i) {
    sinks.push_back(std::make_unique<DirectSink>(db.sink_config(), "pg" + std::to_string(i)));
    sinks.back()->ctx.add_kind(kTcpKindV1);
    ASSERT_TRUE(sinks.back()->start().is_ok());
  }
  const std::int64_t now = sdk::now().micros;
  // Both write their first tcp_check batch at once: both create the table (one wins the lock,
  // the other finds it made); then both meet version 2 at once and add its column.
  auto write_all = [&](std::int64_t offset, bool v2) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kSinks; ++i) {
      threads.emplace_back([&, i] {
        auto records = tcp_checks(100, now - offset - 1'000'000 * i, "s" + std::to_string(i));
        if (v2) {
          for (auto& r : records) {
            r.add("tls_version", std::string("TLSv1.2"));
          }
        }
        sinks[static_cast<std::size_t>(i)]->write(std::move(records));
      });
    }
    for (auto& t : threads) {
      t.join();
    }
  };
  write_all(10'000'000, false);
  for (auto& s : sinks) {
    s->ctx.add_kind(kTcpKindV2);
  }
  write_all(5'000'000, true);
  std::uint64_t created = 0;
  std::uint64_t added = 0;
  for (auto& s : sinks) {
    EXPECT_EQ(s->acks.count(sdk::AckStatus::delivered), 2) << s->ctx.all_logs();
    created += s->ctx.count("tables_created");
    added += s->ctx.count("columns_added");
    ASSERT_TRUE(s->flush().is_ok());
  }
  EXPECT_EQ(created, 1U);
  EXPECT_EQ(added, 1U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check"), "400");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check WHERE tls_version = 'TLSv1.2'"), "200");
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.rejected"), "0");
}

TEST(PostgresSinkIntegration, MissingFieldsInvalidAndUnknownKindsGoToRejectedWithReasons) {
  TestDb db("pgsink_generic_rejected");
  DirectSink s(db.sink_config());
  s.ctx.add_kind(kTcpKindV1);
  ASSERT_TRUE(s.start().is_ok());
  const std::int64_t now = sdk::now().micros;
  auto batch = tcp_checks(4, now - 1'000'000);
  batch[1].fields.erase(batch[1].fields.begin() + 2);  // port
  batch[2].kind = "Bad-Kind";
  batch[3].kind = "smtp_check";  // nobody declares it
  s.write(batch);
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_EQ(s.acks.count(sdk::AckStatus::delivered), 1);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.tcp_check"), "1");
  const Rows rej = db.query("SELECT kind, reason FROM webmon.rejected ORDER BY kind");
  ASSERT_EQ(rej.size(), 3U);
  EXPECT_EQ(rej[0][0], "Bad-Kind");
  EXPECT_NE(rej[0][1].find("kind 'Bad-Kind' cannot name a table"), std::string::npos) << rej[0][1];
  EXPECT_EQ(rej[1][0], "smtp_check");
  EXPECT_NE(rej[1][1].find("unknown record kind 'smtp_check'"), std::string::npos) << rej[1][1];
  EXPECT_EQ(rej[2][0], "tcp_check");
  EXPECT_EQ(rej[2][1], "kind 'tcp_check': field 'port': required int is missing");
}

TEST(PostgresSinkIntegration, AKindRegisteredAtRunTimeIsStoredThroughTheAgent) {
  // The generator registers synthetic_tcp_check with the agent when it starts (as kafka_source
  // does with kinds it learns from messages); the sink finds it through the agent.
  TestDb db("pgsink_runtime_kind");
  const int n = 1200;
  const auto run = webmon::testing::run_pipeline(pipeline(
      db, "    count: " + std::to_string(n) + "\n    targets: 3\n    kind: synthetic_tcp_check\n",
      "    batch:\n      max_records: 500\n"));
  ASSERT_EQ(run.config_error, "");
  ASSERT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.counter("pg", "rows_inserted"), static_cast<std::uint64_t>(n));
  EXPECT_EQ(run.counter("pg", "rows_rejected"), 0U);
  EXPECT_EQ(run.counter("pg", "tables_created"), 1U);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.synthetic_tcp_check"), std::to_string(n));
  EXPECT_EQ(db.value("SELECT count(DISTINCT target) FROM webmon.synthetic_tcp_check"), "3");
  EXPECT_EQ(db.value("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                     "'webmon.synthetic_tcp_check'::regclass AND attname = 'tls_cert_not_after'"),
            "timestamp with time zone");
  // total_ms is the views' duration; failure_every 20 → 5 % failures.
  EXPECT_EQ(db.value("SELECT sum(checks) || '/' || sum(failures) FROM "
                     "webmon.synthetic_tcp_check_hourly"),
            std::to_string(n) + "/" + std::to_string(n / 20));
}

TEST(PostgresSinkIntegration, SamplePipelineRunsInTheAgent) {
  TestDb db("pgsink_sample");
  const StackEnv& e = stack_env();
  const auto r = webmon::testing::run_process(
      {webmon::testing::agent_binary(), "--pipeline",
       std::string(WEBMON_SOURCE_DIR) + "/plugins/postgres_sink/sample.yaml"},
      120s,
      {"DATABASE_HOST=" + e.host, "DATABASE_PORT=" + e.port, "DATABASE_DB=" + db.name(),
       "DATABASE_USER=" + e.user, "DATABASE_PASSWD=" + e.password, "DATABASE_SSLMODE=verify-full",
       "DATABASE_SSLROOTCERT=" + e.sslrootcert});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(e.password), std::string::npos);
  EXPECT_EQ(r.out.find(e.password), std::string::npos);
  EXPECT_EQ(db.value("SELECT count(*) FROM webmon.http_check"), "100");
  EXPECT_EQ(db.value("SELECT count(DISTINCT target) FROM webmon.http_check"), "10");
}

}  // namespace
}  // namespace webmon::plugins::postgres_sink::testing
