// Restarts librdkafka's fetching once the consumer has drained its prefetch queue.
//
// librdkafka before 2.4 (Debian 12 ships 2.0.2) stops fetching a partition once the
// consumer's local queue holds `queued.max.messages.kbytes`, and decides again only when the
// leader's broker thread next wakes up: on network I/O or an operation for that broker, else
// after a second (librdkafka issue 2879; 2.4 adds `fetch.queue.backoff.ms` for it). A consumer
// that drains a full queue in less than a second therefore waits, idle, for the rest of that
// second, again and again while it catches up a backlog.
//
// Any request to a leader wakes its broker thread, which then sees the queue below the bound
// and fetches again. So the consuming thread reports the queue after each batch (observe());
// once the queue has been near the bound (3/4) and has drained to half of it, FetchWaker asks
// its own thread to send one ListOffsets request per leader (rd_kafka_offsets_for_times on
// the assignment: small, read-only, answered at once). Nothing else changes: when the
// estimate is off, the consumer waits the second as before.
#pragma once

#include <librdkafka/rdkafka.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::kafka_source {

/// The decision alone (no I/O), so it can be tested: when should the fetcher be woken?
class WakePolicy {
 public:
  /// `bound_bytes`: the queue's size bound (queued.max.messages.kbytes in bytes).
  explicit WakePolicy(std::size_t bound_bytes) noexcept : bound_(bound_bytes) {}

  /// After a consumed batch of `batch_messages` messages of `batch_bytes` (keys and values),
  /// with `queued` messages still in the local queue. True when the fetcher should be woken
  /// now: the queue was near the bound (fetching has likely stopped) and is down to half.
  bool observe(std::size_t queued, std::size_t batch_messages, std::size_t batch_bytes) noexcept;

  /// Average message size the estimate uses (bytes), 0 before the first batch.
  [[nodiscard]] double average_message_bytes() const noexcept { return average_; }

 private:
  std::size_t bound_;
  double average_ = 0;
  bool armed_ = false;
};

/// Owns the thread that sends the wake-up requests. Create it after subscribing; destroy it
/// before closing the consumer (the destructor joins, waiting at most for one request).
class FetchWaker {
 public:
  /// `wakeups` (may be null) counts the wake-up requests sent.
  FetchWaker(rd_kafka_t* consumer, std::size_t bound_bytes, sdk::Counter* wakeups);
  ~FetchWaker();
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

  /// Whether the librdkafka in use needs this (before 2.4; later ones back a full queue off by
  /// `fetch.queue.backoff.ms`, which kafka_source then sets); if not, observe() never wakes.
  static bool needed() noexcept;

  /// Consuming thread, after each batch: `queued` = rd_kafka_queue_length of the consumer queue.
  void observe(std::size_t queued, std::size_t batch_messages, std::size_t batch_bytes);

 private:
  void loop();

  rd_kafka_t* consumer_;
  WakePolicy policy_;  // consuming thread only
  sdk::Counter* wakeups_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace webmon::plugins::kafka_source
