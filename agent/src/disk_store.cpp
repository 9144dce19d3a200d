#include "disk_store.hpp"

#include <stdexcept>

namespace webmon::agent {

// Until the disk log lands, a disk buffer is refused at start with a clear message.
struct DiskStore::Impl {};

DiskStore::DiskStore(const DeliverySpec& spec, sdk::Context& /*ctx*/,
                     ComponentMetrics& /*metrics*/) {
  throw std::runtime_error("buffer type 'disk' (" + spec.path +
                           ") is not available in this build; use type: memory");
}
DiskStore::~DiskStore() = default;
DiskStore::Pushed DiskStore::push(const std::vector<sdk::Record>& /*records*/) { return {}; }
bool DiskStore::wait_writable(Clock::time_point /*deadline*/, const std::atomic<bool>& /*stop*/) {
  return true;
}
bool DiskStore::take(std::size_t /*max*/, std::vector<sdk::Record>& /*out*/, DiskChunk& /*c*/) {
  return false;
}
void DiskStore::acknowledge(const DiskChunk& /*chunk*/) {}
std::size_t DiskStore::unread() const { return 0; }
DiskStore::Clock::time_point DiskStore::oldest_unread() const { return Clock::now(); }
std::vector<std::pair<std::string, double>> DiskStore::gauges() const { return {}; }

}  // namespace webmon::agent
