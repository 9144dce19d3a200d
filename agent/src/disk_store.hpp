// A sink's disk buffer as SinkDelivery uses it: the delivery library's DiskBuffer plus the
// logging and counters of its recovery report.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics.hpp"
#include "pipeline.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::agent {

/// What a batch taken from the disk buffer must acknowledge.
struct DiskChunk {
  std::uint64_t segment = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t records = 0;
};

class DiskStore {
 public:
  using Clock = std::chrono::steady_clock;
  struct Pushed {
    std::size_t appended = 0;
    std::size_t dropped = 0;
    bool full = false;
    bool refused = false;
  };

  /// Opens (or creates) the log in spec.path and logs what a previous run left. Throws
  /// std::runtime_error naming the path when it cannot.
  DiskStore(const DeliverySpec& spec, sdk::Context& ctx, ComponentMetrics& metrics);
  ~DiskStore();
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  Pushed push(const std::vector<sdk::Record>& records);
  bool wait_writable(Clock::time_point deadline, const std::atomic<bool>& stop);
  /// Reads the next unread records (delivery thread only) into `out`, reusing the records it
  /// holds; false when none are unread.
  bool take(std::size_t max_records, std::vector<sdk::Record>& out, DiskChunk& chunk);
  void acknowledge(const DiskChunk& chunk);
  /// Records in the log not yet acknowledged (read or not).
  [[nodiscard]] std::size_t unacknowledged() const;
  /// Wakes waiters (shutdown).
  void close_waiters();
  [[nodiscard]] std::vector<std::pair<std::string, double>> gauges() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace webmon::agent
