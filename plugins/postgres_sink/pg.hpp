// Thin RAII layer over libpq for postgres_sink: connections, results, COPY, and the
// classification of failures into "retry later" and "this data can never be stored".
//
// Everything here throws PgError on failure; nothing here logs (messages never contain the
// password: libpq does not echo it and the conninfo string is never put into a message).
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace webmon::plugins::postgres_sink {

/// What to do about a failure.
enum class FailureKind {
  transient,  ///< connection lost, server restarting, too many connections, lock timeout...:
              ///< reconnect (if needed), back off and retry the same rows
  duplicate,  ///< unique violation on the fast path: redo the rows with ON CONFLICT DO NOTHING
  setup,      ///< a table or partition is missing: redo the schema/partition setup, retry
  data,       ///< the rows themselves are unacceptable (class 22, 23, 54): split them
};

class PgError : public std::runtime_error {
 public:
  PgError(const std::string& message, std::string sqlstate, FailureKind kind)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), kind_(kind) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  [[nodiscard]] FailureKind kind() const noexcept { return kind_; }

 private:
  std::string sqlstate_;
  FailureKind kind_;
};

/// Maps a SQLSTATE ("" when the connection failed without one) to what to do about it.
FailureKind classify_sqlstate(std::string_view sqlstate) noexcept;

/// Whether a failed connection attempt may succeed later (server down or starting, too many
/// clients, timeouts) as opposed to a refusal that needs a human (TLS, authentication).
bool connect_error_is_transient(std::string_view message) noexcept;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

/// Connection parameters as libpq keyword/value pairs (a "dbname" entry may hold a whole
/// conninfo string or URI: expand_dbname is on).
struct ConnParams {
  std::vector<std::pair<std::string, std::string>> entries;
  void set(std::string key, std::string value);
  [[nodiscard]] const std::string* find(std::string_view key) const noexcept;
};

class Connection {
 public:
  /// Connects (blocking, bounded by connect_timeout in the params). Throws PgError with the
  /// libpq message on failure, kind transient or data (data = needs a human).
  explicit Connection(const ConnParams& params);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  [[nodiscard]] bool ok() const noexcept { return PQstatus(conn_) == CONNECTION_OK; }
  [[nodiscard]] PGconn* raw() const noexcept { return conn_; }

  /// Runs one or more statements without parameters; returns the last result.
  Result exec(const std::string& sql);
  /// Runs one statement with text parameters (nullptr = NULL).
  Result exec_params(const std::string& sql, const std::vector<const char*>& params);
  /// COPY ... FROM STDIN, streaming: `fill` appends the next part of the data to the (cleared)
  /// buffer and returns false after the last part; each part is sent while the next is made,
  /// so the server works while the client encodes. Returns the number of rows copied.
  std::uint64_t copy_in(const std::string& copy_sql, const std::function<bool(std::string&)>& fill,
                        std::string& buffer);

  /// Asks the server to cancel the running statement. Thread-safe.
  void cancel() noexcept;
  /// Whether the server reported SSL in use for this connection.
  [[nodiscard]] bool ssl_in_use() const noexcept { return PQsslInUse(conn_) == 1; }

 private:
  [[noreturn]] void fail(const PGresult* r, std::string_view what);
  Result check(PGresult* r, std::string_view what);

  PGconn* conn_ = nullptr;
  std::mutex cancel_mu_;
  PGcancel* cancel_ = nullptr;
};

/// Quotes an identifier that is already known to be [a-z_][a-z0-9_]*.
inline std::string quote_ident(std::string_view name) { return "\"" + std::string(name) + "\""; }

}  // namespace webmon::plugins::postgres_sink
