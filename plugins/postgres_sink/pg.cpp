// libpq wrappers and failure classification (see pg.hpp).
#include "pg.hpp"

#include <cstdlib>
#include <cstring>

namespace webmon::plugins::postgres_sink {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) {
    s.pop_back();
  }
  // libpq prefixes server errors with "ERROR:  "; keep the text after it.
  for (const char* prefix : {"ERROR:  ", "FATAL:  "}) {
    if (s.rfind(prefix, 0) == 0) {
      s.erase(0, std::strlen(prefix));
    }
  }
  // Multi-line messages (DETAIL/HINT/CONTEXT lines) become one line.
  for (char& c : s) {
    if (c == '\n') {
      c = ' ';
    }
  }
  return s;
}

}  // namespace

FailureKind classify_sqlstate(std::string_view s) noexcept {
  if (s == "23505") {
    return FailureKind::duplicate;
  }
  if (s == "23514" || s == "42P01" || s == "3F000" || s == "42703") {
    // no partition for a row, undefined table, schema gone, column missing
    return FailureKind::setup;
  }
  if (s.size() == 5 && (s.starts_with("22") || s.starts_with("23") || s.starts_with("54"))) {
    return FailureKind::data;
  }
  // Everything else (connection exceptions 08, resources 53, operator intervention 57,
  // serialization 40, lock 55P03, system 58, permissions 42501, unknown) is retried: it does
  // not depend on the rows, so rejecting the rows would be wrong.
  return FailureKind::transient;
}

bool connect_error_is_transient(std::string_view m) noexcept {
  for (const char* needle :
       {"Connection refused", "starting up", "shutting down", "too many clients",
        "too many connections", "remaining connection slots", "timeout expired", "recovery mode",
        "No route to host", "Network is unreachable", "server closed the connection",
        "Connection reset", "could not receive data", "could not send data",
        "Resource temporarily unavailable", "not yet accepting connections", "in recovery"}) {
    if (m.find(needle) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

void ConnParams::set(std::string key, std::string value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const std::string* ConnParams::find(std::string_view key) const noexcept {
  for (const auto& [k, v] : entries) {
    if (k == key) {
      return &v;
    }
  }
  return nullptr;
}

Connection::Connection(const ConnParams& params) {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : params.entries) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
  if (conn_ == nullptr) {
    throw PgError("out of memory creating a libpq connection", "", FailureKind::transient);
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = trim(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    const bool transient = connect_error_is_transient(msg);
    throw PgError(msg, "", transient ? FailureKind::transient : FailureKind::data);
  }
  cancel_ = PQgetCancel(conn_);
}

Connection::~Connection() {
  {
    std::lock_guard lock(cancel_mu_);
    if (cancel_ != nullptr) {
      PQfreeCancel(cancel_);
      cancel_ = nullptr;
    }
  }
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

void Connection::cancel() noexcept {
  std::lock_guard lock(cancel_mu_);
  if (cancel_ != nullptr) {
    char buf[256];
    (void)PQcancel(cancel_, buf, sizeof buf);
  }
}

void Connection::fail(const PGresult* r, std::string_view what) {
  std::string sqlstate;
  std::string msg;
  if (r != nullptr) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (s != nullptr) {
      sqlstate = s;
    }
    msg = trim(PQresultErrorMessage(r));
  }
  if (msg.empty()) {
    msg = trim(PQerrorMessage(conn_));
  }
  if (msg.empty()) {
    msg = "unknown error";
  }
  FailureKind kind = classify_sqlstate(sqlstate);
  if (sqlstate == "23514" && r != nullptr &&
      PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) != nullptr) {
    kind = FailureKind::data;  // a CHECK constraint, not a missing partition
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    kind = FailureKind::transient;
  }
  throw PgError(
      std::string(what) + ": " + msg + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
      sqlstate, kind);
}

Result Connection::check(PGresult* raw_result, std::string_view what) {
  Result r(raw_result);
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    // Drain anything left so the connection stays usable.
    while (PGresult* extra = PQgetResult(conn_)) {
      PQclear(extra);
    }
    fail(r.get(), what);
  }
  return r;
}

Result Connection::exec(const std::string& sql) {
  return check(PQexec(conn_, sql.c_str()), "query failed");
}

Result Connection::exec_params(const std::string& sql, const std::vector<const char*>& params) {
  return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                            params.data(), nullptr, nullptr, 0),
               "query failed");
}

std::uint64_t Connection::copy_in(const std::string& copy_sql,
                                  const std::function<bool(std::string&)>& fill,
                                  std::string& buffer) {
  Result start(PQexec(conn_, copy_sql.c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    check(start.release(), "COPY failed");
    throw PgError("COPY failed: server did not enter COPY mode", "", FailureKind::transient);
  }
  start.reset();
  bool sent_ok = true;
  bool more = true;
  while (more && sent_ok) {
    buffer.clear();
    more = fill(buffer);
    if (!buffer.empty()) {
      sent_ok = PQputCopyData(conn_, buffer.data(), static_cast<int>(buffer.size())) == 1;
    }
  }
  // A failed end is reported by the result below (PQgetResult), which check() turns into an
  // error.
  (void)PQputCopyEnd(conn_, sent_ok ? nullptr : "client failed to send data");
  Result r(PQgetResult(conn_));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    check(r.release(), "COPY failed");
    throw PgError("COPY failed: " + trim(PQerrorMessage(conn_)), "", FailureKind::transient);
  }
  const char* tuples = PQcmdTuples(r.get());
  const std::uint64_t rows =
      tuples != nullptr && *tuples != '\0' ? std::strtoull(tuples, nullptr, 10) : 0;
  while (PGresult* extra = PQgetResult(conn_)) {
    PQclear(extra);
  }
  return rows;
}

}  // namespace webmon::plugins::postgres_sink
