// The status page as a service: the model behind a lock, the HTTP server (cpp-httplib) that
// renders it on request, and the snapshot file written periodically and at stop. No SDK
// types: the plugin wrapper (plugin.cpp), the tests and the benchmark drive it directly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "model.hpp"
#include "pg_history.hpp"
#include "render.hpp"

namespace httplib {
class Server;
}

namespace webmon::plugins::status_page {

struct ListenAddress {
  std::string host;
  int port = 0;
};

/// Parses "HOST:PORT" or "[IPV6]:PORT" (port 0–65535; 0 = any free port). Returns nullopt and
/// sets `error` (without the option name) when malformed.
std::optional<ListenAddress> parse_listen(std::string_view text, std::string& error);

struct ServiceOptions {
  ListenAddress listen{"127.0.0.1", 8080};
  std::string state_file;                ///< "" = no snapshot
  std::optional<HistorySource> history;  ///< rebuild the history from PostgreSQL at start
  std::chrono::milliseconds snapshot_interval{60'000};
  ModelOptions model;
  PageOptions page;
  int http_threads = 2;
};

/// Start-up failure (port in use, bad address); what() names the option.
class StartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ApplyCounts {
  std::size_t applied = 0;
  std::size_t new_targets = 0;
  std::size_t too_many_targets = 0;
};

class StatusService {
 public:
  using Clock = std::function<std::int64_t()>;  ///< now, UTC µs
  using Logger = std::function<void(bool is_error, const std::string& message)>;

  StatusService(ServiceOptions options, Logger log, Clock clock = {});
  ~StatusService();
  StatusService(const StatusService&) = delete;
  StatusService& operator=(const StatusService&) = delete;

  /// Loads the history from PostgreSQL when `history` is set (a failure is logged and the
  /// snapshot used instead), else restores the snapshot (a damaged one is moved aside to
  /// FILE.bad and logged); writes the snapshot
  /// back (an unwritable state_file fails the start), binds the listen address and starts
  /// serving. Throws StartError naming the option.
  void start();
  /// The bound port (after start()).
  [[nodiscard]] int port() const noexcept { return port_; }
  /// "http://HOST:PORT/" (after start()).
  [[nodiscard]] std::string url() const;

  /// Applies checks to the in-memory state; when it returns, the page shows them.
  ApplyCounts apply(const std::vector<Check>& checks);

  [[nodiscard]] std::string html() const;
  [[nodiscard]] std::string json() const;
  [[nodiscard]] std::size_t targets() const;

  /// Writes the snapshot now (when state_file is set). Throws SnapshotError.
  void save_snapshot();
  /// Stops serving and the snapshot thread, then writes a final snapshot (errors logged).
  void stop();

 private:
  [[nodiscard]] std::vector<Group> groups() const;
  void snapshot_loop();

  ServiceOptions options_;
  Logger log_;
  Clock clock_;
  mutable std::shared_mutex mutex_;
  StatusModel model_;
  std::atomic<std::uint64_t> version_{0};
  std::atomic<std::uint64_t> saved_version_{0};
  std::mutex save_mutex_;

  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
  int port_ = 0;

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread snapshot_thread_;
  bool started_ = false;
};

}  // namespace webmon::plugins::status_page
