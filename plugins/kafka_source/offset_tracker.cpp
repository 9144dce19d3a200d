// kafka_source's offset bookkeeping (see offset_tracker.hpp for the rules).
#include "offset_tracker.hpp"

#include <algorithm>

namespace webmon::plugins::kafka_source {

OffsetTracker::PartId OffsetTracker::index(std::string_view topic, std::int32_t partition) {
  if (const auto found = find(topic, partition)) {
    return *found;
  }
  Partition p;
  p.topic = std::string(topic);
  p.partition = partition;
  parts_.push_back(std::move(p));
  return static_cast<PartId>(parts_.size() - 1);
}

std::optional<OffsetTracker::PartId> OffsetTracker::find(std::string_view topic,
                                                         std::int32_t partition) const {
  for (PartId i = 0; i < parts_.size(); ++i) {
    if (parts_[i].partition == partition && parts_[i].topic == topic) {
      return i;
    }
  }
  return std::nullopt;
}

void OffsetTracker::assign(PartId id) {
  Partition& p = parts_[id];
  in_flight_ -= static_cast<std::int64_t>(unresolved(id));
  p.pending.clear();
  p.assigned = true;
  p.next_offset = -1;
  p.committed = -1;
  p.retry_paused = false;
  p.rewind_to = -1;
}

void OffsetTracker::revoke(PartId id) {
  Partition& p = parts_[id];
  in_flight_ -= static_cast<std::int64_t>(unresolved(id));
  p.pending.clear();
  p.assigned = false;
  ++p.generation;
  p.next_offset = -1;
  p.retry_paused = false;
  p.rewind_to = -1;
}

void OffsetTracker::erase_from(Partition& p, std::int64_t offset) {
  auto it = std::lower_bound(p.pending.begin(), p.pending.end(), offset,
                             [](const Entry& e, std::int64_t o) { return e.offset < o; });
  for (auto jt = it; jt != p.pending.end(); ++jt) {
    in_flight_ -= jt->done ? 0 : 1;
  }
  p.pending.erase(it, p.pending.end());
  if (p.next_offset < 0 || offset < p.next_offset) {
    p.next_offset = offset;
  }
}

OffsetTracker::Ref OffsetTracker::track(PartId id, std::int64_t offset) {
  Partition& p = parts_[id];
  if (p.next_offset >= 0 && offset < p.next_offset) {
    erase_from(p, offset);  // the position went back (seek, re-assignment, reset)
  }
  p.pending.push_back(Entry{offset, false});
  p.next_offset = offset + 1;
  ++in_flight_;
  return Ref{id, p.generation, offset};
}

bool OffsetTracker::resolve(const Ref& r) {
  if (!current(r)) {
    return false;
  }
  Partition& p = parts_[r.part];
  auto it = std::lower_bound(p.pending.begin(), p.pending.end(), r.offset,
                             [](const Entry& e, std::int64_t o) { return e.offset < o; });
  if (it == p.pending.end() || it->offset != r.offset || it->done) {
    return false;
  }
  it->done = true;
  --in_flight_;
  while (!p.pending.empty() && p.pending.front().done) {
    p.pending.pop_front();
  }
  return true;
}

std::int64_t OffsetTracker::committable(PartId id) const {
  const Partition& p = parts_[id];
  return !p.pending.empty() ? p.pending.front().offset : p.next_offset;
}

bool OffsetTracker::retry_from(const Ref& first, Clock::time_point resume_at) {
  if (!current(first) || !parts_[first.part].assigned) {
    return false;
  }
  Partition& p = parts_[first.part];
  // Below the first unresolved record everything is resolved: reading it again would only
  // move the commit backwards.
  const std::int64_t target = std::max(first.offset, committable(first.part));
  if (p.next_offset < 0 || target >= p.next_offset) {
    return false;  // nothing read from there is unresolved (or it will be read anyway)
  }
  erase_from(p, target);
  p.rewind_to = p.rewind_to < 0 ? target : std::min(p.rewind_to, target);
  p.resume_at = resume_at;
  return !std::exchange(p.retry_paused, true);
}

void OffsetTracker::forget_from(const Ref& first) {
  if (!current(first)) {
    return;
  }
  Partition& p = parts_[first.part];
  const std::int64_t target = std::max(first.offset, committable(first.part));
  if (p.next_offset >= 0 && target < p.next_offset) {
    erase_from(p, target);
  }
}

std::vector<std::pair<OffsetTracker::PartId, std::int64_t>> OffsetTracker::due_retries(
    Clock::time_point now) {
  std::vector<std::pair<PartId, std::int64_t>> due;
  for (PartId i = 0; i < parts_.size(); ++i) {
    Partition& p = parts_[i];
    if (p.retry_paused && p.assigned && now >= p.resume_at) {
      due.emplace_back(i, p.rewind_to);
      p.retry_paused = false;
      p.rewind_to = -1;
    }
  }
  return due;
}

std::optional<std::int64_t> OffsetTracker::take_commit(PartId id, bool again) {
  Partition& p = parts_[id];
  if (!p.assigned) {
    return std::nullopt;
  }
  const std::int64_t c = committable(id);
  if (c < 0 || c < p.committed || (c == p.committed && !again)) {
    return std::nullopt;
  }
  p.committed = c;
  return c;
}

std::size_t OffsetTracker::unresolved(PartId id) const {
  std::size_t n = 0;
  for (const Entry& e : parts_[id].pending) {
    n += e.done ? 0 : 1;
  }
  return n;
}

}  // namespace webmon::plugins::kafka_source
