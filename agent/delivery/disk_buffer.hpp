// DiskBuffer: a segmented, checksummed append log of records in one directory, the disk buffer
// of a sink (issue 13). Many producer threads append; one reader thread reads chunks in append
// order and acknowledges them, in any order; a segment file is deleted once every record in it
// is acknowledged. File format, fsync policy and what a kill -9 or a power cut can lose:
// agent/delivery/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "webmon/sdk/record.hpp"

namespace webmon::delivery {

/// What append() does when the records do not fit in max_size.
enum class WhenFull : std::uint8_t {
  block,        ///< append nothing, return Status::full: wait_for_space(), then retry
  drop_oldest,  ///< delete the oldest whole segment(s), acknowledged or not, until the batch fits
  drop_newest,  ///< refuse the new batch (Status::dropped)
};

struct DiskBufferOptions {
  std::filesystem::path path;                     ///< directory; created (with parents) if missing
  std::uint64_t max_size = 2ULL << 30;            ///< bytes of segment files on disk, at most
  std::uint64_t segment_size = 64ULL << 20;       ///< a new segment is started past this size
  std::chrono::milliseconds sync_interval{1000};  ///< fdatasync period; 0 = after every append
  WhenFull when_full = WhenFull::block;
};

/// Thrown by open() (bad options, directory not usable, already open by another buffer) with
/// a message saying what, where and how to fix it.
class DiskBufferError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What open() found on disk.
struct OpenReport {
  std::uint64_t segments = 0;         ///< segment files kept
  std::uint64_t records = 0;          ///< unacknowledged records found, read first
  std::uint64_t bytes = 0;            ///< bytes of segment files kept
  std::uint64_t records_cut = 0;      ///< frames found in cut regions (at least 1 per cut)
  std::uint64_t bytes_cut = 0;        ///< bytes cut (truncated torn/corrupt tails, bad segments)
  bool ledger_found = false;          ///< a valid acknowledgement ledger was read
  std::vector<std::string> problems;  ///< one line per cut: file, offset, reason, what was cut
};

struct AppendResult {
  enum class Status : std::uint8_t {
    appended,   ///< all records written (to the OS; durable after the next sync)
    full,       ///< when_full=block: nothing written; wait_for_space(bytes, ...) then retry
    dropped,    ///< when_full=drop_newest: nothing written, the records are dropped
    too_large,  ///< batch + 32 bytes > max_size: nothing written, whatever the policy
    io_error,   ///< write failed (e.g. the disk is full): nothing written, see `error`
  };
  Status status = Status::appended;
  std::size_t appended = 0;          ///< records of this call now in the buffer
  std::size_t refused = 0;           ///< records of this call not in the buffer
  std::uint64_t dropped_oldest = 0;  ///< older unacknowledged records deleted to make room
  std::uint64_t bytes = 0;           ///< on-disk size of this batch (for wait_for_space)
  std::string error;                 ///< io_error only
};

/// Records read together; acknowledge `handle` once they are delivered.
struct Chunk {
  struct Handle {
    std::uint64_t segment = 0;  ///< segment id
    std::uint64_t begin = 0;    ///< offset of the first frame
    std::uint64_t end = 0;      ///< offset just past the last frame
    std::uint64_t records = 0;  ///< number of records
  };
  std::vector<sdk::Record> records;  ///< reused across read() calls (allocations kept)
  Handle handle;
  std::uint64_t bytes = 0;  ///< frame bytes on disk
};

struct DiskBufferStats {
  std::uint64_t records = 0;   ///< unacknowledged records (unread and in flight)
  std::uint64_t bytes = 0;     ///< bytes of segment files on disk
  std::uint64_t segments = 0;  ///< segment files on disk
  /// Append time of the oldest unacknowledged record (none when there is none).
  std::optional<sdk::Timestamp> oldest_append_time;
  std::uint64_t appended_total = 0;        ///< records appended since open
  std::uint64_t dropped_oldest_total = 0;  ///< unacknowledged records deleted by drop_oldest
  std::uint64_t refused_total = 0;         ///< records refused (dropped/too_large/io_error)
  std::uint64_t corrupt_total = 0;         ///< records cut or skipped as corrupt, since open
  /// Failed ledger writes and failed fdatasync/fsync calls (durability not guaranteed).
  std::uint64_t io_errors_total = 0;
};

class DiskBuffer {
 public:
  /// Opens (or creates) the buffer in options.path: takes an exclusive lock on the directory,
  /// verifies every segment's checksums, cuts torn or corrupt tails (reported, never fatal),
  /// and positions the reader after the acknowledged records. Throws DiskBufferError.
  static std::unique_ptr<DiskBuffer> open(const DiskBufferOptions& options, OpenReport& report);

  /// Syncs everything to disk and closes; wakes any waiter.
  ~DiskBuffer();
  DiskBuffer(const DiskBuffer&) = delete;
  DiskBuffer& operator=(const DiskBuffer&) = delete;

  /// Appends the records as one unit (all or none), thread-safe. Encoding and checksums are
  /// computed before taking the lock; one write() per call.
  AppendResult append(std::span<const sdk::Record> records);

  /// Any thread. Blocks until `bytes` (AppendResult::bytes of a `full` result) would fit, or
  /// the deadline, or close_waiters(). Returns true when they would fit now.
  bool wait_for_space(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline);

  /// Reader thread only. Reads the next unread records in append order, at most max_records
  /// and max_bytes (at least one record when any is unread; a chunk never spans two segments).
  /// Returns false when nothing is unread.
  bool read(std::size_t max_records, std::size_t max_bytes, Chunk& out);

  /// Reader thread. Blocks until there is something to read, or the deadline, or
  /// close_waiters(). True if readable.
  bool wait_readable(std::chrono::steady_clock::time_point deadline);

  /// Any thread. Marks a chunk delivered. Chunks may be acknowledged in any order; the position
  /// advances over contiguous acknowledged chunks, and acknowledged chunks beyond it are kept
  /// in the ledger too (up to kMaxLedgerRanges), so none is read again after a reopen.
  /// Acknowledging a chunk twice, or one whose segment was dropped, is harmless.
  void acknowledge(const Chunk::Handle& handle);

  /// Wakes every waiter (wait_readable, wait_for_space return at once from now on), e.g. at
  /// shutdown; appends, reads and acknowledgements keep working.
  void close_waiters();

  /// Any thread; takes the lock briefly (and reads one frame header for the oldest time).
  [[nodiscard]] DiskBufferStats stats() const;
  [[nodiscard]] const DiskBufferOptions& options() const noexcept;

  /// Acknowledged chunks beyond the contiguous position that the ledger can hold.
  static constexpr std::size_t kMaxLedgerRanges = 120;

 private:
  struct State;
  explicit DiskBuffer(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace webmon::delivery
