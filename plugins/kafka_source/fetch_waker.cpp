#include "fetch_waker.hpp"

#include <pthread.h>

namespace webmon::plugins::kafka_source {
namespace {

// How long one wake-up request may take; the destructor waits at most this long.
constexpr int kRequestTimeoutMs = 500;

}  // namespace

bool WakePolicy::observe(std::size_t queued, std::size_t batch_messages,
                         std::size_t batch_bytes) noexcept {
  if (batch_messages > 0) {
    const double avg = static_cast<double>(batch_bytes) / static_cast<double>(batch_messages);
    average_ = average_ == 0 ? avg : average_ + (avg - average_) / 8;
  }
  // librdkafka counts about the value of each message; keys and values over-estimate it a
  // little, which only makes the wake-up come a little early.
  const double estimate = static_cast<double>(queued) * average_;
  const double bound = static_cast<double>(bound_);
  if (estimate >= bound * 3 / 4) {
    armed_ = true;
    return false;
  }
  if (armed_ && estimate <= bound / 2) {
    armed_ = false;
    return true;
  }
  return false;
}

bool FetchWaker::needed() noexcept { return rd_kafka_version() < 0x02040000; }

FetchWaker::FetchWaker(rd_kafka_t* consumer, std::size_t bound_bytes, sdk::Counter* wakeups)
    : consumer_(consumer), policy_(bound_bytes), wakeups_(wakeups) {
  if (needed()) {
    thread_ = std::thread([this] { loop(); });
  }
}

FetchWaker::~FetchWaker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void FetchWaker::observe(std::size_t queued, std::size_t batch_messages, std::size_t batch_bytes) {
  if (!thread_.joinable() || !policy_.observe(queued, batch_messages, batch_bytes)) {
    return;
  }
  {
    std::lock_guard lock(mu_);
    wanted_ = true;
  }
  cv_.notify_one();
}

void FetchWaker::loop() {
  (void)pthread_setname_np(pthread_self(), "fetch-waker");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return wanted_ || stop_; });
    if (stop_) {
      return;
    }
    wanted_ = false;
    lock.unlock();
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(consumer_, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts != nullptr &&
        parts->cnt > 0) {
      for (int i = 0; i < parts->cnt; ++i) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_END;  // as a timestamp: "the latest offset"
      }
      // One ListOffsets request per leader; the answer itself is not needed.
      (void)rd_kafka_offsets_for_times(consumer_, parts, kRequestTimeoutMs);
    }
    if (parts != nullptr) {
      rd_kafka_topic_partition_list_destroy(parts);
    }
    if (wakeups_ != nullptr) {
      wakeups_->add();
    }
    lock.lock();
  }
}

}  // namespace webmon::plugins::kafka_source
