// tcp_check source: connects to host:port on the SDK scheduler's grid, optionally does a TLS
// handshake, sends a payload and matches the reply against a regex. One thread, non-blocking
// sockets and poll(); names resolve on a small resolver pool.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "options.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::tcp_check {

/// One target with every option resolved (target value, else plugin-level, else default).
struct Target {
  std::string name;
  std::string host;
  int port = 0;
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds timeout{};
  int family = 0;  // AF_UNSPEC, AF_INET, AF_INET6
  std::string send;
  std::string expect;  // empty: no reply is read
  std::size_t max_reply_size = 0;
  bool tls = false;
  bool tls_verify = true;
  std::string ca_file;
  std::string server_name;  // SNI and verified name; empty for an IP address without one
  std::optional<std::chrono::milliseconds> max_response_time;  // unset: no limit
  std::optional<std::chrono::milliseconds> min_cert_validity;  // unset: off
  Labels labels;
};

struct Settings {
  std::vector<Target> targets;    // after sharding
  std::size_t targets_total = 0;  // before sharding
  std::size_t max_concurrency = 500;
  std::size_t batch_size = 500;
  std::chrono::milliseconds flush_interval{100};
  bool once = false;
};

/// Reads and checks the configuration (targets, targets_file, shard, regexes, files).
/// Throws sdk::ConfigError with file:line:column.
Settings parse_settings(const sdk::ConfigNode& config);

class TcpCheckSource final : public sdk::Source {
 public:
  TcpCheckSource(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~TcpCheckSource() override;
  TcpCheckSource(const TcpCheckSource&) = delete;
  TcpCheckSource& operator=(const TcpCheckSource&) = delete;

 protected:
  sdk::Status on_start() override;
  sdk::Status on_run() override;
  void on_stop_requested() override;

 private:
  struct Engine;
  Settings settings_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace webmon::plugins::tcp_check
