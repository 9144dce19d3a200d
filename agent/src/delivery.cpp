#include "delivery.hpp"

#include <algorithm>
#include <utility>

#include "disk_store.hpp"

namespace webmon::agent {

using sdk::AckStatus;
using sdk::EmitResult;

void AckState::resolve(AckStatus status) noexcept {
  auto s = static_cast<std::uint8_t>(status);
  std::uint8_t cur = worst_.load(std::memory_order_relaxed);
  while (s > cur && !worst_.compare_exchange_weak(cur, s, std::memory_order_relaxed)) {
  }
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    source_.acknowledged(token_, static_cast<AckStatus>(worst_.load(std::memory_order_relaxed)));
    in_flight_.fetch_sub(1, std::memory_order_release);
  }
}

std::chrono::milliseconds retry_backoff(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, int attempt) noexcept {
  std::chrono::milliseconds d = initial;
  for (int i = 1; i < attempt && d < max; ++i) {
    d *= 2;
  }
  return std::min(d, max);
}

struct InFlight final : sdk::AckTarget {
  explicit InFlight(SinkDelivery& o) : owner(o) {}
  void resolve(AckStatus status) noexcept override { owner.resolved(this, status); }

  SinkDelivery& owner;
  sdk::Batch batch;
  std::vector<std::shared_ptr<AckState>> shares;  // memory buffer: the sources' shares
  DiskChunk disk;                                 // disk buffer: what to acknowledge
  std::uint64_t seq = 0;
  int attempt = 0;
  SinkDelivery::Clock::time_point due{};
};

SinkDelivery::SinkDelivery(DeliverySpec spec, sdk::Sink& sink, ComponentMetrics& metrics,
                           sdk::Context& ctx)
    : spec_(std::move(spec)), sink_(sink), metrics_(metrics), ctx_(ctx) {
  retried_ = &metrics_.counter("retried");
  (void)metrics_.counter("rejected");
}

SinkDelivery::~SinkDelivery() {
  for (auto& [seq, f] : retry_) {
    delete f;
  }
}

void SinkDelivery::open() {
  if (disk()) {
    disk_ = std::make_unique<DiskStore>(spec_, ctx_, metrics_);
  }
}

EmitResult SinkDelivery::push(std::vector<sdk::Record>&& records,
                              const std::shared_ptr<AckState>& share) {
  const std::size_t n = records.size();
  if (disk_) {
    const DiskStore::Pushed r = disk_->push(records);
    if (r.refused) {
      return EmitResult::refused;
    }
    metrics_.received().add(r.appended);
    if (r.dropped > 0) {
      metrics_.dropped().add(r.dropped);
      limiter_.log(ctx_, sdk::LogLevel::warn, "dropped",
                   "disk buffer " + spec_.path + " is full (max_size " +
                       std::to_string(spec_.max_size) + " bytes): when_full " +
                       to_string(spec_.when_full) + " dropped " + std::to_string(r.dropped) +
                       " records");
    }
    share->resolve(AckStatus::delivered);  // safe in the log
    {
      std::lock_guard lock(mu_);
      disk_pushed_ = true;
    }
    cv_.notify_one();
    if (r.dropped > 0) {
      return EmitResult::dropped;
    }
    return r.full ? EmitResult::full : EmitResult::accepted;
  }

  std::vector<std::shared_ptr<AckState>> dropped_shares;
  std::size_t dropped = 0;
  EmitResult result = EmitResult::accepted;
  {
    std::lock_guard lock(mu_);
    if (aborted_) {
      return EmitResult::stopped;
    }
    const std::size_t max = spec_.max_records;
    switch (spec_.when_full) {
      case DeliverySpec::WhenFull::block:
        if (records_ >= 2 * max) {
          return EmitResult::refused;
        }
        records_ += n;
        pieces_.push_back(Piece{std::move(records), share, Clock::now()});
        result = records_ >= max ? EmitResult::full : EmitResult::accepted;
        break;
      case DeliverySpec::WhenFull::drop_newest: {
        const std::size_t room = records_ < max ? max - records_ : 0;
        if (room < n) {
          dropped = n - room;
          records.resize(room);
          result = EmitResult::dropped;
        }
        if (records.empty()) {
          dropped_shares.push_back(share);
        } else {
          records_ += records.size();
          pieces_.push_back(Piece{std::move(records), share, Clock::now()});
        }
        break;
      }
      case DeliverySpec::WhenFull::drop_oldest:
        records_ += n;
        pieces_.push_back(Piece{std::move(records), share, Clock::now()});
        while (records_ > max && pieces_.size() > 1) {
          Piece& old = pieces_.front();
          const std::size_t excess = records_ - max;
          if (old.records.size() <= excess) {
            dropped += old.records.size();
            records_ -= old.records.size();
            dropped_shares.push_back(std::move(old.share));
            pieces_.pop_front();
          } else {
            old.records.erase(old.records.begin(),
                              old.records.begin() + static_cast<std::ptrdiff_t>(excess));
            dropped += excess;
            records_ -= excess;
          }
        }
        result = dropped > 0 ? EmitResult::dropped : EmitResult::accepted;
        break;
    }
  }
  metrics_.received().add(n);
  cv_.notify_one();
  if (dropped > 0) {
    metrics_.dropped().add(dropped);
    limiter_.log(ctx_, sdk::LogLevel::warn, "dropped",
                 "memory buffer full (" + std::to_string(spec_.max_records) +
                     " records): when_full " + to_string(spec_.when_full) + " dropped " +
                     std::to_string(dropped) + " records");
  }
  // A dropped record resolves as delivered, like one a transform drops: the source must not
  // wait for it forever; the drop itself is counted and logged.
  for (auto& s : dropped_shares) {
    s->resolve(AckStatus::delivered);
  }
  return result;
}

bool SinkDelivery::would_refuse() const {
  if (disk_ || spec_.when_full != DeliverySpec::WhenFull::block) {
    return false;  // a disk buffer decides when it appends
  }
  std::lock_guard lock(mu_);
  return records_ >= 2 * spec_.max_records;
}

bool SinkDelivery::wait_writable(Clock::time_point deadline, const std::atomic<bool>& stop) {
  if (disk_) {
    return disk_->wait_writable(deadline, stop);
  }
  std::unique_lock lock(mu_);
  return writable_cv_.wait_until(lock, deadline, [&] {
    return aborted_ || stop.load() || spec_.when_full != DeliverySpec::WhenFull::block ||
           records_ < spec_.max_records;
  });
}

bool SinkDelivery::take_batch(InFlight& out) {
  std::size_t room = spec_.batch_max_records;
  while (room > 0 && !pieces_.empty()) {
    Piece& p = pieces_.front();
    if (p.records.size() <= room) {
      room -= p.records.size();
      records_ -= p.records.size();
      if (out.batch.records.empty()) {
        out.batch.records = std::move(p.records);
      } else {
        std::move(p.records.begin(), p.records.end(), std::back_inserter(out.batch.records));
      }
      out.shares.push_back(std::move(p.share));
      pieces_.pop_front();
    } else {
      p.share->add_share();  // the rest stays queued with its own share
      out.shares.push_back(p.share);
      std::move(p.records.begin(), p.records.begin() + static_cast<std::ptrdiff_t>(room),
                std::back_inserter(out.batch.records));
      p.records.erase(p.records.begin(), p.records.begin() + static_cast<std::ptrdiff_t>(room));
      records_ -= room;
      room = 0;
    }
  }
  if (records_ < spec_.max_records) {
    writable_cv_.notify_all();
  }
  return !out.batch.records.empty();
}

void SinkDelivery::write(InFlight* f) {
  if (f->attempt > 0) {
    retried_->add(f->batch.records.size());
  }
  const sdk::Status s = sink_.write(f->batch, sdk::Ack(f));
  if (!s) {
    limiter_.log(ctx_, sdk::LogLevel::error, "write", "write failed: " + s.message());
  }
}

void SinkDelivery::run() {
  std::unique_lock lock(mu_);
  bool disk_empty = false;  // a disk read found nothing: wait for a push before reading again
  while (!aborted_) {
    disk_empty = disk_empty && !disk_pushed_;  // records appended since the last empty read
    disk_pushed_ = false;
    // Stopping with a disk buffer: deliver until the sources have finished (their last results
    // included) and the log is drained, or until the drain is over.
    if (drain_over(Clock::now()) ||
        (stopping_ && disk_ && closed_ && disk_empty && in_flight_ == 0 && retry_.empty())) {
      // Stopped on a signal: what is not delivered stays in the log for the next start. Batches
      // waiting for a retry are let go now; those in flight are resolved by the sink's flush.
      auto waiting = std::exchange(retry_, {});
      lock.unlock();
      for (auto& [seq, f] : waiting) {
        finish(f, AckStatus::retryable);
      }
      return;
    }
    const auto now = Clock::now();
    if (in_flight_ < spec_.max_in_flight && !retry_.empty()) {
      InFlight* f = retry_.begin()->second;
      if (f->due <= now) {
        retry_.erase(retry_.begin());
        ++in_flight_;
        in_flight_records_ += f->batch.records.size();
        lock.unlock();
        write(f);
        lock.lock();
        continue;
      }
    }
    // New batches wait while a retry is pending, so records keep their order. A disk buffer
    // stopped on a signal keeps what it has for the next start.
    const bool may_take = retry_.empty() && in_flight_ < spec_.max_in_flight;
    if (may_take && disk_ && !disk_empty) {
      // Disk: batches are what the log holds when the sink is ready (no linger). The log is
      // read and decoded without mu_ (this is its only reader): sources pushing and sinks
      // resolving are not held up by it. The records are decoded into the storage of a batch
      // delivered earlier (strings and field vectors reused).
      auto* f = new InFlight(*this);
      f->seq = ++seq_;
      if (!spare_.empty()) {
        f->batch.records = std::move(spare_.back());
        spare_.pop_back();
      }
      lock.unlock();
      const bool taken = disk_->take(spec_.batch_max_records, f->batch.records, f->disk);
      lock.lock();
      if (taken) {
        ++in_flight_;
        in_flight_records_ += f->batch.records.size();
        lock.unlock();
        write(f);
        lock.lock();
        continue;
      }
      recycle(std::move(f->batch.records));
      delete f;
      disk_empty = true;
    }
    if (may_take && !disk_ && records_ > 0) {
      const bool full_batch = records_ >= spec_.batch_max_records;
      if (full_batch || closed_ || stopping_ || now - pieces_.front().at >= spec_.linger) {
        auto* f = new InFlight(*this);
        f->seq = ++seq_;
        take_batch(*f);
        ++in_flight_;
        in_flight_records_ += f->batch.records.size();
        lock.unlock();
        write(f);
        lock.lock();
        continue;
      }
    }
    const bool drained = disk_ ? disk_empty : records_ == 0;
    if (retry_.empty() && in_flight_ == 0 && closed_ && drained) {
      break;
    }
    auto wake = now + std::chrono::seconds(1);
    if (!retry_.empty()) {
      wake = std::min(wake, retry_.begin()->second->due);
    }
    if (stopping_ && disk_) {
      wake = std::min({wake, drain_hard_, drain_soft_});
    }
    if (may_take && !disk_ && records_ > 0) {
      wake = std::min(wake, pieces_.front().at + spec_.linger);
    }
    if (!disk_pushed_) {
      cv_.wait_until(lock, wake);
    }
  }
}

void SinkDelivery::resolved(InFlight* f, AckStatus status) noexcept {
  if (status == AckStatus::retryable) {
    bool retry = true;
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      in_flight_records_ -= f->batch.records.size();
      if (aborted_ || drain_over(Clock::now()) ||
          (spec_.max_retries >= 0 && f->attempt >= spec_.max_retries)) {
        retry = false;  // disk: the records stay in the log for the next start
      } else {
        ++f->attempt;
        f->due = Clock::now() + retry_backoff(spec_.retry_initial, spec_.retry_max, f->attempt);
        retry_.emplace(f->seq, f);
      }
    }
    cv_.notify_one();
    if (retry) {
      limiter_.log(
          ctx_, sdk::LogLevel::warn, "retry",
          "batch of " + std::to_string(f->batch.records.size()) +
              " records not stored (retryable); attempt " + std::to_string(f->attempt) + " in " +
              std::to_string(
                  retry_backoff(spec_.retry_initial, spec_.retry_max, f->attempt).count()) +
              " ms");
      return;
    }
    finish(f, AckStatus::retryable);
    return;
  }
  {
    std::lock_guard lock(mu_);
    --in_flight_;
    in_flight_records_ -= f->batch.records.size();
    if (stopping_ && status == AckStatus::delivered) {
      drain_soft_ = std::min(drain_hard_, Clock::now() + std::chrono::seconds(5));
    }
  }
  cv_.notify_one();
  finish(f, status);
}

void SinkDelivery::finish(InFlight* f, AckStatus status) {
  const std::size_t n = f->batch.records.size();
  if (status == AckStatus::delivered) {
    metrics_.sent().add(n);
  } else if (status == AckStatus::retryable) {
    metrics_.errors().add(n);  // given up on here (the source may send them again)
  } else if (status == AckStatus::rejected) {
    metrics_.counter("rejected").add(n);
    metrics_.errors().add(n);
    limiter_.log(ctx_, sdk::LogLevel::error, "rejected",
                 "sink rejected a batch of " + std::to_string(n) +
                     " records (not storable as they are; not retried)");
  }
  if (disk_) {
    if (status != AckStatus::retryable) {
      disk_->acknowledge(f->disk);
    }
    std::lock_guard lock(mu_);
    recycle(std::move(f->batch.records));
  } else {
    for (auto& s : f->shares) {
      s->resolve(status);
    }
    if (pool_ != nullptr) {
      pool_->give(std::move(f->batch.records));  // for a source to overwrite
    }
  }
  delete f;
}

void SinkDelivery::recycle(std::vector<sdk::Record>&& records) {
  if (spare_.size() < kSpareBatches && !records.empty()) {
    spare_.push_back(std::move(records));
  }
}

void SinkDelivery::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    disk_pushed_ = true;  // look at the log once more
  }
  cv_.notify_all();
}

void SinkDelivery::stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    drain_hard_ = deadline;
    drain_soft_ = std::min(deadline, Clock::now() + std::chrono::seconds(5));
  }
  cv_.notify_all();
  writable_cv_.notify_all();
  if (disk_) {
    disk_->close_waiters();
  }
}

std::size_t SinkDelivery::abort() {
  std::deque<Piece> pieces;
  std::map<std::uint64_t, InFlight*> retry;
  std::size_t lost = 0;
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
    lost = records_ + in_flight_records_;
    pieces = std::exchange(pieces_, {});
    retry = std::exchange(retry_, {});
    records_ = 0;
  }
  cv_.notify_all();
  writable_cv_.notify_all();
  for (auto& p : pieces) {
    p.share->resolve(AckStatus::retryable);
  }
  for (auto& [seq, f] : retry) {
    lost += f->batch.records.size();
    finish(f, AckStatus::retryable);
  }
  if (disk_) {
    disk_->close_waiters();
    lost = disk_->unacknowledged();  // all still in the log, sent at the next start
  }
  return lost;
}

std::size_t SinkDelivery::pending_records() const {
  std::lock_guard lock(mu_);
  std::size_t n = records_ + in_flight_records_;
  for (const auto& [seq, f] : retry_) {
    n += f->batch.records.size();
  }
  if (disk_) {
    n = disk_->unacknowledged();
  }
  return n;
}

std::vector<std::pair<std::string, double>> SinkDelivery::gauges() const {
  std::vector<std::pair<std::string, double>> out;
  if (disk_) {
    out = disk_->gauges();
  }
  std::lock_guard lock(mu_);
  if (!disk_) {
    double age = 0;
    if (!pieces_.empty()) {
      age = std::chrono::duration<double>(Clock::now() - pieces_.front().at).count();
    }
    out = {{"buffer_records", static_cast<double>(records_)}, {"buffer_oldest_age_seconds", age}};
  }
  // Records handed to the sink and not yet acknowledged (being written).
  out.emplace_back("in_flight_records", static_cast<double>(in_flight_records_));
  return out;
}

}  // namespace webmon::agent
