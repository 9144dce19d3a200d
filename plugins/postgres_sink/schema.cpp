// Migrations, partitions and retention (see schema.hpp).
#include "schema.hpp"

#include <cstdlib>

#include "rows.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

constexpr std::int64_t kDayMicros = 86'400'000'000LL;

/// BEGIN ... COMMIT, rolled back when left without commit().
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) { conn_.exec("BEGIN"); }
  ~Transaction() {
    if (!done_ && conn_.ok()) {
      try {
        conn_.exec("ROLLBACK");
      } catch (const PgError&) {
        // the connection is unusable; the caller's error says why
      }
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    conn_.exec("COMMIT");
    done_ = true;
  }

 private:
  Connection& conn_;
  bool done_ = false;
};

std::string literal_time(std::int64_t micros) {
  return "'" + rfc3339(sdk::Timestamp{micros}) + "'";
}

std::string v1_sql(const std::string& s) {
  std::string cols;
  for (const auto& c : http_check_field_columns()) {
    cols += "  " + std::string(c.name) + " " + std::string(c.sql_type) + ",\n";
  }
  const std::string stats =
      "  count(*) AS checks,\n"
      "  count(*) FILTER (WHERE NOT success) AS failures,\n"
      "  round(100.0 * count(*) FILTER (WHERE success) / count(*), 3) AS uptime_pct,\n"
      "  percentile_cont(0.50) WITHIN GROUP (ORDER BY response_time_ms) AS p50_ms,\n"
      "  percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_ms,\n"
      "  percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms) AS p99_ms,\n"
      "  avg(response_time_ms) AS avg_ms,\n"
      "  max(response_time_ms) AS max_ms\n";
  return "CREATE TABLE " + s + ".http_check (\n  \"time\" timestamptz NOT NULL,\n  id uuid NOT NULL,\n" +
         cols +
         "  labels jsonb NOT NULL DEFAULT '{}',\n"
         "  extra jsonb,\n"
         "  PRIMARY KEY (\"time\", id)\n"
         ") PARTITION BY RANGE (\"time\");\n"
         "CREATE INDEX http_check_target_time_idx ON " + s + ".http_check (target, \"time\");\n"
         "CREATE INDEX http_check_failures_idx ON " + s +
         ".http_check (target, \"time\") WHERE NOT success;\n"
         "CREATE TABLE " + s + ".rejected (\n"
         "  rejected_at timestamptz NOT NULL DEFAULT now(),\n"
         "  kind text,\n"
         "  id text,\n"
         "  \"time\" timestamptz,\n"
         "  reason text NOT NULL,\n"
         "  raw text NOT NULL,\n"
         "  raw_md5 uuid GENERATED ALWAYS AS (md5(raw)::uuid) STORED,\n"
         "  CONSTRAINT rejected_raw_md5_key UNIQUE (raw_md5)\n"
         ");\n"
         "CREATE INDEX rejected_rejected_at_idx ON " + s + ".rejected (rejected_at);\n"
         "CREATE VIEW " + s + ".http_check_hourly AS\nSELECT target,\n"
         "  date_trunc('hour', \"time\", 'UTC') AS bucket,\n" + stats +
         "FROM " + s + ".http_check GROUP BY target, bucket;\n"
         "CREATE VIEW " + s + ".http_check_daily AS\nSELECT target,\n"
         "  date_trunc('day', \"time\", 'UTC') AS bucket,\n" + stats +
         "FROM " + s + ".http_check GROUP BY target, bucket;\n"
         "CREATE FUNCTION " + s + ".http_check_summary(\n"
         "    p_from timestamptz, p_to timestamptz, p_bucket interval DEFAULT '1 hour')\n"
         "  RETURNS TABLE (target text, bucket timestamptz, checks bigint, failures bigint,\n"
         "                 uptime_pct numeric, p50_ms double precision, p95_ms double precision,\n"
         "                 p99_ms double precision, avg_ms double precision,\n"
         "                 max_ms double precision)\n"
         "  LANGUAGE sql STABLE AS $fn$\n"
         "SELECT target, date_bin(p_bucket, \"time\", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,\n" +
         stats + "FROM " + s + ".http_check WHERE \"time\" >= p_from AND \"time\" < p_to\n"
         "GROUP BY 1, 2 ORDER BY 1, 2\n$fn$;\n";
}

}  // namespace

std::string advisory_lock_sql(const std::string& schema) {
  return "SELECT pg_advisory_xact_lock(hashtext('webmon.postgres_sink:" + schema + "'))";
}

std::vector<Migration> migrations(const std::string& schema) {
  const std::string s = quote_ident(schema);
  return {
      {1, "http_check partitioned by time, rejected, hourly and daily views", v1_sql(s)},
  };
}

std::vector<int> migrate(Connection& conn, const std::string& schema) {
  const std::string s = quote_ident(schema);
  const auto all = migrations(schema);
  const int latest = all.back().version;
  const std::vector<const char*> params{schema.c_str()};
  // Fast path without a lock: already current.
  {
    Result r = conn.exec_params(
        "SELECT to_regclass(quote_ident($1) || '.schema_version') IS NOT NULL", params);
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") {
      Result v = conn.exec("SELECT coalesce(max(version), 0) FROM " + s + ".schema_version");
      if (std::atoi(PQgetvalue(v.get(), 0, 0)) >= latest) {
        return {};
      }
    }
  }
  std::vector<int> applied;
  Transaction tx(conn);
  conn.exec(advisory_lock_sql(schema));
  Result exists =
      conn.exec_params("SELECT count(*) FROM pg_namespace WHERE nspname = $1", params);
  if (std::string_view(PQgetvalue(exists.get(), 0, 0)) == "0") {
    conn.exec("CREATE SCHEMA " + s);
  }
  conn.exec("CREATE TABLE IF NOT EXISTS " + s +
            ".schema_version (version integer PRIMARY KEY, description text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())");
  Result v = conn.exec("SELECT coalesce(max(version), 0) FROM " + s + ".schema_version");
  const int current = std::atoi(PQgetvalue(v.get(), 0, 0));
  for (const auto& m : all) {
    if (m.version <= current) {
      continue;
    }
    conn.exec(m.sql);
    const std::string version = std::to_string(m.version);
    conn.exec_params("INSERT INTO " + s + ".schema_version (version, description) VALUES ($1, $2)",
                     {version.c_str(), m.description});
    applied.push_back(m.version);
  }
  tx.commit();
  return applied;
}

std::string Partitions::name_for(std::int64_t lower) {
  const std::string t = rfc3339(sdk::Timestamp{lower});  // 2026-11-27T22:00:00.000000Z
  std::string name = "http_check_p" + t.substr(0, 4) + t.substr(5, 2) + t.substr(8, 2);
  if (lower % kDayMicros != 0) {
    name += "_" + t.substr(11, 2) + t.substr(14, 2);
  }
  return name;
}

void Partitions::load(Connection& conn) {
  const std::string parent = quote_ident(schema_) + ".http_check";
  Result r = conn.exec(
      "SELECT (extract(epoch FROM lo) * 1000000)::bigint, (extract(epoch FROM hi) * 1000000)::bigint "
      "FROM (SELECT (regexp_match(b, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lo, "
      "(regexp_match(b, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS hi "
      "FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i "
      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '" + parent +
      "'::regclass) x) y WHERE lo IS NOT NULL AND hi IS NOT NULL");
  ranges_.clear();
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ranges_[std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10)] =
        std::strtoll(PQgetvalue(r.get(), i, 1), nullptr, 10);
  }
}

bool Partitions::covers(std::int64_t micros) const noexcept {
  auto it = ranges_.upper_bound(micros);
  if (it == ranges_.begin()) {
    return false;
  }
  --it;
  return micros < it->second;
}

bool Partitions::ensure(Connection& conn, std::int64_t micros) {
  if (covers(micros)) {
    return false;
  }
  Transaction tx(conn);
  conn.exec(advisory_lock_sql(schema_));
  conn.exec("SET LOCAL lock_timeout = '30s'");
  load(conn);
  if (covers(micros)) {
    tx.commit();
    return false;
  }
  std::int64_t lower = micros - (((micros % interval_us_) + interval_us_) % interval_us_);
  std::int64_t upper = lower + interval_us_;
  auto next = ranges_.upper_bound(micros);
  if (next != ranges_.end() && next->first < upper) {
    upper = next->first;
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second > lower) {
      lower = prev->second;
    }
  }
  conn.exec("CREATE TABLE " + quote_ident(schema_) + "." + quote_ident(name_for(lower)) +
            " PARTITION OF " + quote_ident(schema_) + ".http_check FOR VALUES FROM (" +
            literal_time(lower) + ") TO (" + literal_time(upper) + ")");
  tx.commit();
  ranges_[lower] = upper;
  return true;
}

int Partitions::ensure_ahead(Connection& conn, std::int64_t from, int ahead) {
  int created = 0;
  for (int k = 0; k <= ahead; ++k) {
    created += ensure(conn, from + k * interval_us_) ? 1 : 0;
  }
  return created;
}

std::vector<std::string> Partitions::drop_older_than(Connection& conn, std::int64_t cutoff) {
  const std::string parent = quote_ident(schema_) + ".http_check";
  Transaction tx(conn);
  conn.exec(advisory_lock_sql(schema_));
  conn.exec("SET LOCAL lock_timeout = '30s'");
  const std::string cutoff_text = rfc3339(sdk::Timestamp{cutoff});
  Result r = conn.exec_params(
      "SELECT relname FROM (SELECT c.relname, "
      "(regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS hi "
      "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = '" + parent + "'::regclass) x WHERE hi <= $1::timestamptz ORDER BY hi",
      {cutoff_text.c_str()});
  std::vector<std::string> dropped;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    const std::string name = PQgetvalue(r.get(), i, 0);
    conn.exec("DROP TABLE " + quote_ident(schema_) + "." + quote_ident(name));
    dropped.push_back(name);
  }
  tx.commit();
  if (!dropped.empty()) {
    load(conn);
  }
  return dropped;
}

}  // namespace webmon::plugins::postgres_sink
