// Integration-test support: the local stack's PostgreSQL settings (scripts/stack env), a fresh
// database per test (scripts/stack db), queries for assertions, and sink configurations.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pg.hpp"
#include "webmon/sdk/config.hpp"

namespace webmon::plugins::postgres_sink::testing {

/// DATABASE_* settings of the stack: from the environment, else from $WEBMON_STACK_DIR/env.
struct StackEnv {
  std::string host, port, db, user, password, sslrootcert, stack_dir;
};
const StackEnv& stack_env();

/// Path of scripts/stack.
std::string stack_script();
/// Runs `scripts/stack ARGS...`; returns stdout, throws with stderr on failure.
std::string run_stack(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(120));

/// A fresh database created for one test and dropped afterwards.
class TestDb {
 public:
  explicit TestDb(const std::string& label);
  ~TestDb();
  TestDb(const TestDb&) = delete;
  TestDb& operator=(const TestDb&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Runs a query on a (re)connected session and returns all rows as text ("" for NULL).
  std::vector<std::vector<std::string>> query(const std::string& sql);
  /// The single value of a one-row, one-column query.
  std::string value(const std::string& sql);
  /// Waits (bounded) until `sql` returns `expected`; returns the last value seen.
  std::string wait_for_value(const std::string& sql, const std::string& expected,
                             std::chrono::milliseconds timeout);

  /// The sink's options for this database (verify-full TLS) plus `extra` entries.
  sdk::ConfigNode sink_config(
      const std::vector<std::pair<std::string, std::string>>& extra = {}) const;
  /// The same as YAML lines indented by `indent` spaces (for pipeline files).
  std::string sink_yaml(int indent,
                        const std::vector<std::pair<std::string, std::string>>& extra = {}) const;

 private:
  ConnParams params() const;
  std::string name_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace webmon::plugins::postgres_sink::testing
