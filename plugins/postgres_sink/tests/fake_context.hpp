// A host Context for driving PostgresSink directly in tests: records log lines, owns counters,
// and collects Ack resolutions.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::postgres_sink::testing {

class FakeContext final : public sdk::Context {
 public:
  explicit FakeContext(std::string id = "pg") : id_(std::move(id)) {}
  const std::string& component_id() const noexcept override { return id_; }
  const std::string& agent_name() const noexcept override { return agent_; }
  void log(sdk::LogLevel level, std::string_view message) noexcept override {
    std::lock_guard lock(mu_);
    logs_.push_back(std::string(sdk::LogLevel::warn <= level ? "W " : "I ") + std::string(message));
  }
  bool log_enabled(sdk::LogLevel /*level*/) const noexcept override { return true; }
  sdk::Counter& counter(std::string_view name) noexcept override {
    std::lock_guard lock(mu_);
    auto& c = counters_[std::string(name)];
    if (!c) {
      c = std::make_unique<sdk::Counter>();
    }
    return *c;
  }
  bool stop_requested() const noexcept override { return stop_.load(); }
  bool wait_for_stop(std::chrono::milliseconds timeout) noexcept override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stop_.load(); });
  }
  void request_stop() {
    stop_ = true;
    cv_.notify_all();
  }
  std::uint64_t get(const std::string& name) { return counter(name).get(); }
  std::vector<std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }
  std::string all_logs() {
    std::string s;
    for (const auto& l : logs()) {
      s += l + "\n";
    }
    return s;
  }

 private:
  std::string id_;
  std::string agent_ = "test-agent";
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::vector<std::string> logs_;
  std::map<std::string, std::unique_ptr<sdk::Counter>> counters_;
};

/// Collects how Acks were resolved.
class AckLog {
 public:
  class Target final : public sdk::AckTarget {
   public:
    explicit Target(AckLog& log) : log_(log) {}
    void resolve(sdk::AckStatus status) noexcept override {
      AckLog& log = log_;
      delete this;
      log.add(status);
    }

   private:
    ~Target() = default;
    AckLog& log_;
  };

  sdk::Ack make() { return sdk::Ack(new Target(*this)); }
  void add(sdk::AckStatus s) {
    std::lock_guard lock(mu_);
    ++counts_[static_cast<int>(s)];
    cv_.notify_all();
  }
  int count(sdk::AckStatus s) {
    std::lock_guard lock(mu_);
    return counts_[static_cast<int>(s)];
  }
  int total() {
    std::lock_guard lock(mu_);
    return counts_[0] + counts_[1] + counts_[2];
  }
  /// Waits until `n` Acks were resolved (any status), up to `timeout`.
  bool wait_total(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return counts_[0] + counts_[1] + counts_[2] >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int counts_[3] = {0, 0, 0};
};

/// A valid http_check record like the generator's, at `time`.
inline sdk::Record make_check(sdk::Timestamp time, const std::string& target, bool success,
                              double response_ms) {
  sdk::Record r;
  r.kind = "http_check";
  r.time = time;
  r.id = sdk::make_uuid_v7(time);
  r.add("target", target);
  r.add("url", "https://" + target + ".example/");
  r.add("method", std::string("GET"));
  r.add("agent", std::string("test-agent"));
  r.add("success", success);
  r.add("status_code", std::int64_t{success ? 200 : 503});
  r.add("error", success ? sdk::Value() : sdk::Value(std::string("http_status")));
  r.add("error_message", success ? sdk::Value() : sdk::Value(std::string("status 503")));
  r.add("response_time_ms", response_ms);
  r.add("dns_ms", 1.25);
  r.add("connect_ms", 2.5);
  r.add("tls_ms", sdk::Value());
  r.add("ttfb_ms", 10.0);
  r.add("transfer_ms", 0.125);
  r.add("body_bytes", std::int64_t{1256});
  r.add("http_version", std::string("2"));
  r.add("remote_ip", std::string("192.0.2.7"));
  r.add("redirects", std::int64_t{1});
  r.add("regex_matched", true);
  r.add("tls_cert_not_after", sdk::Timestamp{time.micros + 86'400'000'000LL * 30});
  r.add("tls_cert_issuer", std::string("CN=Test CA"));
  r.add("lateness_ms", 0.5);
  r.labels["region"] = "eu-west";
  return r;
}

}  // namespace webmon::plugins::postgres_sink::testing
