// Runs one job over the index range [0, n) on the calling thread and a few helper threads,
// each share handed a JsonDecoder of its own (a decoder is not thread-safe). kafka_source uses
// it to decode a fetched batch of messages in parallel: decoding is the consumer's hot path.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "webmon/common/wire.hpp"

namespace webmon::plugins::kafka_source {

class DecodePool {
 public:
  using Job = std::function<void(common::JsonDecoder& decoder, std::size_t begin, std::size_t end)>;

  /// `threads` decoders in all, the caller's included (1 = no helper threads).
  DecodePool(unsigned threads, std::size_t max_message_bytes);
  ~DecodePool();
  DecodePool(const DecodePool&) = delete;
  DecodePool& operator=(const DecodePool&) = delete;

  /// Splits [0, n) into contiguous shares (fewer for small n), runs `job` on each and returns
  /// when all are done. An exception from a helper's share is rethrown here.
  void run(std::size_t n, const Job& job);

  /// Decoders in all (the caller's included), and which one `d` is (0 for the caller's): for
  /// per-thread state kept beside each decoder.
  [[nodiscard]] std::size_t size() const noexcept { return decoders_.size(); }
  [[nodiscard]] std::size_t index_of(const common::JsonDecoder& d) const noexcept {
    for (std::size_t i = 0; i < decoders_.size(); ++i) {
      if (decoders_[i].get() == &d) {
        return i;
      }
    }
    return 0;
  }

 private:
  void helper_loop(std::size_t index);

  std::vector<std::unique_ptr<common::JsonDecoder>> decoders_;  // [0] is the caller's
  std::vector<std::thread> helpers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  const Job* job_ = nullptr;
  std::size_t n_ = 0;
  std::size_t shares_ = 0;
  std::size_t remaining_ = 0;
  std::exception_ptr error_;
};

}  // namespace webmon::plugins::kafka_source
