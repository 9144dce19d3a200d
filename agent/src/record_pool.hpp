// Records of finished batches, kept for sources to overwrite (sdk::Emitter::take_spare_records,
// SDK 1.4): a source that decodes into them (kafka_source) allocates nothing for a record like
// the previous one, and the sink's thread, which resolves batches, frees nothing.
//
// Kept only once a source has asked (a pipeline whose sources never ask frees batches as
// before) and up to `max_records` records; past that, finished batches are freed. One mutex;
// batches move in and out whole (a vector swap), so it is taken once per batch.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include "webmon/sdk/record.hpp"

namespace webmon::agent {

class RecordPool {
 public:
  explicit RecordPool(std::size_t max_records) : max_records_(max_records) {}

  /// Keeps a finished batch's records when a source has asked for spares and there is room;
  /// otherwise leaves them to the caller (who frees them).
  void give(std::vector<sdk::Record>&& records) noexcept {
    if (!wanted_.load(std::memory_order_relaxed) || records.empty()) {
      return;
    }
    std::lock_guard lock(mu_);
    if (held_ + records.size() > max_records_) {
      return;
    }
    try {
      spare_.push_back(std::move(records));  // untouched if this throws
    } catch (...) {
      return;
    }
    held_ += spare_.back().size();
  }

  /// One finished batch's records, or none.
  std::vector<sdk::Record> take() noexcept {
    wanted_.store(true, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (spare_.empty()) {
      return {};
    }
    std::vector<sdk::Record> out = std::move(spare_.back());
    spare_.pop_back();
    held_ -= out.size();
    return out;
  }

  /// Records held now.
  [[nodiscard]] std::size_t held() const noexcept {
    std::lock_guard lock(mu_);
    return held_;
  }

 private:
  const std::size_t max_records_;
  std::atomic<bool> wanted_{false};
  mutable std::mutex mu_;
  std::vector<std::vector<sdk::Record>> spare_;
  std::size_t held_ = 0;
};

}  // namespace webmon::agent
