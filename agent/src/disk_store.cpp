#include "disk_store.hpp"

#include <stdexcept>

#include "delivery/disk_buffer.hpp"
#include "log.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::agent {

struct DiskStore::Impl {
  std::unique_ptr<delivery::DiskBuffer> buffer;
  std::atomic<std::uint64_t> last_full_bytes{0};
  sdk::Counter* corrupt = nullptr;
  sdk::Counter* io_errors = nullptr;
};

namespace {

delivery::WhenFull to_policy(DeliverySpec::WhenFull w) {
  switch (w) {
    case DeliverySpec::WhenFull::block:
      return delivery::WhenFull::block;
    case DeliverySpec::WhenFull::drop_oldest:
      return delivery::WhenFull::drop_oldest;
    case DeliverySpec::WhenFull::drop_newest:
      return delivery::WhenFull::drop_newest;
  }
  return delivery::WhenFull::block;
}

}  // namespace

DiskStore::DiskStore(const DeliverySpec& spec, sdk::Context& ctx, ComponentMetrics& metrics)
    : impl_(std::make_unique<Impl>()) {
  delivery::DiskBufferOptions options;
  options.path = spec.path;
  options.max_size = spec.max_size;
  options.segment_size =
      std::min<std::uint64_t>(64ULL << 20, std::max<std::uint64_t>(spec.max_size / 8, 1ULL << 20));
  options.sync_interval = spec.sync_interval;
  options.when_full = to_policy(spec.when_full);
  delivery::OpenReport report;
  try {
    impl_->buffer = delivery::DiskBuffer::open(options, report);
  } catch (const delivery::DiskBufferError& e) {
    throw std::runtime_error("disk buffer " + spec.path + ": " + e.what());
  }
  impl_->corrupt = &metrics.counter("buffer_corrupt_records");
  impl_->io_errors = &metrics.counter("buffer_io_errors");
  for (const auto& problem : report.problems) {
    ctx.warn("disk buffer " + spec.path + ": " + problem);
  }
  if (report.records_cut > 0 || report.bytes_cut > 0) {
    impl_->corrupt->add(report.records_cut);
    ctx.warn("disk buffer " + spec.path + ": cut " + std::to_string(report.records_cut) +
             " records (" + std::to_string(report.bytes_cut) +
             " bytes) of a torn or corrupt tail; the records before it are kept");
  }
  if (report.records > 0) {
    ctx.info("disk buffer " + spec.path + ": " + std::to_string(report.records) + " records (" +
             std::to_string(report.bytes) + " bytes) left by a previous run are sent first");
  } else {
    ctx.debug("disk buffer " + spec.path + " opened (empty)");
  }
}

DiskStore::~DiskStore() = default;

DiskStore::Pushed DiskStore::push(const std::vector<sdk::Record>& records) {
  Pushed out;
  const delivery::AppendResult r = impl_->buffer->append(records);
  using S = delivery::AppendResult::Status;
  switch (r.status) {
    case S::appended: {
      out.appended = r.appended;
      out.dropped = r.dropped_oldest;
      const auto opts = impl_->buffer->options();
      out.full = opts.when_full == delivery::WhenFull::block &&
                 impl_->buffer->stats().bytes >= opts.max_size / 10 * 9;
      break;
    }
    case S::full:
      impl_->last_full_bytes = r.bytes;
      out.refused = true;
      break;
    case S::dropped:
    case S::too_large:
      out.dropped = records.size();
      break;
    case S::io_error:
      impl_->io_errors->add();
      log(sdk::LogLevel::error, "", "disk buffer write failed: " + r.error);
      out.refused = true;
      break;
  }
  return out;
}

bool DiskStore::wait_writable(Clock::time_point deadline, const std::atomic<bool>& stop) {
  if (stop.load()) {
    return true;
  }
  return impl_->buffer->wait_for_space(std::max<std::uint64_t>(impl_->last_full_bytes, 1),
                                       deadline);
}

bool DiskStore::take(std::size_t max_records, std::vector<sdk::Record>& out, DiskChunk& chunk) {
  delivery::Chunk c;
  c.records = std::move(out);  // decoded into in place: its strings and vectors are reused
  const bool got = impl_->buffer->read(max_records, 64U << 20U, c);
  out = std::move(c.records);
  if (!got) {
    return false;
  }
  chunk = DiskChunk{c.handle.segment, c.handle.begin, c.handle.end, c.handle.records};
  return !out.empty();
}

void DiskStore::acknowledge(const DiskChunk& chunk) {
  impl_->buffer->acknowledge(
      delivery::Chunk::Handle{chunk.segment, chunk.begin, chunk.end, chunk.records});
}

std::size_t DiskStore::unacknowledged() const {
  return static_cast<std::size_t>(impl_->buffer->stats().records);
}

void DiskStore::close_waiters() { impl_->buffer->close_waiters(); }

std::vector<std::pair<std::string, double>> DiskStore::gauges() const {
  const delivery::DiskBufferStats s = impl_->buffer->stats();
  double age = 0;
  if (s.oldest_append_time) {
    age = static_cast<double>(sdk::now().micros - s.oldest_append_time->micros) / 1e6;
  }
  return {{"buffer_records", static_cast<double>(s.records)},
          {"buffer_bytes", static_cast<double>(s.bytes)},
          {"buffer_oldest_age_seconds", std::max(age, 0.0)}};
}

}  // namespace webmon::agent
