// postgres_sink's writer (see sink.hpp).
#include "sink.hpp"

#include <algorithm>
#include <cmath>
#include <regex>

#include "webmon/common/http_check_kind.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

using namespace std::chrono_literals;

constexpr auto kMaintenanceEvery = 10min;
constexpr auto kStartBackoff = 100ms;  // first delay while start-up waits for the server
constexpr auto kStartBackoffMax = 5s;
constexpr std::int64_t kYear2000 = 946'684'800'000'000LL;
constexpr std::size_t kMaxLatencySamples = 1'000'000;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(idx, v.size() - 1)];
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// The node of an option the user wrote (for messages), or the component's map.
const sdk::ConfigNode& at(const sdk::ConfigNode& config, std::string_view key) {
  const sdk::ConfigNode* n = config.find(key);
  return n != nullptr ? *n : config;
}

}  // namespace

Options parse_options(const sdk::ConfigNode& config, const std::string& application_name) {
  // Types, bounds and choices: checked by the table (the host checks them first).
  Options o = sdk::load_options<Options>(config, kOptions);
  // Connection: conninfo first (expanded by libpq), individual options override it.
  std::string conninfo_sslmode;
  if (o.conninfo) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(o.conninfo->c_str(), &err);
    if (parsed == nullptr) {
      if (err != nullptr) {
        PQfreemem(err);
      }
      // libpq's message may quote the string, and with it a password: keep it out.
      at(config, "conninfo")
          .fail("option 'conninfo' is not a valid libpq connection string or URI");
    }
    for (PQconninfoOption* p = parsed; p->keyword != nullptr; ++p) {
      if (p->val != nullptr && std::string_view(p->keyword) == "sslmode") {
        conninfo_sslmode = p->val;
      }
    }
    PQconninfoFree(parsed);
    o.conn.set("dbname", *o.conninfo);
  }
  auto not_empty = [&](const char* key, const std::optional<std::string>& value) {
    if (value && value->empty()) {
      at(config, key)
          .fail("option '" + std::string(key) + "' must not be empty (leave it out instead)");
    }
    return value.has_value();
  };
  if (not_empty("host", o.host)) {
    o.conn.set("host", *o.host);
  }
  if (o.port) {
    o.conn.set("port", std::to_string(*o.port));
  }
  if (not_empty("database", o.database)) {
    // After a conninfo in "dbname", a plain name must not be expanded again: libpq expands
    // only the first dbname, so a later one is taken literally.
    o.conn.entries.emplace_back("dbname", *o.database);
  }
  if (not_empty("user", o.user)) {
    o.conn.set("user", *o.user);
  }
  if (o.password) {
    o.conn.set("password", *o.password);
  }
  // Without sslmode, verify-full unless the conninfo chose one.
  const std::string sslmode = o.sslmode                  ? *o.sslmode
                              : conninfo_sslmode.empty() ? "verify-full"
                                                         : conninfo_sslmode;
  if (o.sslmode || conninfo_sslmode.empty()) {
    o.conn.set("sslmode", sslmode);
  }
  if (not_empty("sslrootcert", o.sslrootcert)) {
    o.conn.set("sslrootcert", *o.sslrootcert);
  }
  if (not_empty("sslcert", o.sslcert)) {
    o.conn.set("sslcert", *o.sslcert);
  }
  if (not_empty("sslkey", o.sslkey)) {
    o.conn.set("sslkey", *o.sslkey);
  }
  o.conn.set("connect_timeout",
             std::to_string(std::chrono::ceil<std::chrono::seconds>(o.connect_timeout).count()));
  o.conn.set("application_name", application_name.substr(0, 63));
  // Notice a dead peer within ~30 s instead of TCP's default of hours.
  o.conn.set("keepalives", "1");
  o.conn.set("keepalives_idle", "10");
  o.conn.set("keepalives_interval", "5");
  o.conn.set("keepalives_count", "3");
  o.conn.set("tcp_user_timeout", "30000");

  static const std::regex kIdent("[a-z_][a-z0-9_]{0,62}");
  if (!std::regex_match(o.schema, kIdent)) {
    at(config, "schema")
        .fail(
            "option 'schema' must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 "
            "characters); got '" +
            o.schema + "'");
  }
  if (o.partition_interval % 1h != 0ms) {
    at(config, "partition_interval")
        .fail("option 'partition_interval' must be a whole number of hours between 1h and 366d");
  }
  if (o.retention != 0ms && o.retention < o.partition_interval) {
    at(config, "retention")
        .fail("option 'retention' must be 0 (keep everything) or at least partition_interval");
  }
  // A description for messages: never the password or the conninfo text.
  const std::string* host = o.conn.find("host");
  const std::string* port = o.conn.find("port");
  const std::string* user = o.conn.find("user");
  std::string db;
  for (const auto& [k, v] : o.conn.entries) {
    if (k == "dbname" && v.find('=') == std::string::npos && v.find("://") == std::string::npos) {
      db = v;
    }
  }
  o.target = host != nullptr ? *host : o.conninfo ? "(conninfo)" : "(default host)";
  if (port != nullptr) {
    o.target += ":" + *port;
  }
  if (!db.empty()) {
    o.target += "/" + db;
  }
  if (user != nullptr) {
    o.target += " as " + *user;
  }
  o.target += " (sslmode=" + sslmode + ")";
  return o;
}

PostgresSink::PostgresSink(const sdk::ConfigNode& config, sdk::Context& ctx)
    : options_(parse_options(config, "webmon postgres_sink " + ctx.component_id())),
      c_inserted_(&ctx.counter("rows_inserted")),
      c_duplicate_(&ctx.counter("rows_duplicate")),
      c_rejected_(&ctx.counter("rows_rejected")),
      c_transactions_(&ctx.counter("transactions")),
      c_retries_(&ctx.counter("retries")),
      c_reconnects_(&ctx.counter("reconnects")),
      c_split_(&ctx.counter("batches_split")),
      c_partitions_created_(&ctx.counter("partitions_created")),
      c_partitions_dropped_(&ctx.counter("partitions_dropped")),
      c_tables_created_(&ctx.counter("tables_created")),
      c_columns_added_(&ctx.counter("columns_added")) {
  schema_sql_ = quote_ident(options_.schema);
  reject_sql_ = "INSERT INTO " + schema_sql_ +
                ".rejected (kind, id, \"time\", reason, raw) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING";
}

PostgresSink::~PostgresSink() = default;

namespace {

// For connection errors caused by the configuration: which options to check.
std::string settings_hint(std::string_view message) {
  if (message.find("password authentication failed") != std::string_view::npos ||
      message.find("no password supplied") != std::string_view::npos) {
    return " (check the options 'user' and 'password'; conf/consumer.yaml takes them from "
           "DATABASE_USER and DATABASE_PASSWD)";
  }
  if (message.find("does not exist") != std::string_view::npos &&
      message.find("database") != std::string_view::npos) {
    return " (check the option 'database'; conf/consumer.yaml takes it from DATABASE_DB)";
  }
  if (message.find("certificate verify failed") != std::string_view::npos ||
      message.find("server certificate") != std::string_view::npos) {
    return " (check the options 'sslrootcert' and 'host'; conf/consumer.yaml takes them from "
           "DATABASE_SSLROOTCERT and DATABASE_HOST)";
  }
  if (message.find("no pg_hba.conf entry") != std::string_view::npos) {
    return " (the server refuses this user/database/host combination: check 'user', "
           "'database' and 'sslmode')";
  }
  return {};
}

}  // namespace

sdk::Status PostgresSink::on_start() {
  const auto deadline = Clock::now() + options_.start_timeout;
  std::chrono::milliseconds delay = kStartBackoff;
  while (true) {
    try {
      ensure_connected();
      break;
    } catch (const PgError& e) {
      reset_connection();
      const std::string& st = e.sqlstate();
      // Mistakes in the settings will not fix themselves: fail at once, naming the options.
      const std::string hint = settings_hint(e.what());
      const bool retry =
          hint.empty() && e.kind() == FailureKind::transient &&
          (st.empty() || st.starts_with("08") || st.starts_with("57P") || st.starts_with("53"));
      if (!retry || Clock::now() + delay >= deadline) {
        return sdk::Status::error("cannot use PostgreSQL at " + options_.target + ": " + e.what() +
                                  hint);
      }
      limiter_.log(
          ctx(), sdk::LogLevel::warn, "start",
          "PostgreSQL at " + options_.target + " not available yet, retrying: " + e.what());
      if (ctx().wait_for_stop(delay)) {
        return sdk::Status::error("stopped while waiting for PostgreSQL at " + options_.target);
      }
      delay = std::min<std::chrono::milliseconds>(delay * 2, kStartBackoffMax);
    }
  }
  ctx().info("connected to PostgreSQL at " + options_.target + ", schema " + options_.schema);
  return sdk::Status::ok();
}

sdk::Status PostgresSink::on_write(const sdk::Batch& batch, sdk::Ack ack) {
  if (batch.records.empty()) {
    ack.resolve(sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }
  for (int attempt = 0;; ++attempt) {
    try {
      ensure_connected();
      maintenance_if_due();
      write_batch(batch.records);
      note_success();
      ack.resolve(sdk::AckStatus::delivered);
      return sdk::Status::ok();
    } catch (const PgError& e) {
      if (e.kind() == FailureKind::setup && attempt == 0) {
        // A table or partition vanished (or was never made): forget what is known and set up
        // again, at once.
        kinds_.clear();
        last_kind_ = nullptr;
        reset_connection();
        continue;
      }
      if (!conn_ || !conn_->ok()) {
        reset_connection();
      }
      c_retries_->add();
      note_failure(e.what());
    } catch (const std::exception& e) {
      reset_connection();
      c_retries_->add();
      note_failure(std::string("unexpected error: ") + e.what());
    }
    // Not stored now: the host writes the same batch again after its backoff.
    ack.resolve(sdk::AckStatus::retryable);
    return sdk::Status::ok();
  }
}

sdk::Status PostgresSink::on_flush(std::chrono::milliseconds /*timeout*/) {
  // Every write completed before returning: nothing is outstanding.
  ctx().info(summary());
  return sdk::Status::ok();
}

std::string PostgresSink::summary() const {
  return "stored " + std::to_string(rows_stored_) + " rows (" + std::to_string(rows_duplicate_) +
         " duplicates skipped, " + std::to_string(rows_rejected_) + " rejected) in " +
         std::to_string(commit_ms_.size()) + " transactions; commit ms p50 " +
         fixed(percentile(commit_ms_, 0.5)) + " p99 " + fixed(percentile(commit_ms_, 0.99)) +
         " max " + fixed(percentile(commit_ms_, 1.0));
}

void PostgresSink::note_failure(const std::string& message) {
  if (failures_++ == 0) {
    failing_since_ = Clock::now();
  }
  limiter_.log(ctx(), sdk::LogLevel::warn, "write",
               "writing to PostgreSQL at " + options_.target + " failed (" +
                   std::to_string(failures_) + " failed attempts in " +
                   fixed(ms_since(failing_since_) / 1000) +
                   " s); the batch is retryable: " + message);
}

void PostgresSink::note_success() {
  if (failures_ > 0) {
    ctx().info("PostgreSQL writes recovered after " + std::to_string(failures_) +
               " failed attempts in " + fixed(ms_since(failing_since_) / 1000) + " s");
    failures_ = 0;
  }
}

void PostgresSink::reset_connection() {
  conn_.reset();
  for (auto& [name, k] : kinds_) {
    k->stage_ready = false;  // temporary tables die with the session
  }
}

void PostgresSink::ensure_connected() {
  if (conn_ && conn_->ok()) {
    return;
  }
  reset_connection();
  auto conn = std::make_unique<Connection>(options_.conn);
  conn->exec("SET TIME ZONE 'UTC'; SET statement_timeout = '120s'");
  const std::vector<int> applied = migrate(*conn, options_.schema);
  for (int v : applied) {
    ctx().info("schema " + options_.schema + ": applied migration " + std::to_string(v));
  }
  for (auto& [name, k] : kinds_) {
    k->partitions.load(*conn);
  }
  conn_ = std::move(conn);
  if (connected_once_) {
    c_reconnects_->add();
  }
  connected_once_ = true;
  maintenance_if_due();
}

void PostgresSink::maintenance_if_due() {
  if (Clock::now() < next_maintenance_) {
    return;
  }
  try {
    maintenance();
  } catch (const PgError& e) {
    if (!conn_->ok()) {
      throw;
    }
    next_maintenance_ = Clock::now() + 30s;
    ctx().warn(std::string("partition maintenance failed, retrying in 30 s: ") + e.what());
  }
}

void PostgresSink::maintenance() {
  const std::int64_t now = sdk::now().micros;
  for (auto& [name, k] : kinds_) {
    if (!k->refusal.empty()) {
      k->spec = nullptr;  // look again: the column may have been migrated by hand meanwhile
    }
  }
  // Every kind's table, including kinds not seen since this agent started.
  for (const std::string& table : kind_tables(*conn_, options_.schema)) {
    auto it = kinds_.find(table);
    std::unique_ptr<Partitions> own;
    Partitions* p = nullptr;
    if (it != kinds_.end()) {
      p = &it->second->partitions;
    } else {
      own = std::make_unique<Partitions>(options_.schema, table, options_.partition_interval);
      own->load(*conn_);
      p = own.get();
    }
    const int created = p->ensure_ahead(*conn_, now, options_.partitions_ahead);
    c_partitions_created_->add(static_cast<std::uint64_t>(created));
    if (options_.retention.count() > 0) {
      const std::int64_t cutoff = now - options_.retention.count() * 1000;
      const auto dropped = p->drop_older_than(*conn_, cutoff);
      c_partitions_dropped_->add(dropped.size());
      for (const auto& name : dropped) {
        ctx().info("retention " + std::to_string(options_.retention.count() / 1000) +
                   " s: dropped partition " + options_.schema + "." + name);
      }
    }
  }
  if (options_.retention.count() > 0) {
    const std::int64_t cutoff = now - options_.retention.count() * 1000;
    const std::string cutoff_text = rfc3339(sdk::Timestamp{cutoff});
    conn_->exec_params("DELETE FROM " + schema_sql_ + ".rejected WHERE rejected_at < $1",
                       {cutoff_text.c_str()});
  }
  next_maintenance_ = Clock::now() + kMaintenanceEvery;
}

TimeWindow PostgresSink::time_window() const {
  const std::int64_t now = sdk::now().micros;
  TimeWindow w{kYear2000, now + options_.max_future.count() * 1000};
  if (options_.retention.count() > 0) {
    w.min_micros = std::max(w.min_micros, now - options_.retention.count() * 1000);
  }
  return w;
}

PostgresSink::KindState* PostgresSink::kind_state(const std::string& kind, std::string& reason) {
  if (!is_valid_kind_name(kind)) {
    reason = "kind '" + storable_text(kind) +
             "' cannot name a table: a kind name must be a lower-case identifier "
             "([a-z_][a-z0-9_]*, at most 48 characters) other than rejected and schema_version";
    return nullptr;
  }
  KindState* k = nullptr;
  if (last_kind_ != nullptr && last_kind_->layout.kind == kind) {
    k = last_kind_;
  } else if (auto it = kinds_.find(kind); it != kinds_.end()) {
    k = it->second.get();
  }
  if (k != nullptr && k->checked_batch == batch_seq_) {
    last_kind_ = k;
    return k;
  }
  // Once per batch and kind: the declaration may have changed (a newer version registered).
  const sdk::KindSpec* spec = ctx().find_kind(kind);
  if (spec == nullptr && kind == "http_check") {
    spec = &common::kHttpCheckKind;  // compiled in: the table exists from the first start
  }
  if (spec == nullptr || std::string_view(spec->name) == sdk::kAnyKind) {
    reason = "unknown record kind '" + kind +
             "': no declaration of it is known to this agent (no loaded plugin declares it and "
             "no source registered it)";
    return nullptr;
  }
  if (k == nullptr) {
    auto fresh = std::make_unique<KindState>(options_.schema, kind, options_.partition_interval);
    k = fresh.get();
    kinds_.emplace(kind, std::move(fresh));
  }
  if (k->spec != spec || k->version != spec->version || k->field_count != spec->field_count) {
    sync(*k, *spec);
  }
  k->checked_batch = batch_seq_;
  last_kind_ = k;
  return k;
}

void PostgresSink::sync(KindState& k, const sdk::KindSpec& spec) {
  k.layout = layout_for(spec);
  k.refusal.clear();
  k.stage_ready = false;
  if (!k.layout.invalid.empty()) {
    k.refusal = "kind '" + k.layout.kind + "' version " + std::to_string(spec.version) +
                ": the declaration cannot be a table: " + k.layout.invalid;
  } else {
    const TableSync r = sync_kind_table(*conn_, options_.schema, k.layout);
    if (r.created) {
      c_tables_created_->add();
      ctx().info(
          "created table " + options_.schema + "." + k.layout.kind + " (kind version " +
          std::to_string(spec.version) + ", " + std::to_string(k.layout.columns.size()) +
          " field columns" +
          (k.layout.has_views() ? ", uptime views on " + k.layout.duration_field : std::string()) +
          ")");
    }
    if (!r.added.empty()) {
      c_columns_added_->add(r.added.size());
      std::string cols;
      for (const auto& c : r.added) {
        cols += (cols.empty() ? "" : ", ") + c;
      }
      ctx().info("kind " + k.layout.kind + " version " + std::to_string(spec.version) +
                 ": added columns " + cols + " to " + options_.schema + "." + k.layout.kind);
    }
    if (!r.conflict.empty()) {
      k.refusal = r.conflict;
      ctx().error("records of kind " + k.layout.kind + " go to " + options_.schema +
                  ".rejected: " + r.conflict);
    }
    k.partitions.load(*conn_);
    if (r.created) {
      c_partitions_created_->add(static_cast<std::uint64_t>(
          k.partitions.ensure_ahead(*conn_, sdk::now().micros, options_.partitions_ahead)));
    }
  }
  const std::string t = schema_sql_ + "." + quote_ident(k.layout.kind);
  const std::string stage = "pg_temp." + quote_ident("webmon_stage_" + k.layout.kind);
  const std::string& cols = k.layout.column_list;
  k.copy_sql = "COPY " + t + " (" + cols + ") FROM STDIN (FORMAT binary)";
  // Made again after a layout change (new columns); quiet about a table that did not exist.
  k.stage_sql = "SET client_min_messages = warning; DROP TABLE IF EXISTS " + stage +
                "; RESET client_min_messages; CREATE TEMP TABLE " + stage + " (LIKE " + t +
                " INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";
  k.stage_copy_sql = "COPY " + stage + " (" + cols + ") FROM STDIN (FORMAT binary)";
  k.stage_insert_sql = "INSERT INTO " + t + " (" + cols + ") SELECT " + cols + " FROM " + stage +
                       " ON CONFLICT DO NOTHING";
  k.spec = &spec;
  k.version = spec.version;
  k.field_count = spec.field_count;
}

void PostgresSink::write_batch(const std::vector<sdk::Record>& records) {
  ++batch_seq_;
  const TimeWindow window = time_window();
  std::vector<Row> valid;
  std::vector<Reject> rejects;
  valid.reserve(records.size());
  std::string reason;
  for (const sdk::Record& r : records) {
    KindState* k = kind_state(r.kind, reason);
    if (k == nullptr) {
      rejects.push_back(Reject{&r, std::move(reason)});
      reason.clear();
    } else if (!k->refusal.empty()) {
      rejects.push_back(Reject{&r, k->refusal});
    } else if (auto why = validate(r, k->layout, window)) {
      rejects.push_back(Reject{&r, "kind '" + k->layout.kind + "': " + *why});
    } else {
      valid.push_back(Row{k, &r});
    }
  }
  for (const Row& row : valid) {
    Partitions& p = row.kind->partitions;
    if (!p.covers(row.record->time.micros) && p.ensure(*conn_, row.record->time.micros)) {
      c_partitions_created_->add();
    }
  }
  commit_isolating(valid, std::move(rejects));
}

void PostgresSink::commit_isolating(const std::vector<Row>& valid, std::vector<Reject> rejects) {
  try {
    commit(valid, rejects);
    return;
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::data) {
      throw;
    }
    limiter_.log(ctx(), sdk::LogLevel::warn, "split",
                 "PostgreSQL refused a batch of " + std::to_string(valid.size()) + " rows and " +
                     std::to_string(rejects.size()) + " rejects (" + e.what() +
                     "); splitting it to isolate the bad rows");
    c_split_->add();
  }
  std::vector<Reject> more;
  isolate(valid, more);
  rejects.insert(rejects.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
  try {
    commit({}, rejects);
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::data) {
      throw;
    }
    for (const auto& r : rejects) {
      store_reject_alone(r);
    }
  }
}

void PostgresSink::isolate(const std::vector<Row>& rows, std::vector<Reject>& out) {
  if (rows.empty()) {
    return;
  }
  try {
    commit(rows, {});
    return;
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::data) {
      throw;
    }
    if (rows.size() == 1) {
      out.push_back(Reject{rows[0].record, std::string("refused by PostgreSQL: ") + e.what()});
      return;
    }
  }
  const auto mid = rows.begin() + static_cast<std::ptrdiff_t>(rows.size() / 2);
  isolate(std::vector<Row>(rows.begin(), mid), out);
  isolate(std::vector<Row>(mid, rows.end()), out);
}

void PostgresSink::store_reject_alone(const Reject& reject) {
  try {
    commit({}, {reject});
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::data) {
      throw;
    }
    // Cannot happen with the raw JSON text, but never silently: say which record was lost.
    ctx().counter("rows_lost").add();
    ctx().error("record " + reject.record->id + " could not be stored even in " + options_.schema +
                ".rejected (" + e.what() + "); reason it was rejected: " + reject.reason);
  }
}

void PostgresSink::commit(const std::vector<Row>& rows, const std::vector<Reject>& rejects) {
  if (staging_runs_ > 0) {
    --staging_runs_;
    commit_once(rows, rejects, true);
    return;
  }
  try {
    commit_once(rows, rejects, false);
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::duplicate) {
      throw;
    }
    // A replay: rows already stored. Redo through the staging tables with ON CONFLICT DO
    // NOTHING, and keep doing so for a while (replays come in runs).
    staging_runs_ = 64;
    commit_once(rows, rejects, true);
  }
}

void PostgresSink::commit_once(const std::vector<Row>& rows, const std::vector<Reject>& rejects,
                               bool staging) {
  Connection& conn = *conn_;
  const auto start = Clock::now();
  // The kinds in the order they first appear (usually one).
  std::vector<KindState*> kinds;
  for (const Row& r : rows) {
    if (std::find(kinds.begin(), kinds.end(), r.kind) == kinds.end()) {
      kinds.push_back(r.kind);
    }
  }
  if (staging) {
    for (KindState* k : kinds) {
      if (!k->stage_ready) {
        conn.exec(k->stage_sql);
        k->stage_ready = true;
      }
    }
  }
  conn.exec("BEGIN");
  std::uint64_t inserted = 0;
  try {
    for (KindState* k : kinds) {
      std::size_t next = 0;
      const bool single = kinds.size() == 1;
      auto fill = [&](std::string& out) {
        constexpr std::size_t kPart = std::size_t{256} * 1024;
        if (next == 0) {
          append_copy_header(out);
        }
        while (next < rows.size() && out.size() < kPart) {
          const Row& r = rows[next++];
          if (single || r.kind == k) {
            append_copy_row(*r.record, k->layout, out);
          }
        }
        if (next < rows.size()) {
          return true;
        }
        append_copy_trailer(out);
        return false;
      };
      if (staging) {
        conn.copy_in(k->stage_copy_sql, fill, buf_);
        Result r = conn.exec(k->stage_insert_sql);
        inserted += std::strtoull(PQcmdTuples(r.get()), nullptr, 10);
      } else {
        inserted += conn.copy_in(k->copy_sql, fill, buf_);
      }
    }
    std::string raw;
    std::string time_text;
    for (const auto& rej : rejects) {
      const sdk::Record& rec = *rej.record;
      raw = common::to_json(rec);
      const bool time_ok = rec.time.micros >= -62135596800LL * 1'000'000 &&
                           rec.time.micros <= 253402300799LL * 1'000'000;
      time_text = time_ok ? rfc3339(rec.time) : std::string();
      const std::string kind = storable_text(rec.kind);
      const std::string id = storable_text(rec.id);
      const std::string reason = storable_text(rej.reason);
      conn.exec_params(reject_sql_,
                       {kind.c_str(), id.c_str(), time_ok ? time_text.c_str() : nullptr,
                        reason.c_str(), raw.c_str()});
    }
    conn.exec("COMMIT");
  } catch (const PgError&) {
    if (conn.ok()) {
      try {
        conn.exec("ROLLBACK");
      } catch (const PgError&) {
        // the original error is what matters
      }
    }
    throw;
  }
  const double ms = ms_since(start);
  if (commit_ms_.size() < kMaxLatencySamples) {
    commit_ms_.push_back(ms);
  }
  c_transactions_->add();
  const std::uint64_t dup = rows.size() - std::min<std::uint64_t>(inserted, rows.size());
  rows_stored_ += inserted;
  rows_duplicate_ += dup;
  rows_rejected_ += rejects.size();
  c_inserted_->add(inserted);
  c_duplicate_->add(dup);
  c_rejected_->add(rejects.size());
  if (!rejects.empty()) {
    limiter_.log(ctx(), sdk::LogLevel::warn, "rejected",
                 std::to_string(rejects.size()) + " records stored in " + options_.schema +
                     ".rejected; first: " + rejects.front().reason);
  }
}

}  // namespace webmon::plugins::postgres_sink
