// Per-component counters and their Prometheus text exposition.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "webmon/sdk/plugin.hpp"

namespace httplib {
class Server;
}

namespace webmon::agent {

class ComponentMetrics {
 public:
  ComponentMetrics(std::string id, std::string plugin, std::string kind);
  /// The named counter, created on first use; references stay valid.
  sdk::Counter& counter(std::string_view name);
  sdk::Counter& received() noexcept { return *received_; }
  sdk::Counter& sent() noexcept { return *sent_; }
  sdk::Counter& errors() noexcept { return *errors_; }
  sdk::Counter& dropped() noexcept { return *dropped_; }
  const std::string& id() const noexcept { return id_; }
  const std::string& plugin() const noexcept { return plugin_; }
  const std::string& kind() const noexcept { return kind_; }
  /// (name, value) pairs, standard counters first.
  std::vector<std::pair<std::string, std::uint64_t>> snapshot() const;
  /// Gauges read when the endpoint is scraped (a sink's buffer size and age).
  using GaugeSource = std::function<std::vector<std::pair<std::string, double>>()>;
  void set_gauges(GaugeSource source);
  std::vector<std::pair<std::string, double>> gauges() const;

 private:
  std::string id_;
  std::string plugin_;
  std::string kind_;
  mutable std::mutex mu_;
  std::deque<sdk::Counter> storage_;
  std::vector<std::pair<std::string, sdk::Counter*>> index_;
  sdk::Counter* received_;
  sdk::Counter* sent_;
  sdk::Counter* errors_;
  sdk::Counter* dropped_;
  GaugeSource gauges_;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  ComponentMetrics& add(const std::string& id, const std::string& plugin, const std::string& kind);
  /// Prometheus text format 0.0.4.
  std::string render() const;
  /// One line per component: "checks (http_check): received=0 sent=10 errors=0 dropped=0".
  std::vector<std::string> summary() const;

  /// Serves GET /metrics on host:port in a background thread. Throws std::runtime_error when
  /// the address is malformed or cannot be bound.
  void serve(const std::string& listen);
  void stop_serving();
  /// The bound port (useful with port 0), or -1.
  int port() const noexcept { return port_; }

 private:
  std::deque<ComponentMetrics> components_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace webmon::agent
