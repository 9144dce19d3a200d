// Delivery owned by the host: per sink, a buffer (memory, or a disk log that survives
// restarts), batching (size and linger), how many batches are in flight, retry with backoff of
// batches the sink resolves `retryable`, and rate-limited logging of all of it.
//
// Threads: push() is called by the threads that emit (sources, and transforms running on
// them) and never blocks; run() is the sink's delivery thread, the only caller of
// Sink::write(); acknowledgements (AckTarget::resolve) arrive on any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "pipeline.hpp"
#include "record_pool.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::agent {

/// Receives the combined acknowledgement of a batch a source emitted.
class AckReceiver {
 public:
  virtual void acknowledged(std::uint64_t token, sdk::AckStatus status) noexcept = 0;

 protected:
  ~AckReceiver() = default;
};

/// One emitted batch's acknowledgement: every branch (sink share, or piece of one) holds a
/// share; the worst status wins; the last share to resolve tells the source.
class AckState {
 public:
  AckState(AckReceiver& source, std::uint64_t token, std::atomic<std::int64_t>& in_flight)
      : source_(source), token_(token), in_flight_(in_flight) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  AckState(const AckState&) = delete;
  AckState& operator=(const AckState&) = delete;
  void add_share() noexcept { pending_.fetch_add(1, std::memory_order_relaxed); }
  void resolve(sdk::AckStatus status) noexcept;

 private:
  AckReceiver& source_;
  std::uint64_t token_;
  std::atomic<std::int64_t>& in_flight_;
  std::atomic<int> pending_{1};
  std::atomic<std::uint8_t> worst_{0};
};

/// The delay before retry number `attempt` (1 = first retry): initial × 2^(attempt-1), capped.
std::chrono::milliseconds retry_backoff(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, int attempt) noexcept;

class DiskStore;

/// A batch handed to the sink and not yet resolved (or waiting to be written again).
struct InFlight;

class SinkDelivery {
 public:
  using Clock = std::chrono::steady_clock;

  SinkDelivery(DeliverySpec spec, sdk::Sink& sink, ComponentMetrics& metrics, sdk::Context& ctx);
  /// Where finished batches' records go (memory buffer; nullptr: freed here). Set before start.
  void set_record_pool(RecordPool* pool) noexcept { pool_ = pool; }
  ~SinkDelivery();
  SinkDelivery(const SinkDelivery&) = delete;
  SinkDelivery& operator=(const SinkDelivery&) = delete;

  /// Opens a disk buffer (finding what a previous run left). Throws std::runtime_error.
  void open();

  /// Takes records into the buffer without blocking (see sdk::EmitResult). With a disk
  /// buffer the share resolves as delivered once the records are written to the log.
  sdk::EmitResult push(std::vector<sdk::Record>&& records, const std::shared_ptr<AckState>& share);
  /// Whether push() would refuse a batch now (a `block` memory buffer at twice its limit).
  [[nodiscard]] bool would_refuse() const;
  /// Blocks until the buffer is below its limit, `deadline`, or stop.
  bool wait_writable(Clock::time_point deadline, const std::atomic<bool>& stop);

  /// The delivery thread: writes batches until closed and drained (or stopped, or aborted).
  void run();
  /// No more pushes will come: deliver what is left and return from run().
  void close();
  /// Agent stopping on a signal. A memory buffer keeps draining. A disk buffer keeps draining
  /// while the sink makes progress (5 s without a delivered batch ends it) and at most until
  /// `deadline`; what is left stays in the log for the next start.
  void stop(Clock::time_point deadline);
  /// Gives up: run() returns at once. Returns the records not delivered.
  std::size_t abort();

  [[nodiscard]] bool disk() const noexcept { return spec_.type == DeliverySpec::BufferType::disk; }
  [[nodiscard]] const std::string& path() const noexcept { return spec_.path; }
  /// Records in the buffer, in flight or waiting for a retry.
  [[nodiscard]] std::size_t pending_records() const;
  /// Gauges: buffer_records, buffer_oldest_age_seconds, and buffer_bytes for a disk buffer.
  [[nodiscard]] std::vector<std::pair<std::string, double>> gauges() const;

  // Called by InFlight when the sink resolves a batch.
  void resolved(InFlight* f, sdk::AckStatus status) noexcept;

 private:
  struct Piece {
    std::vector<sdk::Record> records;
    std::shared_ptr<AckState> share;
    Clock::time_point at;
  };

  bool take_batch(InFlight& out);  // memory buffer, under mu_
  /// Disk buffer, under mu_: keeps a delivered batch's records to decode the next one into.
  void recycle(std::vector<sdk::Record>&& records);
  void write(InFlight* f);  // without mu_
  void finish(InFlight* f, sdk::AckStatus status);

  DeliverySpec spec_;
  sdk::Sink& sink_;
  ComponentMetrics& metrics_;
  sdk::Context& ctx_;
  RecordPool* pool_ = nullptr;
  sdk::LogLimiter limiter_;
  std::unique_ptr<DiskStore> disk_;

  mutable std::mutex mu_;
  std::condition_variable cv_;           // the delivery thread waits here
  std::condition_variable writable_cv_;  // sources waiting for room
  std::deque<Piece> pieces_;
  std::size_t records_ = 0;
  std::map<std::uint64_t, InFlight*> retry_;  // by sequence: retried in order
  std::size_t in_flight_ = 0;
  std::size_t in_flight_records_ = 0;
  std::uint64_t seq_ = 0;
  bool closed_ = false;
  bool stopping_ = false;
  Clock::time_point drain_hard_{};  // disk: stop draining at the latest then
  Clock::time_point drain_soft_{};  // disk: ... or then, pushed back by each delivered batch
  [[nodiscard]] bool drain_over(Clock::time_point now) const {
    return stopping_ && disk_ && (now >= drain_hard_ || now >= drain_soft_);
  }
  bool aborted_ = false;
  bool disk_pushed_ = false;  // records appended since the delivery thread last found none
  static constexpr std::size_t kSpareBatches = 4;
  std::vector<std::vector<sdk::Record>> spare_;  // disk: storage of delivered batches
  sdk::Counter* retried_ = nullptr;
};

}  // namespace webmon::agent
