// kafka_source's offset bookkeeping, without librdkafka: which records of each assigned
// partition were read and are not yet resolved (delivered by every sink, or confirmed in the
// dead-letter topic), what may be committed, rewinds for retryable batches, and revocation.
// Not thread-safe: kafka_source calls it under its own lock.
//
// Rules (the unit and property tests in tests/offset_tracker_test.cpp check them):
//  * The offset to commit is the smallest tracked offset not yet resolved, or the offset after
//    the last one read when everything is resolved: never beyond an unresolved record.
//  * Commits never go backwards within one assignment of a partition, and an unchanged offset
//    is not committed again unless asked (after a failed commit).
//  * Acknowledgements may arrive in any order. One for a record of an earlier assignment
//    (the partition was revoked since) or for a record forgotten by a rewind and not read
//    again yet is ignored.
//  * A retry reads a partition again from the batch's first unresolved record: what was
//    tracked from there is forgotten, the partition waits (paused) until its backoff is over.
//    Records already resolved are not read again for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace webmon::plugins::kafka_source {

class OffsetTracker {
 public:
  using Clock = std::chrono::steady_clock;
  using PartId = std::uint32_t;

  /// One read record: its partition, the partition's assignment generation and its offset.
  struct Ref {
    PartId part = 0;
    std::uint64_t generation = 0;
    std::int64_t offset = 0;
  };

  /// The index of (topic, partition), created on first use (not assigned). Indexes are stable.
  PartId index(std::string_view topic, std::int32_t partition);
  /// The index of (topic, partition) if it was ever seen.
  [[nodiscard]] std::optional<PartId> find(std::string_view topic, std::int32_t partition) const;
  [[nodiscard]] std::size_t size() const noexcept { return parts_.size(); }
  [[nodiscard]] const std::string& topic(PartId p) const { return parts_[p].topic; }
  [[nodiscard]] std::int32_t partition(PartId p) const { return parts_[p].partition; }

  /// The partition is (newly) assigned: nothing tracked or committed yet.
  void assign(PartId id);
  /// The partition is revoked or lost: forgotten; acknowledgements of its records are ignored
  /// from now on (a new assignment is a new generation).
  void revoke(PartId id);
  [[nodiscard]] bool assigned(PartId p) const { return parts_[p].assigned; }
  /// Waiting for a retry's backoff (its records read meanwhile are not tracked).
  [[nodiscard]] bool retry_paused(PartId p) const { return parts_[p].retry_paused; }
  /// Whether a record read from the partition now is to be tracked.
  [[nodiscard]] bool accepting(PartId p) const {
    return parts_[p].assigned && !parts_[p].retry_paused;
  }

  /// A record was read at `offset` (precondition: accepting(p)). When the position went back
  /// (a seek, a reset), what was tracked from `offset` on is forgotten first.
  Ref track(PartId id, std::int64_t offset);
  /// Whether the reference belongs to the partition's current assignment.
  [[nodiscard]] bool current(const Ref& r) const {
    return r.part < parts_.size() && parts_[r.part].generation == r.generation;
  }
  /// The record was delivered, or its dead letter confirmed. Returns false when the reference
  /// is stale or the record was resolved already (nothing changed).
  bool resolve(const Ref& r);

  /// A batch whose first record of partition `first.part` is `first` was acknowledged
  /// retryable: forget what is tracked from its first unresolved record on and read from there
  /// again once `resume_at` has passed. Returns true when the partition was not paused yet
  /// (the caller pauses it). Nothing happens (false) when the reference is stale or every
  /// record from there on that was read is resolved.
  bool retry_from(const Ref& first, Clock::time_point resume_at);
  /// Forgets what is tracked from `first` on without pausing (a retry of a partition being
  /// revoked: only make sure none of it is committed). Stale references are ignored.
  void forget_from(const Ref& first);
  /// Paused partitions whose backoff is over, with the offset to seek to; they are no longer
  /// paused.
  std::vector<std::pair<PartId, std::int64_t>> due_retries(Clock::time_point now);

  /// The offset to commit for `id` now, if any: assigned, something read, and different from
  /// (greater than) the last one taken — or equal when `again` (the last commit failed).
  /// Taking it records it as committed.
  std::optional<std::int64_t> take_commit(PartId id, bool again);
  /// The offset below which every read record of `p` is resolved (-1: nothing read).
  [[nodiscard]] std::int64_t committable(PartId id) const;
  /// The last offset taken for commit in this assignment (-1: none).
  [[nodiscard]] std::int64_t committed(PartId p) const { return parts_[p].committed; }

  /// Tracked records not resolved, over all partitions.
  [[nodiscard]] std::int64_t in_flight() const noexcept { return in_flight_; }
  /// Tracked records of `p` not resolved.
  [[nodiscard]] std::size_t unresolved(PartId id) const;

 private:
  struct Entry {
    std::int64_t offset;
    bool done;
  };
  struct Partition {
    std::string topic;
    std::int32_t partition = 0;
    std::uint64_t generation = 0;  // bumped on revocation
    bool assigned = false;
    std::deque<Entry> pending;      // read and not committable, in offset order; front not done
    std::int64_t next_offset = -1;  // offset after the last one tracked (or a rewind's target)
    std::int64_t committed = -1;
    bool retry_paused = false;
    std::int64_t rewind_to = -1;
    Clock::time_point resume_at{};
  };

  void erase_from(Partition& p, std::int64_t offset);

  std::vector<Partition> parts_;
  std::int64_t in_flight_ = 0;
};

}  // namespace webmon::plugins::kafka_source
