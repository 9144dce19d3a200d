// Migrations, kind tables, partitions and retention (see schema.hpp).
#include "schema.hpp"

#include <cstdlib>

#include "rows.hpp"
#include "webmon/common/http_check_kind.hpp"
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

std::string v1_sql(const std::string& schema) {
  const std::string s = quote_ident(schema);
  return "CREATE TABLE " + s +
         ".rejected (\n"
         "  rejected_at timestamptz NOT NULL DEFAULT now(),\n"
         "  kind text,\n"
         "  id text,\n"
         "  \"time\" timestamptz,\n"
         "  reason text NOT NULL,\n"
         "  raw text NOT NULL,\n"
         "  raw_md5 uuid GENERATED ALWAYS AS (md5(raw)::uuid) STORED,\n"
         "  CONSTRAINT rejected_raw_md5_key UNIQUE (raw_md5)\n"
         ");\n"
         "CREATE INDEX rejected_rejected_at_idx ON " +
         s + ".rejected (rejected_at);\n" +
         create_table_sql(schema, layout_for(common::kHttpCheckKind));
}

struct CatalogColumn {
  std::string type;
  bool not_null;
};

std::map<std::string, CatalogColumn> table_columns(Connection& conn, const std::string& schema,
                                                   const std::string& table) {
  Result r = conn.exec_params(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
      "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
      {schema.c_str(), table.c_str()});
  std::map<std::string, CatalogColumn> cols;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    cols[PQgetvalue(r.get(), i, 0)] = CatalogColumn{
        PQgetvalue(r.get(), i, 1), std::string_view(PQgetvalue(r.get(), i, 2)) == "t"};
  }
  return cols;
}

bool relation_exists(Connection& conn, const std::string& qualified) {
  Result r = conn.exec_params("SELECT to_regclass($1) IS NOT NULL", {qualified.c_str()});
  return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
}

/// What has to change for the layout: columns to add, NOT NULLs to drop, type conflicts.
struct Plan {
  std::vector<const Column*> add;
  std::vector<const Column*> relax;
  std::string conflict;
  bool views = false;
  [[nodiscard]] bool nothing_to_do() const { return add.empty() && relax.empty() && !views; }
};

Plan plan_for(const std::string& schema, const Layout& layout,
              const std::map<std::string, CatalogColumn>& have, bool views_exist) {
  Plan p;
  for (const Column& c : layout.columns) {
    auto it = have.find(c.name);
    if (it == have.end()) {
      p.add.push_back(&c);
      continue;
    }
    if (it->second.type != c.catalog_type) {
      if (p.conflict.empty()) {
        p.conflict = "kind '" + layout.kind + "' version " + std::to_string(layout.version) +
                     ": field '" + c.name + "' changed type from " + it->second.type +
                     " (the column " + schema + "." + layout.kind + "." + c.name + ") to " +
                     sdk::to_string(c.type) + " (" + c.sql_type +
                     "); not applied automatically: migrate the column by hand or declare a "
                     "new field";
      }
      continue;
    }
    if (it->second.not_null && c.nullable) {
      p.relax.push_back(&c);
    }
  }
  p.views = layout.has_views() && !views_exist;
  return p;
}

}  // namespace

std::string create_table_sql(const std::string& schema, const Layout& layout) {
  const std::string s = quote_ident(schema);
  const std::string t = s + "." + quote_ident(layout.kind);
  std::string sql =
      "CREATE TABLE " + t + " (\n  \"time\" timestamptz NOT NULL,\n  id uuid NOT NULL,\n";
  for (const Column& c : layout.columns) {
    sql += "  " + quote_ident(c.name) + " " + c.sql_type + (c.nullable ? "" : " NOT NULL") + ",\n";
  }
  sql +=
      "  labels jsonb NOT NULL DEFAULT '{}',\n"
      "  extra jsonb,\n"
      "  PRIMARY KEY (\"time\", id)\n"
      ") PARTITION BY RANGE (\"time\");\n";
  if (!layout.key_field.empty()) {
    sql += "CREATE INDEX " + quote_ident(layout.kind + "_" + layout.key_field + "_time_idx") +
           " ON " + t + " (" + quote_ident(layout.key_field) + ", \"time\");\n";
    if (layout.has_success) {
      sql += "CREATE INDEX " + quote_ident(layout.kind + "_failures_idx") + " ON " + t + " (" +
             quote_ident(layout.key_field) + ", \"time\") WHERE NOT success;\n";
    }
  }
  if (layout.has_views()) {
    sql += views_sql(schema, layout);
  }
  return sql;
}

std::string views_sql(const std::string& schema, const Layout& layout) {
  const std::string s = quote_ident(schema);
  const std::string t = s + "." + quote_ident(layout.kind);
  const std::string d = quote_ident(layout.duration_field);
  const std::string target = layout.key_field.empty() ? std::string("NULL::text")
                                                      : quote_ident(layout.key_field) + "::text";
  const std::string stats =
      "  count(*) AS checks,\n"
      "  count(*) FILTER (WHERE NOT success) AS failures,\n"
      "  round(100.0 * count(*) FILTER (WHERE success) / count(*), 3) AS uptime_pct,\n"
      "  percentile_cont(0.50) WITHIN GROUP (ORDER BY " +
      d +
      ") AS p50_ms,\n"
      "  percentile_cont(0.95) WITHIN GROUP (ORDER BY " +
      d +
      ") AS p95_ms,\n"
      "  percentile_cont(0.99) WITHIN GROUP (ORDER BY " +
      d +
      ") AS p99_ms,\n"
      "  avg(" +
      d +
      ") AS avg_ms,\n"
      "  max(" +
      d + ") AS max_ms\n";
  auto view = [&](const char* suffix, const char* unit) {
    return "CREATE OR REPLACE VIEW " + s + "." + quote_ident(layout.kind + suffix) +
           " AS\nSELECT " + target + " AS target,\n  date_trunc('" + unit +
           "', \"time\", 'UTC') AS bucket,\n" + stats + "FROM " + t + " GROUP BY 1, 2;\n";
  };
  return view("_hourly", "hour") + view("_daily", "day") + "CREATE OR REPLACE FUNCTION " + s + "." +
         quote_ident(layout.kind + "_summary") +
         "(\n    p_from timestamptz, p_to timestamptz, p_bucket interval DEFAULT '1 hour')\n"
         "  RETURNS TABLE (target text, bucket timestamptz, checks bigint, failures bigint,\n"
         "                 uptime_pct numeric, p50_ms double precision, p95_ms double precision,\n"
         "                 p99_ms double precision, avg_ms double precision,\n"
         "                 max_ms double precision)\n"
         "  LANGUAGE sql STABLE AS $fn$\n"
         "SELECT " +
         target +
         ", date_bin(p_bucket, \"time\", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,\n" +
         stats + "FROM " + t +
         " WHERE \"time\" >= p_from AND \"time\" < p_to\n"
         "GROUP BY 1, 2 ORDER BY 1, 2\n$fn$;\n";
}

TableSync sync_kind_table(Connection& conn, const std::string& schema, const Layout& layout) {
  const std::string s = quote_ident(schema);
  const std::string t = s + "." + quote_ident(layout.kind);
  const std::string hourly = s + "." + quote_ident(layout.kind + "_hourly");
  TableSync out;
  // Without the lock first: the usual case is a table that already matches.
  {
    const auto have = table_columns(conn, schema, layout.kind);
    if (!have.empty()) {
      Plan p = plan_for(schema, layout, have, !layout.has_views() || relation_exists(conn, hourly));
      if (p.nothing_to_do()) {
        out.conflict = p.conflict;
        return out;
      }
    }
  }
  Transaction tx(conn);
  conn.exec(advisory_lock_sql(schema));
  conn.exec("SET LOCAL lock_timeout = '30s'");
  const auto have = table_columns(conn, schema, layout.kind);
  if (have.empty()) {
    conn.exec(create_table_sql(schema, layout));
    out.created = true;
  } else {
    Plan p = plan_for(schema, layout, have, !layout.has_views() || relation_exists(conn, hourly));
    for (const Column* c : p.add) {
      // Rows already in the table lack the field: a new column is always nullable.
      conn.exec("ALTER TABLE " + t + " ADD COLUMN IF NOT EXISTS " + quote_ident(c->name) + " " +
                c->sql_type);
      out.added.push_back(c->name);
    }
    for (const Column* c : p.relax) {
      conn.exec("ALTER TABLE " + t + " ALTER COLUMN " + quote_ident(c->name) + " DROP NOT NULL");
    }
    if (p.views) {
      conn.exec(views_sql(schema, layout));
    }
    out.conflict = p.conflict;
  }
  tx.commit();
  return out;
}

std::vector<std::string> kind_tables(Connection& conn, const std::string& schema) {
  Result r = conn.exec_params(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relkind = 'p' ORDER BY 1",
      {schema.c_str()});
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(PQntuples(r.get())));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.emplace_back(PQgetvalue(r.get(), i, 0));
  }
  return out;
}

std::string advisory_lock_sql(const std::string& schema) {
  return "SELECT pg_advisory_xact_lock(hashtext('webmon.postgres_sink:" + schema + "'))";
}

std::vector<Migration> migrations(const std::string& schema) {
  return {
      {1, "http_check partitioned by time, rejected, hourly and daily views", v1_sql(schema)},
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
  Result exists = conn.exec_params("SELECT count(*) FROM pg_namespace WHERE nspname = $1", params);
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

std::string Partitions::name_for(const std::string& table, std::int64_t lower) {
  const std::string t = rfc3339(sdk::Timestamp{lower});  // 2026-11-27T22:00:00.000000Z
  std::string name = table + "_p" + t.substr(0, 4) + t.substr(5, 2) + t.substr(8, 2);
  if (lower % kDayMicros != 0) {
    name += "_" + t.substr(11, 2) + t.substr(14, 2);
  }
  return name;
}

void Partitions::load(Connection& conn) {
  const std::string parent = quote_ident(schema_) + "." + quote_ident(table_);
  Result r = conn.exec(
      "SELECT (extract(epoch FROM lo) * 1000000)::bigint, (extract(epoch FROM hi) * "
      "1000000)::bigint "
      "FROM (SELECT (regexp_match(b, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lo, "
      "(regexp_match(b, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS hi "
      "FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i "
      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '" +
      parent + "'::regclass) x) y WHERE lo IS NOT NULL AND hi IS NOT NULL");
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
  conn.exec("CREATE TABLE " + quote_ident(schema_) + "." + quote_ident(name_for(table_, lower)) +
            " PARTITION OF " + quote_ident(schema_) + "." + quote_ident(table_) +
            " FOR VALUES FROM (" + literal_time(lower) + ") TO (" + literal_time(upper) + ")");
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
  const std::string parent = quote_ident(schema_) + "." + quote_ident(table_);
  Transaction tx(conn);
  conn.exec(advisory_lock_sql(schema_));
  conn.exec("SET LOCAL lock_timeout = '30s'");
  const std::string cutoff_text = rfc3339(sdk::Timestamp{cutoff});
  Result r = conn.exec_params(
      "SELECT relname FROM (SELECT c.relname, "
      "(regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz "
      "AS hi "
      "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = '" +
          parent + "'::regclass) x WHERE hi <= $1::timestamptz ORDER BY hi",
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
