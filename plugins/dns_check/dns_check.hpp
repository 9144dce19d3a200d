// dns_check source: sends one DNS query per check (UDP, messages built and parsed by
// dns_message.hpp) to the system resolver or a given server, on the SDK scheduler's grid, and
// checks rcode and answers. One thread, non-blocking sockets and poll().
#pragma once

#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns_message.hpp"
#include "options.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::dns_check {

/// One target with every option resolved (target value, else plugin-level, else default).
struct Target {
  std::string name;
  std::string query;
  RecordType type = RecordType::a;
  sockaddr_storage server{};
  socklen_t server_len = 0;
  std::string server_text;  // "127.0.0.1:53", "[::1]:5353"
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds timeout{};
  std::vector<std::string> expect;
  std::string expect_regex;
  int expect_rcode = 0;
  std::size_t min_answers = 1;
  bool recursion = true;
  std::optional<std::chrono::milliseconds> max_response_time;  // unset: no limit
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

/// Parses "IP", "IP:port", "[IPv6]:port" or a bare IPv6 address (port 53 by default).
/// Returns false when `text` is not of that form.
bool parse_server(const std::string& text, sockaddr_storage& out, socklen_t& len,
                  std::string& canonical);

/// The first `nameserver` of a resolv.conf file, or "" when it has none.
std::string system_nameserver(const std::string& resolv_conf = "/etc/resolv.conf");

/// Reads and checks the configuration. Throws sdk::ConfigError with file:line:column.
Settings parse_settings(const sdk::ConfigNode& config);

class DnsCheckSource final : public sdk::Source {
 public:
  DnsCheckSource(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~DnsCheckSource() override;
  DnsCheckSource(const DnsCheckSource&) = delete;
  DnsCheckSource& operator=(const DnsCheckSource&) = delete;

 protected:
  sdk::Status on_start() override;
  sdk::Status on_run() override;
  void on_stop_requested() override;

 private:
  struct Engine;
  Settings settings_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace webmon::plugins::dns_check
