#include "decode_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <string>

namespace webmon::plugins::kafka_source {
namespace {

// Below this many messages per share, handing work to another thread costs more than it saves.
constexpr std::size_t kMinShare = 64;

}  // namespace

DecodePool::DecodePool(unsigned threads, std::size_t max_message_bytes) {
  const unsigned total = std::max(1U, threads);
  for (unsigned i = 0; i < total; ++i) {
    decoders_.push_back(std::make_unique<common::JsonDecoder>());
    decoders_.back()->set_max_bytes(max_message_bytes);
  }
  for (std::size_t i = 1; i < total; ++i) {
    helpers_.emplace_back([this, i] { helper_loop(i); });
  }
}

DecodePool::~DecodePool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : helpers_) {
    t.join();
  }
}

void DecodePool::run(std::size_t n, const Job& job) {
  const std::size_t shares = std::clamp<std::size_t>(n / kMinShare, 1, decoders_.size());
  if (shares == 1) {
    job(*decoders_[0], 0, n);
    return;
  }
  {
    std::lock_guard lock(mu_);
    job_ = &job;
    n_ = n;
    shares_ = shares;
    remaining_ = shares - 1;
    error_ = nullptr;
    ++generation_;
  }
  work_cv_.notify_all();
  std::exception_ptr mine;
  try {
    job(*decoders_[0], 0, n / shares);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [this] { return remaining_ == 0; });
  job_ = nullptr;
  if (mine) {
    std::rethrow_exception(mine);
  }
  if (error_) {
    std::rethrow_exception(error_);
  }
}

void DecodePool::helper_loop(std::size_t index) {
  const std::string name = "decode-" + std::to_string(index);
  (void)pthread_setname_np(pthread_self(), name.c_str());
  std::uint64_t seen = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) {
      return;
    }
    seen = generation_;
    if (index >= shares_) {
      continue;  // a small batch: not needed this time
    }
    const Job* job = job_;
    const std::size_t begin = n_ * index / shares_;
    const std::size_t end = n_ * (index + 1) / shares_;
    lock.unlock();
    std::exception_ptr err;
    try {
      (*job)(*decoders_[index], begin, end);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (err && !error_) {
      error_ = err;
    }
    if (--remaining_ == 0) {
      done_cv_.notify_one();
    }
  }
}

}  // namespace webmon::plugins::kafka_source
