// Integration-test support (see test_db.hpp).
#include "test_db.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

#include "pipeline_runner.hpp"

namespace webmon::plugins::postgres_sink::testing {
namespace {

std::string getenv_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// Parses "export NAME=value" lines as written by `scripts/stack env` (shell-escaped values).
std::string unescape(const std::string& v) {
  std::string out;
  std::string s = v;
  if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') {
    return s.substr(1, s.size() - 2);
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
    }
    out += s[i];
  }
  return out;
}

}  // namespace

const StackEnv& stack_env() {
  static const StackEnv env = [] {
    StackEnv e;
    e.stack_dir = getenv_or("WEBMON_STACK_DIR", "/tmp/webmon-stack");
    std::map<std::string, std::string> file;
    std::ifstream in(e.stack_dir + "/env");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("export ", 0) == 0) {
        line.erase(0, 7);
      }
      const auto eq = line.find('=');
      if (eq != std::string::npos && !line.empty() && line[0] != '#') {
        file[line.substr(0, eq)] = unescape(line.substr(eq + 1));
      }
    }
    auto get = [&](const char* name) { return getenv_or(name, file[name]); };
    e.host = get("DATABASE_HOST");
    e.port = get("DATABASE_PORT");
    e.db = get("DATABASE_DB");
    e.user = get("DATABASE_USER");
    e.password = get("DATABASE_PASSWD");
    e.sslrootcert = get("DATABASE_SSLROOTCERT");
    return e;
  }();
  if (env.host.empty() || env.port.empty() || env.password.empty()) {
    throw std::runtime_error(
        "no PostgreSQL settings: run 'scripts/stack up' (DATABASE_* "
        "variables or " +
        env.stack_dir + "/env)");
  }
  return env;
}

std::string stack_script() { return std::string(WEBMON_SOURCE_DIR) + "/scripts/stack"; }

std::string run_stack(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{"/bin/bash", stack_script()};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = webmon::testing::run_process(argv, timeout);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : args) {
      cmd += " " + a;
    }
    throw std::runtime_error("scripts/stack" + cmd + " failed (" + std::to_string(r.exit_code) +
                             "): " + r.err);
  }
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

TestDb::TestDb(const std::string& label) {
  stack_env();
  name_ = run_stack({"db", label});
}

TestDb::~TestDb() {
  conn_.reset();
  try {
    ConnParams p = params();
    p.set("dbname", stack_env().db);
    Connection admin(p);
    admin.exec("DROP DATABASE IF EXISTS \"" + name_ + "\" WITH (FORCE)");
  } catch (const std::exception&) {
    // best effort: a leftover database is harmless
  }
}

ConnParams TestDb::params() const {
  const StackEnv& e = stack_env();
  ConnParams p;
  p.set("host", e.host);
  p.set("port", e.port);
  p.set("dbname", name_);
  p.set("user", e.user);
  p.set("password", e.password);
  p.set("sslmode", "verify-full");
  p.set("sslrootcert", e.sslrootcert);
  p.set("connect_timeout", "5");
  return p;
}

std::vector<std::vector<std::string>> TestDb::query(const std::string& sql) {
  for (int attempt = 0;; ++attempt) {
    try {
      if (!conn_ || !conn_->ok()) {
        conn_.reset();
        conn_ = std::make_unique<Connection>(params());
        conn_->exec("SET TIME ZONE 'UTC'");
      }
      Result r = conn_->exec(sql);
      std::vector<std::vector<std::string>> rows;
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        std::vector<std::string> row;
        for (int j = 0; j < PQnfields(r.get()); ++j) {
          row.emplace_back(PQgetisnull(r.get(), i, j) != 0 ? "\\N" : PQgetvalue(r.get(), i, j));
        }
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (const PgError& e) {
      // After a server restart the old session is gone: reconnect a few times.
      if (attempt >= 20 || e.kind() != FailureKind::transient) {
        throw;
      }
      conn_.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

std::string TestDb::value(const std::string& sql) {
  const auto rows = query(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("expected one value from: " + sql);
  }
  return rows[0][0];
}

std::string TestDb::wait_for_value(const std::string& sql, const std::string& expected,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string v;
  while (true) {
    try {
      v = value(sql);
    } catch (const std::exception& e) {
      v = std::string("error: ") + e.what();
    }
    if (v == expected || std::chrono::steady_clock::now() >= deadline) {
      return v;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

sdk::ConfigNode TestDb::sink_config(
    const std::vector<std::pair<std::string, std::string>>& extra) const {
  const StackEnv& e = stack_env();
  sdk::ConfigNode m = sdk::ConfigNode::make_map();
  m.set("host", sdk::ConfigNode(e.host));
  m.set("port", sdk::ConfigNode(e.port));
  m.set("database", sdk::ConfigNode(name_));
  m.set("user", sdk::ConfigNode(e.user));
  m.set("password", sdk::ConfigNode(e.password));
  m.set("sslmode", sdk::ConfigNode("verify-full"));
  m.set("sslrootcert", sdk::ConfigNode(e.sslrootcert));
  for (const auto& [k, v] : extra) {
    m.set(k, sdk::ConfigNode(v));
  }
  return m;
}

std::string TestDb::sink_yaml(int indent,
                              const std::vector<std::pair<std::string, std::string>>& extra) const {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  std::string y;
  const sdk::ConfigNode config = sink_config(extra);
  for (const auto& [k, v] : config.entries()) {
    y += pad + k + ": \"" + v.as_string() + "\"\n";
  }
  return y;
}

}  // namespace webmon::plugins::postgres_sink::testing
