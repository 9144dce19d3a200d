// postgres_sink's writer (see sink.hpp).
#include "sink.hpp"

#include <algorithm>
#include <cmath>
#include <regex>

#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::postgres_sink {
namespace {

using namespace std::chrono_literals;

constexpr auto kMaintenanceEvery = 10min;
constexpr auto kFailureLogEvery = 30s;
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

const sdk::ConfigNode* opt(const sdk::ConfigNode& c, std::string_view key) {
  const sdk::ConfigNode* n = c.find(key);
  return n != nullptr && !n->is_null() ? n : nullptr;
}

}  // namespace

Options parse_options(const sdk::ConfigNode& config, const std::string& application_name) {
  Options o;
  // Connection: conninfo first (expanded by libpq), individual options override it.
  std::string conninfo_sslmode;
  if (const auto* n = opt(config, "conninfo")) {
    const std::string& ci = n->as_string();
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(ci.c_str(), &err);
    if (parsed == nullptr) {
      if (err != nullptr) {
        PQfreemem(err);
      }
      // libpq's message may quote the string, and with it a password: keep it out.
      n->fail("option 'conninfo' is not a valid libpq connection string or URI");
    }
    for (PQconninfoOption* p = parsed; p->keyword != nullptr; ++p) {
      if (p->val != nullptr && std::string_view(p->keyword) == "sslmode") {
        conninfo_sslmode = p->val;
      }
    }
    PQconninfoFree(parsed);
    o.conn.set("dbname", ci);
  }
  auto set_string = [&](const char* key, const char* libpq_key) {
    if (const auto* n = opt(config, key)) {
      if (n->as_string().empty()) {
        n->fail("option '" + std::string(key) + "' must not be empty (leave it out instead)");
      }
      o.conn.set(libpq_key, n->as_string());
    }
  };
  set_string("host", "host");
  if (const auto* n = opt(config, "port")) {
    const std::int64_t port = n->as_int();
    if (port < 1 || port > 65535) {
      n->fail("option 'port' must be between 1 and 65535");
    }
    o.conn.set("port", std::to_string(port));
  }
  if (const auto* n = opt(config, "database")) {
    if (n->as_string().empty()) {
      n->fail("option 'database' must not be empty (leave it out instead)");
    }
    // After a conninfo in "dbname", a plain name must not be expanded again: libpq expands
    // only the first dbname, so a later one is taken literally.
    o.conn.entries.emplace_back("dbname", n->as_string());
  }
  set_string("user", "user");
  if (const auto* n = opt(config, "password")) {
    o.conn.set("password", n->as_string());
  }
  std::string sslmode = "verify-full";
  if (const auto* n = opt(config, "sslmode")) {
    sslmode = n->as_string();
    static constexpr std::string_view kModes[] = {"disable",   "allow",     "prefer",
                                                  "require",   "verify-ca", "verify-full"};
    if (std::find(std::begin(kModes), std::end(kModes), sslmode) == std::end(kModes)) {
      n->fail("option 'sslmode' must be one of disable, allow, prefer, require, verify-ca, "
              "verify-full; got '" + sslmode + "'");
    }
    o.conn.set("sslmode", sslmode);
  } else if (conninfo_sslmode.empty()) {
    o.conn.set("sslmode", sslmode);
  } else {
    sslmode = conninfo_sslmode;
  }
  set_string("sslrootcert", "sslrootcert");
  set_string("sslcert", "sslcert");
  set_string("sslkey", "sslkey");
  o.connect_timeout = config.get_duration("connect_timeout", o.connect_timeout);
  if (o.connect_timeout < 1s) {
    config.find("connect_timeout")->fail("option 'connect_timeout' must be at least 1s");
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
  o.start_timeout = config.get_duration("start_timeout", o.start_timeout);

  o.schema = config.get_string("schema", "webmon");
  static const std::regex kIdent("[a-z_][a-z0-9_]{0,62}");
  if (!std::regex_match(o.schema, kIdent)) {
    config.find("schema")->fail("option 'schema' must be a lower-case identifier "
                                "([a-z_][a-z0-9_]*, at most 63 characters); got '" + o.schema + "'");
  }
  const std::int64_t batch = config.get_int("batch_size", 5000);
  if (batch < 1 || batch > 1'000'000) {
    config.find("batch_size")->fail("option 'batch_size' must be between 1 and 1000000");
  }
  o.batch_size = static_cast<std::size_t>(batch);
  o.flush_interval = config.get_duration("flush_interval", o.flush_interval);
  if (o.flush_interval < 1ms || o.flush_interval > 1h) {
    config.find("flush_interval")->fail("option 'flush_interval' must be between 1ms and 1h");
  }
  const std::int64_t buffer = config.get_int("buffer_rows", 50000);
  if (buffer < batch) {
    config.find("buffer_rows")->fail("option 'buffer_rows' must be at least batch_size (" +
                                     std::to_string(batch) + ")");
  }
  o.buffer_rows = static_cast<std::size_t>(buffer);
  o.partition_interval = config.get_duration("partition_interval", o.partition_interval);
  if (o.partition_interval < 1h || o.partition_interval % 1h != 0ms ||
      o.partition_interval > std::chrono::hours(24 * 366)) {
    config.find("partition_interval")
        ->fail("option 'partition_interval' must be a whole number of hours between 1h and 366d");
  }
  const std::int64_t ahead = config.get_int("partitions_ahead", 3);
  if (ahead < 0 || ahead > 1000) {
    config.find("partitions_ahead")->fail("option 'partitions_ahead' must be between 0 and 1000");
  }
  o.partitions_ahead = static_cast<int>(ahead);
  o.retention = config.get_duration("retention", o.retention);
  if (o.retention != 0ms && o.retention < o.partition_interval) {
    config.find("retention")->fail("option 'retention' must be 0 (keep everything) or at least "
                                   "partition_interval");
  }
  o.max_future = config.get_duration("max_future", o.max_future);
  o.retry_backoff = config.get_duration("retry_backoff", o.retry_backoff);
  o.retry_backoff_max = config.get_duration("retry_backoff_max", o.retry_backoff_max);
  if (o.retry_backoff < 1ms) {
    config.find("retry_backoff")->fail("option 'retry_backoff' must be at least 1ms");
  }
  if (o.retry_backoff_max < o.retry_backoff) {
    config.find("retry_backoff_max")
        ->fail("option 'retry_backoff_max' must be at least retry_backoff");
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
  o.target = (host != nullptr ? *host : opt(config, "conninfo") != nullptr ? "(conninfo)" : "(default host)");
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
      partitions_(options_.schema, options_.partition_interval),
      c_inserted_(&ctx.counter("rows_inserted")),
      c_duplicate_(&ctx.counter("rows_duplicate")),
      c_rejected_(&ctx.counter("rows_rejected")),
      c_transactions_(&ctx.counter("transactions")),
      c_retries_(&ctx.counter("retries")),
      c_reconnects_(&ctx.counter("reconnects")),
      c_split_(&ctx.counter("batches_split")),
      c_partitions_created_(&ctx.counter("partitions_created")),
      c_partitions_dropped_(&ctx.counter("partitions_dropped")) {
  schema_sql_ = quote_ident(options_.schema);
  const std::string& cols = http_check_column_list();
  copy_sql_ = "COPY " + schema_sql_ + ".http_check (" + cols + ") FROM STDIN (FORMAT binary)";
  stage_copy_sql_ = "COPY pg_temp.webmon_stage (" + cols + ") FROM STDIN (FORMAT binary)";
  stage_insert_sql_ = "INSERT INTO " + schema_sql_ + ".http_check (" + cols + ") SELECT " + cols +
                      " FROM pg_temp.webmon_stage ON CONFLICT DO NOTHING";
  reject_sql_ = "INSERT INTO " + schema_sql_ +
                ".rejected (kind, id, \"time\", reason, raw) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING";
}

PostgresSink::~PostgresSink() {
  {
    std::lock_guard lock(mu_);
    abort_ = true;
  }
  cv_work_.notify_all();
  cv_space_.notify_all();
  {
    std::lock_guard lock(conn_mu_);
    if (conn_) {
      conn_->cancel();
    }
  }
  if (writer_.joinable()) {
    writer_.join();
  }
  // Unresolved Acks (queue_, inflight_acks_) resolve as retryable when destroyed.
}

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
  auto delay = options_.retry_backoff;
  while (true) {
    try {
      ensure_connected();
      break;
    } catch (const PgError& e) {
      reset_connection();
      const std::string& st = e.sqlstate();
      // Mistakes in the settings will not fix themselves: fail at once, naming the options.
      const std::string hint = settings_hint(e.what());
      const bool retry = hint.empty() && e.kind() == FailureKind::transient &&
                         (st.empty() || st.starts_with("08") || st.starts_with("57P") ||
                          st.starts_with("53"));
      if (!retry || Clock::now() + delay >= deadline) {
        return sdk::Status::error("cannot use PostgreSQL at " + options_.target + ": " + e.what() +
                                  hint);
      }
      ctx().warn("PostgreSQL at " + options_.target + " not available yet, retrying: " + e.what());
      if (ctx().wait_for_stop(delay)) {
        return sdk::Status::error("stopped while waiting for PostgreSQL at " + options_.target);
      }
      delay = std::min(delay * 2, options_.retry_backoff_max);
    }
  }
  ctx().info("connected to PostgreSQL at " + options_.target + ", schema " + options_.schema);
  writer_ = std::thread([this] { run_writer(); });
  return sdk::Status::ok();
}

sdk::Status PostgresSink::on_write(const sdk::Batch& batch, sdk::Ack ack) {
  if (batch.records.empty()) {
    ack.resolve(sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }
  const std::size_t n = batch.records.size();
  std::unique_lock lock(mu_);
  while (queued_rows_ > 0 && queued_rows_ + n > options_.buffer_rows && !abort_ &&
         !ctx().stop_requested()) {
    cv_space_.wait_for(lock, 100ms);
  }
  if (abort_ || !writer_.joinable()) {
    return sdk::Status::error("postgres_sink is not running; batch of " + std::to_string(n) +
                              " records not stored");
  }
  queued_rows_ += n;
  queue_.push_back(Pending{&batch.records, std::move(ack), Clock::now()});
  lock.unlock();
  cv_work_.notify_one();
  return sdk::Status::ok();
}

sdk::Status PostgresSink::on_flush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<sdk::Ack> unresolved;
  std::size_t lost_rows = 0;
  std::string last_error;
  {
    std::unique_lock lock(mu_);
    flushing_ = true;
    cv_work_.notify_all();
    const bool idle = !writer_.joinable() || cv_idle_.wait_until(lock, deadline, [&] {
      return queue_.empty() && inflight_acks_.empty();
    });
    if (!idle) {
      abort_ = true;
      lost_rows = queued_rows_;
      for (auto& p : queue_) {
        unresolved.push_back(std::move(p.ack));
      }
      queue_.clear();
      queued_rows_ = 0;
      for (auto& a : inflight_acks_) {
        unresolved.push_back(std::move(a));
      }
      inflight_acks_.clear();
      last_error = last_error_;
    }
    closing_ = true;
  }
  cv_work_.notify_all();
  cv_space_.notify_all();
  if (!unresolved.empty()) {
    std::lock_guard lock(conn_mu_);
    if (conn_) {
      conn_->cancel();
    }
  }
  for (auto& a : unresolved) {
    a.resolve(sdk::AckStatus::retryable);
  }
  if (writer_.joinable()) {
    writer_.join();
  }
  ctx().info(summary());
  if (!unresolved.empty()) {
    return sdk::Status::error(std::to_string(unresolved.size()) + " batches (" +
                              (lost_rows > 0 ? "at least " + std::to_string(lost_rows) + " rows"
                                             : std::string("in a transaction")) +
                              ") not stored within " + std::to_string(timeout.count()) +
                              " ms; resolved as retryable" +
                              (last_error.empty() ? "" : "; last error: " + last_error));
  }
  return sdk::Status::ok();
}

std::string PostgresSink::summary() const {
  return "stored " + std::to_string(rows_stored_) + " rows (" + std::to_string(rows_duplicate_) +
         " duplicates skipped, " + std::to_string(rows_rejected_) + " rejected) in " +
         std::to_string(commit_ms_.size()) + " transactions; commit ms p50 " +
         fixed(percentile(commit_ms_, 0.5)) + " p99 " + fixed(percentile(commit_ms_, 0.99)) +
         " max " + fixed(percentile(commit_ms_, 1.0)) + "; oldest-row wait ms p50 " +
         fixed(percentile(age_ms_, 0.5)) + " p99 " + fixed(percentile(age_ms_, 0.99)) + " max " +
         fixed(percentile(age_ms_, 1.0));
}

void PostgresSink::run_writer() {
  std::vector<const std::vector<sdk::Record>*> chunk;
  std::vector<const sdk::Record*> rows;
  while (true) {
    Clock::time_point oldest{};
    {
      std::unique_lock lock(mu_);
      while (true) {
        if (abort_ || (closing_ && queue_.empty())) {
          return;
        }
        if (!queue_.empty()) {
          const auto due = queue_.front().enqueued + options_.flush_interval;
          if (queued_rows_ >= options_.batch_size || flushing_ || Clock::now() >= due) {
            break;
          }
          cv_work_.wait_until(lock, std::min(due, next_maintenance_ + 1s));
        } else {
          cv_work_.wait_until(lock, std::max(next_maintenance_, Clock::now() + 10ms));
        }
        if (queue_.empty() && Clock::now() >= next_maintenance_) {
          break;
        }
      }
      std::size_t taken = 0;
      while (!queue_.empty() && (taken == 0 || taken + queue_.front().records->size() <=
                                                   options_.batch_size)) {
        Pending& p = queue_.front();
        if (taken == 0) {
          oldest = p.enqueued;
        }
        taken += p.records->size();
        chunk.push_back(p.records);
        inflight_acks_.push_back(std::move(p.ack));
        queue_.pop_front();
      }
      queued_rows_ -= taken;
    }
    cv_space_.notify_all();
    if (!chunk.empty()) {
      rows.clear();
      for (const auto& c : chunk) {
        for (const auto& r : *c) {
          rows.push_back(&r);
        }
      }
      if (!deliver(rows)) {
        return;  // aborted: flush() resolved the Acks
      }
      if (age_ms_.size() < kMaxLatencySamples) {
        age_ms_.push_back(ms_since(oldest));
      }
      std::vector<sdk::Ack> done;
      {
        std::lock_guard lock(mu_);
        done.swap(inflight_acks_);
      }
      for (auto& a : done) {
        a.resolve(sdk::AckStatus::delivered);
      }
      chunk.clear();
      {
        std::lock_guard lock(mu_);
        if (queue_.empty() && inflight_acks_.empty()) {
          cv_idle_.notify_all();
        }
      }
    }
    if (Clock::now() >= next_maintenance_) {
      try {
        ensure_connected();
        maintenance();
      } catch (const std::exception& e) {
        reset_connection();
        next_maintenance_ = Clock::now() + 30s;
        ctx().warn(std::string("maintenance failed, retrying in 30 s: ") + e.what());
      }
    }
  }
}

bool PostgresSink::deliver(const std::vector<const sdk::Record*>& rows) {
  auto delay = options_.retry_backoff;
  bool setup_retried = false;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (abort_) {
        return false;
      }
    }
    try {
      ensure_connected();
      write_rows(rows);
      note_success();
      return true;
    } catch (const PgError& e) {
      c_retries_->add();
      if (e.kind() == FailureKind::setup) {
        partitions_.clear();
        if (!setup_retried) {
          // The schema or a partition vanished (or was never made): set up again, at once.
          setup_retried = true;
          reset_connection();
          continue;
        }
      }
      if (!conn_ || !conn_->ok()) {
        reset_connection();
      }
      note_failure(e.what());
    } catch (const std::exception& e) {
      c_retries_->add();
      reset_connection();
      note_failure(std::string("unexpected error: ") + e.what());
    }
    if (!backoff_sleep(delay)) {
      return false;
    }
    delay = std::min(delay * 2, options_.retry_backoff_max);
  }
}

bool PostgresSink::backoff_sleep(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  return !cv_work_.wait_for(lock, delay, [&] { return abort_; });
}

void PostgresSink::note_failure(const std::string& message) {
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    last_error_ = message;
  }
  if (failures_++ == 0) {
    failing_since_ = now;
    last_failure_log_ = now;
    ctx().warn("writing to PostgreSQL at " + options_.target + " failed, retrying with backoff: " +
               message);
  } else if (now - last_failure_log_ >= kFailureLogEvery) {
    last_failure_log_ = now;
    ctx().warn("still failing after " + std::to_string(failures_) + " attempts in " +
               fixed(ms_since(failing_since_) / 1000) + " s: " + message);
  }
}

void PostgresSink::note_success() {
  if (failures_ > 0) {
    ctx().info("PostgreSQL writes recovered after " + std::to_string(failures_) +
               " failed attempts in " + fixed(ms_since(failing_since_) / 1000) + " s");
    failures_ = 0;
  }
}

void PostgresSink::reset_connection() {
  std::unique_ptr<Connection> old;
  {
    std::lock_guard lock(conn_mu_);
    old.swap(conn_);
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
  conn->exec("CREATE TEMP TABLE IF NOT EXISTS webmon_stage (LIKE " + schema_sql_ +
             ".http_check INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
  partitions_.load(*conn);
  {
    std::lock_guard lock(conn_mu_);
    conn_ = std::move(conn);
  }
  if (connected_once_) {
    c_reconnects_->add();
  }
  connected_once_ = true;
  if (Clock::now() >= next_maintenance_) {
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
}

void PostgresSink::maintenance() {
  const std::int64_t now = sdk::now().micros;
  const int created = partitions_.ensure_ahead(*conn_, now, options_.partitions_ahead);
  c_partitions_created_->add(static_cast<std::uint64_t>(created));
  if (options_.retention.count() > 0) {
    const std::int64_t cutoff = now - options_.retention.count() * 1000;
    const auto dropped = partitions_.drop_older_than(*conn_, cutoff);
    c_partitions_dropped_->add(dropped.size());
    for (const auto& name : dropped) {
      ctx().info("retention " + std::to_string(options_.retention.count() / 1000) +
                 " s: dropped partition " + options_.schema + "." + name);
    }
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

void PostgresSink::write_rows(const std::vector<const sdk::Record*>& rows) {
  const TimeWindow window = time_window();
  std::vector<const sdk::Record*> valid;
  std::vector<Reject> rejects;
  valid.reserve(rows.size());
  for (const sdk::Record* r : rows) {
    if (auto reason = validate(*r, window)) {
      rejects.push_back(Reject{r, std::move(*reason)});
    } else {
      valid.push_back(r);
    }
  }
  for (const sdk::Record* r : valid) {
    if (!partitions_.covers(r->time.micros) && partitions_.ensure(*conn_, r->time.micros)) {
      c_partitions_created_->add();
    }
  }
  commit_isolating(std::move(valid), std::move(rejects));
}

void PostgresSink::commit_isolating(std::vector<const sdk::Record*> valid,
                                    std::vector<Reject> rejects) {
  try {
    commit(valid, rejects);
    return;
  } catch (const PgError& e) {
    if (e.kind() != FailureKind::data) {
      throw;
    }
    ctx().warn("PostgreSQL refused a batch of " + std::to_string(valid.size()) + " rows and " +
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

void PostgresSink::isolate(const std::vector<const sdk::Record*>& rows, std::vector<Reject>& out) {
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
      out.push_back(Reject{rows[0], std::string("refused by PostgreSQL: ") + e.what()});
      return;
    }
  }
  const auto mid = rows.begin() + static_cast<std::ptrdiff_t>(rows.size() / 2);
  isolate(std::vector<const sdk::Record*>(rows.begin(), mid), out);
  isolate(std::vector<const sdk::Record*>(mid, rows.end()), out);
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
    ctx().error("record " + reject.record->id + " could not be stored even in " +
                options_.schema + ".rejected (" + e.what() + "); reason it was rejected: " +
                reject.reason);
  }
}

void PostgresSink::commit(const std::vector<const sdk::Record*>& rows,
                          const std::vector<Reject>& rejects) {
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
    // A replay: rows already stored. Redo through the staging table with ON CONFLICT DO
    // NOTHING, and keep doing so for a while (replays come in runs).
    staging_runs_ = 64;
    commit_once(rows, rejects, true);
  }
}

void PostgresSink::commit_once(const std::vector<const sdk::Record*>& rows,
                               const std::vector<Reject>& rejects, bool staging) {
  Connection& conn = *conn_;
  const auto start = Clock::now();
  std::size_t next = 0;
  auto fill = [&](std::string& out) {
    constexpr std::size_t kPart = 256 * 1024;
    if (next == 0) {
      append_copy_header(out);
    }
    while (next < rows.size() && out.size() < kPart) {
      append_copy_row(*rows[next++], out);
    }
    if (next < rows.size()) {
      return true;
    }
    append_copy_trailer(out);
    return false;
  };
  conn.exec("BEGIN");
  std::uint64_t inserted = 0;
  try {
    if (!rows.empty()) {
      if (staging) {
        conn.copy_in(stage_copy_sql_, fill, buf_);
        Result r = conn.exec(stage_insert_sql_);
        inserted = std::strtoull(PQcmdTuples(r.get()), nullptr, 10);
      } else {
        inserted = conn.copy_in(copy_sql_, fill, buf_);
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
      conn.exec_params(reject_sql_, {kind.c_str(), id.c_str(),
                                     time_ok ? time_text.c_str() : nullptr, reason.c_str(),
                                     raw.c_str()});
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
    ctx().warn(std::to_string(rejects.size()) + " records stored in " + options_.schema +
               ".rejected; first: " + rejects.front().reason);
  }
}

}  // namespace webmon::plugins::postgres_sink
