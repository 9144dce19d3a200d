// DiskBuffer implementation. One mutex guards the segment list, the positions and the
// counters; encoding, checksums and the reader's pread/decode run outside it, fdatasync runs
// on a background thread. The format is described in README.md.
#include "delivery/disk_buffer.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "delivery/crc32c.hpp"
#include "delivery/record_codec.hpp"

namespace webmon::delivery {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kSegmentHeaderSize = 16;
constexpr std::uint64_t kFrameHeaderSize = 16;
constexpr std::uint32_t kMaxFrameLen = 1u << 30;
constexpr char kSegmentMagic[4] = {'W', 'M', 'D', 'B'};
constexpr std::uint8_t kFormatVersion = 1;
constexpr std::uint32_t kLedgerMagic = 0x4C444D57;  // "WMDL"
constexpr std::size_t kLedgerSlotSize = 4096;
constexpr std::size_t kLedgerHeaderSize = 40;
constexpr std::size_t kLedgerRangeSize = 32;
static_assert(kLedgerHeaderSize + DiskBuffer::kMaxLedgerRanges * kLedgerRangeSize <=
              kLedgerSlotSize);
constexpr const char* kLedgerName = "ledger";
constexpr const char* kLockName = "lock";
constexpr const char* kSegmentPrefix = "segment-";
constexpr const char* kSegmentSuffix = ".wmdb";

void put32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i)));
  }
}
void put64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<char>(static_cast<std::uint8_t>(v >> (8 * i)));
  }
}
std::uint32_t get32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[i])) << (8 * i);
  }
  return v;
}
std::uint64_t get64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(p[i])) << (8 * i);
  }
  return v;
}

// CRC of a frame: its length field, then append time and payload (the crc field is skipped).
std::uint32_t frame_crc(const char* frame, std::uint32_t len) {
  return crc32c(crc32c(0, frame, 4), frame + 8, 8 + static_cast<std::size_t>(len));
}

std::string errno_text(int err) { return std::system_category().message(err); }

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool pwrite_all(int fd, const char* p, std::size_t n, std::uint64_t off, int& err) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
  return true;
}

// Reads up to n bytes; fewer only at end of file.
bool pread_all(int fd, char* p, std::size_t n, std::uint64_t off, std::size_t& got, int& err) {
  got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

struct File {
  int fd = -1;
  explicit File(int f) : fd(f) {}
  ~File() {
    if (fd >= 0) ::close(fd);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
};

struct Pos {
  std::uint64_t seg = 0;
  std::uint64_t off = 0;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads the defaulted <=>
  friend auto operator<=>(const Pos&, const Pos&) = default;
};

struct AheadRange {
  Pos end;
  std::uint64_t records = 0;
};

struct Segment {
  std::uint64_t id = 0;
  fs::path path;
  std::shared_ptr<File> file;
  std::uint64_t size = 0;      // valid bytes (header included)
  std::uint64_t records = 0;   // frames
  std::uint64_t acked = 0;     // records acknowledged (contiguous or ahead)
  std::uint64_t inflight = 0;  // records read and not yet acknowledged
  bool sealed = false;
  bool dirty = false;  // written since the last fdatasync
};

std::string segment_name(std::uint64_t id) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%020llu%s", kSegmentPrefix, static_cast<unsigned long long>(id),
                kSegmentSuffix);
  return buf;
}

std::optional<std::uint64_t> parse_segment_name(const std::string& name) {
  const std::string_view n(name);
  const std::string_view pre(kSegmentPrefix);
  const std::string_view suf(kSegmentSuffix);
  if (n.size() != pre.size() + 20 + suf.size() || !n.starts_with(pre) || !n.ends_with(suf)) {
    return std::nullopt;
  }
  std::uint64_t id = 0;
  for (char c : n.substr(pre.size(), 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return id;
}

// Sequential reader over a file with a sliding window, for the scan at open.
class Window {
 public:
  Window(int fd, std::uint64_t file_size) : fd_(fd), size_(file_size) {}
  // Makes [off, off+n) available; false if the file is shorter.
  const char* get(std::uint64_t off, std::size_t n) {
    if (off + n > size_) return nullptr;
    if (off < start_ || off + n > start_ + buf_.size()) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::max<std::size_t>(n, 1 << 20), size_ - off));
      buf_.resize(want);
      std::size_t got = 0;
      int err = 0;
      if (!pread_all(fd_, buf_.data(), want, off, got, err) || got < n) {
        buf_.clear();
        return nullptr;
      }
      buf_.resize(got);
      start_ = off;
    }
    return buf_.data() + (off - start_);
  }

 private:
  int fd_;
  std::uint64_t size_;
  std::uint64_t start_ = 0;
  std::string buf_;
};

// Counts what looks like frames in [off, size): at least 1 when the region is not empty.
std::uint64_t count_frames_in_cut(Window& w, std::uint64_t off, std::uint64_t size) {
  std::uint64_t n = 0;
  while (off + kFrameHeaderSize <= size) {
    const char* h = w.get(off, kFrameHeaderSize);
    if (h == nullptr) break;
    const std::uint32_t len = get32(h);
    if (len == 0 || len > kMaxFrameLen) break;
    ++n;
    off += kFrameHeaderSize + len;
  }
  return off < size ? std::max<std::uint64_t>(n, 1) : n;
}

}  // namespace

struct DiskBuffer::State {
  DiskBufferOptions opt;
  int dir_fd = -1;
  int lock_fd = -1;
  int ledger_fd = -1;

  mutable std::mutex mu;
  std::condition_variable readable_cv;
  std::condition_variable space_cv;
  std::condition_variable sync_cv;

  std::deque<Segment> segs;         // ascending ids; back() is the active (append) segment
  Pos ack;                          // every record before it is acknowledged
  Pos rd;                           // next record to read
  std::map<Pos, AheadRange> ahead;  // acknowledged chunks beyond `ack`, keyed by begin

  std::uint64_t total_bytes = 0;
  std::uint64_t buffered = 0;
  std::uint64_t appended_total = 0;
  std::uint64_t dropped_oldest_total = 0;
  std::uint64_t refused_total = 0;
  std::uint64_t corrupt_total = 0;
  std::uint64_t io_errors_total = 0;

  std::uint64_t ledger_seq = 0;
  bool ledger_dirty = false;
  bool dir_dirty = false;
  std::vector<std::shared_ptr<File>> to_sync;  // sealed segments awaiting fdatasync
  bool closed = false;
  bool stopping = false;
  std::thread sync_thread;

  std::string rbuf;  // reader thread only

  ~State() {
    if (ledger_fd >= 0) ::close(ledger_fd);
    if (dir_fd >= 0) ::close(dir_fd);
    if (lock_fd >= 0) ::close(lock_fd);
  }

  Segment* find(std::uint64_t id) {
    auto it = std::lower_bound(segs.begin(), segs.end(), id,
                               [](const Segment& s, std::uint64_t v) { return s.id < v; });
    return it != segs.end() && it->id == id ? &*it : nullptr;
  }
  // First segment with an id greater than `id` (the active one always exists).
  Segment* next_after(std::uint64_t id) {
    auto it = std::upper_bound(segs.begin(), segs.end(), id,
                               [](std::uint64_t v, const Segment& s) { return v < s.id; });
    return it != segs.end() ? &*it : nullptr;
  }

  // Moves p off deleted segments and off the end of sealed ones.
  void normalize(Pos& p) {
    for (;;) {
      Segment* s = find(p.seg);
      if (s == nullptr) {
        Segment* n = next_after(p.seg);
        if (n == nullptr) return;  // cannot happen: the active segment has the highest id
        p = {n->id, kSegmentHeaderSize};
        continue;
      }
      if (p.off < kSegmentHeaderSize) p.off = kSegmentHeaderSize;
      if (p.off >= s->size && s->sealed) {
        Segment* n = next_after(p.seg);
        if (n == nullptr) return;
        p = {n->id, kSegmentHeaderSize};
        continue;
      }
      return;
    }
  }

  // The reader's position, past acknowledged ranges (which exist beyond it only after open).
  Segment* normalize_rd() {
    for (;;) {
      if (rd < ack) rd = ack;  // acknowledged meanwhile (ranges read again after a reopen)
      normalize(rd);
      auto it = ahead.find(rd);
      if (it == ahead.end()) break;
      rd = it->second.end;
    }
    return find(rd.seg);
  }

  void write_ledger() {
    char buf[kLedgerSlotSize];
    std::memset(buf, 0, sizeof buf);
    const std::size_t n = std::min(ahead.size(), kMaxLedgerRanges);
    ++ledger_seq;
    put32(buf, kLedgerMagic);
    put64(buf + 8, ledger_seq);
    put64(buf + 16, ack.seg);
    put64(buf + 24, ack.off);
    put32(buf + 32, static_cast<std::uint32_t>(n));
    char* p = buf + kLedgerHeaderSize;
    std::size_t i = 0;
    for (auto it = ahead.begin(); it != ahead.end() && i < n; ++it, ++i) {
      put64(p, it->first.seg);
      put64(p + 8, it->first.off);
      put64(p + 16, it->second.end.off);
      put64(p + 24, it->second.records);
      p += kLedgerRangeSize;
    }
    const std::size_t used = kLedgerHeaderSize + n * kLedgerRangeSize;
    put32(buf + 4, crc32c(0, buf + 8, used - 8));
    int err = 0;
    // Two alternating slots: a torn write spoils at most the slot being written.
    if (!pwrite_all(ledger_fd, buf, used, (ledger_seq % 2) * kLedgerSlotSize, err)) {
      ++io_errors_total;
      return;
    }
    ledger_dirty = true;
    if (opt.sync_interval.count() == 0) {
      io_errors_total += ::fdatasync(ledger_fd) != 0 ? 1 : 0;
      ledger_dirty = false;
    }
  }

  void delete_segment_front() {
    Segment& s = segs.front();
    const std::uint64_t unacked = s.records - s.acked;
    buffered -= unacked;
    total_bytes -= s.size;
    ::unlink(s.path.c_str());
    dir_dirty = true;
    for (auto it = ahead.begin(); it != ahead.end();) {
      it = it->first.seg == s.id ? ahead.erase(it) : std::next(it);
    }
    segs.pop_front();
    space_cv.notify_all();
  }

  // Advances `ack` over contiguous acknowledged ranges and deletes the segments behind it.
  // Returns true when the position moved.
  bool advance_ack() {
    const Pos before = ack;
    for (;;) {
      normalize(ack);
      auto it = ahead.find(ack);
      if (it == ahead.end()) break;
      ack = it->second.end;
      ahead.erase(it);
    }
    while (!segs.empty() && segs.front().id < ack.seg) {
      delete_segment_front();
    }
    return ack != before;
  }

  // Seals the active segment and starts a new one.
  bool rotate(std::string& error) {
    Segment& old = segs.back();
    const std::uint64_t id = old.id + 1;
    Segment s;
    if (!create_segment(id, s, error)) return false;
    old.sealed = true;
    if (old.dirty) {
      to_sync.push_back(old.file);
      old.dirty = false;
    }
    segs.push_back(std::move(s));
    if (advance_ack()) write_ledger();
    readable_cv.notify_all();
    return true;
  }

  bool create_segment(std::uint64_t id, Segment& s, std::string& error) {
    s.id = id;
    s.path = opt.path / segment_name(id);
    const int fd = ::open(s.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      error = "cannot create " + s.path.string() + ": " + errno_text(errno);
      return false;
    }
    s.file = std::make_shared<File>(fd);
    char h[kSegmentHeaderSize] = {};
    std::memcpy(h, kSegmentMagic, 4);
    h[4] = static_cast<char>(kFormatVersion);
    put64(h + 8, id);
    int err = 0;
    if (!pwrite_all(fd, h, sizeof h, 0, err)) {
      error = "cannot write " + s.path.string() + ": " + errno_text(err);
      ::unlink(s.path.c_str());
      return false;
    }
    s.size = kSegmentHeaderSize;
    s.dirty = true;
    total_bytes += kSegmentHeaderSize;
    dir_dirty = true;
    if (opt.sync_interval.count() == 0) {
      ::fdatasync(fd);
      ::fsync(dir_fd);
      s.dirty = false;
      dir_dirty = false;
    }
    return true;
  }

  // Bytes that rotating away a fully acknowledged active segment would free.
  std::uint64_t reclaimable() const {
    const Segment& a = segs.back();
    return ack == Pos{a.id, a.size} && a.size > kSegmentHeaderSize ? a.size - kSegmentHeaderSize
                                                                   : 0;
  }

  void sync_loop() {
    std::unique_lock lock(mu);
    for (;;) {
      if (opt.sync_interval.count() == 0) {
        sync_cv.wait(lock, [&] { return stopping; });  // appends sync themselves
      } else if (!stopping) {
        sync_cv.wait_for(lock, opt.sync_interval, [&] { return stopping; });
      }
      std::vector<std::shared_ptr<File>> files = std::move(to_sync);
      to_sync.clear();
      if (!segs.empty() && segs.back().dirty) {
        files.push_back(segs.back().file);
        segs.back().dirty = false;
      }
      const bool ledger = std::exchange(ledger_dirty, false);
      const bool dir = std::exchange(dir_dirty, false);
      const bool stop = stopping;
      lock.unlock();
      std::uint64_t errors = 0;
      for (const auto& f : files) errors += ::fdatasync(f->fd) != 0 ? 1 : 0;
      if (ledger) errors += ::fdatasync(ledger_fd) != 0 ? 1 : 0;
      if (dir) errors += ::fsync(dir_fd) != 0 ? 1 : 0;
      files.clear();
      lock.lock();
      io_errors_total += errors;
      if (stop) return;
    }
  }
};

DiskBuffer::DiskBuffer(std::unique_ptr<State> state) : s_(std::move(state)) {}

DiskBuffer::~DiskBuffer() {
  {
    std::lock_guard lock(s_->mu);
    s_->closed = true;
    s_->stopping = true;
    s_->write_ledger();
  }
  s_->readable_cv.notify_all();
  s_->space_cv.notify_all();
  s_->sync_cv.notify_all();
  if (s_->sync_thread.joinable()) s_->sync_thread.join();
}

const DiskBufferOptions& DiskBuffer::options() const noexcept { return s_->opt; }

void DiskBuffer::close_waiters() {
  {
    std::lock_guard lock(s_->mu);
    s_->closed = true;
  }
  s_->readable_cv.notify_all();
  s_->space_cv.notify_all();
}

std::unique_ptr<DiskBuffer> DiskBuffer::open(const DiskBufferOptions& options, OpenReport& report) {
  report = OpenReport{};
  const std::string where = "disk buffer '" + options.path.string() + "'";
  if (options.path.empty()) {
    throw DiskBufferError("disk buffer: path is empty; set path to a directory for the buffer");
  }
  if (options.segment_size < 4096) {
    throw DiskBufferError(where + ": segment_size " + std::to_string(options.segment_size) +
                          " is below the minimum of 4096 bytes");
  }
  if (options.max_size < 2 * options.segment_size) {
    throw DiskBufferError(where + ": max_size " + std::to_string(options.max_size) +
                          " must be at least twice segment_size (" +
                          std::to_string(options.segment_size) +
                          "); raise max_size or lower segment_size");
  }
  if (options.sync_interval.count() < 0) {
    throw DiskBufferError(where + ": sync_interval must not be negative");
  }
  auto st = std::make_unique<State>();
  st->opt = options;
  State& s = *st;

  std::error_code ec;
  fs::create_directories(options.path, ec);
  if (ec) {
    throw DiskBufferError(where + ": cannot create the directory: " + ec.message() +
                          "; create it or choose a writable path");
  }
  s.dir_fd = ::open(options.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s.dir_fd < 0) {
    throw DiskBufferError(where + ": cannot open the directory: " + errno_text(errno));
  }
  const fs::path lock_path = options.path / kLockName;
  s.lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s.lock_fd < 0) {
    throw DiskBufferError(where + ": the directory is not writable (creating " +
                          lock_path.string() + ": " + errno_text(errno) +
                          "); fix its permissions or choose another path");
  }
  if (::flock(s.lock_fd, LOCK_EX | LOCK_NB) != 0) {
    throw DiskBufferError(where + ": already in use by another disk buffer (" + lock_path.string() +
                          " is locked); give each sink its own path");
  }
  const fs::path ledger_path = options.path / kLedgerName;
  s.ledger_fd = ::open(ledger_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s.ledger_fd < 0) {
    throw DiskBufferError(where + ": cannot open " + ledger_path.string() + ": " +
                          errno_text(errno));
  }

  // The ledger: the valid slot with the highest sequence number.
  struct LedgerRange {
    Pos begin;
    Pos end;
    std::uint64_t records;
  };
  Pos ledger_ack{0, 0};
  std::vector<LedgerRange> ledger_ranges;
  for (int slot = 0; slot < 2; ++slot) {
    char buf[kLedgerSlotSize];
    std::size_t got = 0;
    int err = 0;
    if (!pread_all(s.ledger_fd, buf, sizeof buf, static_cast<std::uint64_t>(slot) * kLedgerSlotSize,
                   got, err) ||
        got < kLedgerHeaderSize || get32(buf) != kLedgerMagic) {
      continue;
    }
    const std::uint32_t n = get32(buf + 32);
    if (n > kMaxLedgerRanges || kLedgerHeaderSize + n * kLedgerRangeSize > got) continue;
    const std::size_t used = kLedgerHeaderSize + n * kLedgerRangeSize;
    if (crc32c(0, buf + 8, used - 8) != get32(buf + 4)) continue;
    const std::uint64_t seq = get64(buf + 8);
    if (report.ledger_found && seq <= s.ledger_seq) continue;
    report.ledger_found = true;
    s.ledger_seq = seq;
    ledger_ack = {get64(buf + 16), get64(buf + 24)};
    ledger_ranges.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
      const char* p = buf + kLedgerHeaderSize + i * kLedgerRangeSize;
      ledger_ranges.push_back({{get64(p), get64(p + 8)}, {get64(p), get64(p + 16)}, get64(p + 24)});
    }
  }

  // Segment files, in id order.
  std::vector<std::pair<std::uint64_t, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(options.path, ec)) {
    if (auto id = parse_segment_name(entry.path().filename().string())) {
      found.emplace_back(*id, entry.path());
    }
  }
  if (ec) {
    throw DiskBufferError(where + ": cannot list the directory: " + ec.message());
  }
  std::sort(found.begin(), found.end());

  std::uint64_t max_id = ledger_ack.seg;
  for (const auto& [id, path] : found) {
    max_id = std::max(max_id, id);
    if (report.ledger_found && id < ledger_ack.seg) {
      ::unlink(path.c_str());  // fully acknowledged; its deletion did not happen before a stop
      s.dir_dirty = true;
      continue;
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      throw DiskBufferError(where + ": cannot open " + path.string() + ": " + errno_text(errno));
    }
    auto file = std::make_shared<File>(fd);
    struct stat sb {};
    if (::fstat(fd, &sb) != 0) {
      throw DiskBufferError(where + ": cannot stat " + path.string() + ": " + errno_text(errno));
    }
    const auto file_size = static_cast<std::uint64_t>(sb.st_size);
    if (file_size == 0) {  // created just before a stop, header not written yet: nothing lost
      ::unlink(path.c_str());
      s.dir_dirty = true;
      continue;
    }
    Window w(fd, file_size);
    const char* h = w.get(0, kSegmentHeaderSize);
    if (h == nullptr || std::memcmp(h, kSegmentMagic, 4) != 0 ||
        static_cast<std::uint8_t>(h[4]) != kFormatVersion || get64(h + 8) != id) {
      const std::uint64_t frames = file_size > kSegmentHeaderSize
                                       ? count_frames_in_cut(w, kSegmentHeaderSize, file_size)
                                       : 0;
      report.records_cut += frames;
      report.bytes_cut += file_size;
      report.problems.push_back(
          path.string() + ": offset 0: " +
          (h == nullptr ? "shorter than its header" : "bad header (not a segment of this format)") +
          "; removed the file (" + std::to_string(file_size) + " bytes, about " +
          std::to_string(frames) + " records)");
      ::unlink(path.c_str());
      s.dir_dirty = true;
      continue;
    }
    Segment seg;
    seg.id = id;
    seg.path = path;
    seg.file = file;
    seg.sealed = true;
    std::uint64_t off = kSegmentHeaderSize;
    std::uint64_t before_ack = 0;
    const bool is_ack_seg = report.ledger_found && id == ledger_ack.seg;
    const char* problem = nullptr;
    while (off < file_size) {
      const char* fh = w.get(off, kFrameHeaderSize);
      if (fh == nullptr) {
        problem = "torn frame header (file ends mid-frame)";
        break;
      }
      const std::uint32_t len = get32(fh);
      if (len == 0 || len > kMaxFrameLen) {
        problem = "invalid frame length";
        break;
      }
      const char* frame = w.get(off, kFrameHeaderSize + len);
      if (frame == nullptr) {
        problem = "torn frame (file ends mid-frame)";
        break;
      }
      if (frame_crc(frame, len) != get32(frame + 4)) {
        problem = "checksum mismatch";
        break;
      }
      off += kFrameHeaderSize + len;
      ++seg.records;
      if (is_ack_seg && off <= ledger_ack.off) ++before_ack;
    }
    if (problem != nullptr) {
      const std::uint64_t frames = count_frames_in_cut(w, off, file_size);
      report.records_cut += frames;
      report.bytes_cut += file_size - off;
      report.problems.push_back(path.string() + ": offset " + std::to_string(off) + ": " + problem +
                                "; cut " + std::to_string(file_size - off) + " bytes (about " +
                                std::to_string(frames) + " records)");
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        throw DiskBufferError(where + ": cannot truncate " + path.string() + ": " +
                              errno_text(errno));
      }
      seg.dirty = true;
      s.to_sync.push_back(file);
    }
    seg.size = off;
    seg.acked = before_ack;
    s.total_bytes += seg.size;
    s.segs.push_back(std::move(seg));
  }
  s.corrupt_total = report.records_cut;
  report.segments = s.segs.size();
  report.bytes = s.total_bytes;

  // The active segment: the last one found if it has room and comes after the acknowledged
  // position, else a new one after every id seen (the ledger's included).
  if (!s.segs.empty() && s.segs.back().size < options.segment_size &&
      s.segs.back().id >= ledger_ack.seg) {
    s.segs.back().sealed = false;
  } else {
    Segment active;
    std::string error;
    if (!s.create_segment(max_id + 1, active, error)) {
      throw DiskBufferError(where + ": " + error);
    }
    s.segs.push_back(std::move(active));
  }

  // Positions.
  if (report.ledger_found && s.find(ledger_ack.seg) != nullptr) {
    s.ack = ledger_ack;
    s.ack.off = std::min(s.ack.off, s.find(ledger_ack.seg)->size);
  } else if (report.ledger_found) {
    s.ack = {ledger_ack.seg, kSegmentHeaderSize};  // normalize() moves it to the next segment
  } else {
    s.ack = {s.segs.front().id, kSegmentHeaderSize};
  }
  s.normalize(s.ack);
  for (auto r : ledger_ranges) {
    Segment* seg = s.find(r.begin.seg);
    if (seg == nullptr || r.begin < s.ack || r.begin.off >= seg->size || r.end.off <= r.begin.off) {
      continue;  // its records were cut or dropped
    }
    if (r.end.off > seg->size) {
      // The tail of the range was cut: the frames left in it are still acknowledged.
      r.end.off = seg->size;
      r.records = 0;
      Window w(seg->file->fd, seg->size);
      for (std::uint64_t off = r.begin.off; off + kFrameHeaderSize <= seg->size; ++r.records) {
        const char* fh = w.get(off, kFrameHeaderSize);
        if (fh == nullptr) break;
        off += kFrameHeaderSize + get32(fh);
      }
    }
    if (r.records == 0 || r.records > seg->records - seg->acked) continue;
    seg->acked += r.records;
    s.ahead.emplace(r.begin, AheadRange{r.end, r.records});
  }
  for (const auto& seg : s.segs) s.buffered += seg.records - seg.acked;
  s.advance_ack();
  s.rd = s.ack;
  s.write_ledger();

  report.records = s.buffered;
  s.sync_thread = std::thread([&s] { s.sync_loop(); });
  return std::unique_ptr<DiskBuffer>(new DiskBuffer(std::move(st)));
}

AppendResult DiskBuffer::append(std::span<const sdk::Record> records) {
  AppendResult result;
  if (records.empty()) return result;
  thread_local std::string buf;
  buf.clear();
  const std::int64_t now = now_micros();
  for (const auto& r : records) {
    const std::size_t h = buf.size();
    buf.resize(h + kFrameHeaderSize);
    encode_record(r, buf);
    const auto len = static_cast<std::uint32_t>(buf.size() - h - kFrameHeaderSize);
    char* frame = buf.data() + h;
    put32(frame, len);
    put64(frame + 8, static_cast<std::uint64_t>(now));
    put32(frame + 4, frame_crc(frame, len));
  }
  const std::uint64_t bytes = buf.size();
  const std::size_t n = records.size();
  result.bytes = bytes;

  State& s = *s_;
  // One segment header is always kept free, for the new segment a reopen may create.
  const std::uint64_t budget = s.opt.max_size - kSegmentHeaderSize;
  std::unique_lock lock(s.mu);
  auto refuse = [&](AppendResult::Status status) {
    result.status = status;
    result.refused = n;
    if (status != AppendResult::Status::full) s.refused_total += n;
    return result;
  };
  if (bytes + kSegmentHeaderSize > budget) {
    return refuse(AppendResult::Status::too_large);
  }
  std::string error;
  // A fully acknowledged active segment is given up when its space is needed.
  if (s.total_bytes + bytes > budget && s.reclaimable() > 0 && !s.rotate(error)) {
    result.error = error;
    return refuse(AppendResult::Status::io_error);
  }
  for (;;) {
    const Segment& a = s.segs.back();
    const bool will_rotate = a.size > kSegmentHeaderSize && a.size + bytes > s.opt.segment_size;
    const std::uint64_t need = bytes + (will_rotate ? kSegmentHeaderSize : 0);
    if (s.total_bytes + need <= budget) {
      if (will_rotate && !s.rotate(error)) {
        result.error = error;
        return refuse(AppendResult::Status::io_error);
      }
      break;
    }
    if (s.opt.when_full == WhenFull::block) return refuse(AppendResult::Status::full);
    if (s.opt.when_full == WhenFull::drop_newest) return refuse(AppendResult::Status::dropped);
    // drop_oldest: the oldest segment goes; the active one is replaced first if it is the only.
    if (s.segs.size() == 1 && !s.rotate(error)) {
      result.error = error;
      return refuse(AppendResult::Status::io_error);
    }
    if (s.segs.size() > 1) {
      const Segment& f = s.segs.front();
      const std::uint64_t unacked = f.records - f.acked;
      result.dropped_oldest += unacked;
      s.dropped_oldest_total += unacked;
      const std::uint64_t id = f.id;
      s.delete_segment_front();
      if (s.ack.seg <= id) s.ack = {s.segs.front().id, kSegmentHeaderSize};
      if (s.rd.seg <= id) s.rd = {s.segs.front().id, kSegmentHeaderSize};
      s.advance_ack();
      s.write_ledger();
    }
  }
  Segment& a = s.segs.back();
  int err = 0;
  if (!pwrite_all(a.file->fd, buf.data(), buf.size(), a.size, err)) {
    if (::ftruncate(a.file->fd, static_cast<off_t>(a.size)) != 0) {
      // The partial frame stays; the next append overwrites it at the same offset.
    }
    result.error = "writing " + a.path.string() + ": " + errno_text(err);
    return refuse(AppendResult::Status::io_error);
  }
  a.size += bytes;
  a.records += n;
  a.dirty = true;
  s.total_bytes += bytes;
  s.buffered += n;
  s.appended_total += n;
  if (s.opt.sync_interval.count() == 0) {
    s.io_errors_total += ::fdatasync(a.file->fd) != 0 ? 1 : 0;
    a.dirty = false;
  }
  lock.unlock();
  s.readable_cv.notify_one();
  if (buf.capacity() > (4u << 20)) {
    std::string().swap(buf);  // a huge batch does not pin its buffer in this thread
  }
  result.appended = n;
  return result;
}

bool DiskBuffer::wait_for_space(std::uint64_t bytes,
                                std::chrono::steady_clock::time_point deadline) {
  State& s = *s_;
  std::unique_lock lock(s.mu);
  auto fits = [&] {
    // Room for the batch, a new segment's header and the header kept free: append() then
    // succeeds unless another producer took the space first.
    return s.total_bytes - s.reclaimable() + bytes + 2 * kSegmentHeaderSize <= s.opt.max_size;
  };
  s.space_cv.wait_until(lock, deadline, [&] { return s.closed || fits(); });
  return fits();
}

bool DiskBuffer::wait_readable(std::chrono::steady_clock::time_point deadline) {
  State& s = *s_;
  std::unique_lock lock(s.mu);
  auto readable = [&] {
    const Segment* seg = s.normalize_rd();
    return seg != nullptr && s.rd.off < seg->size;
  };
  s.readable_cv.wait_until(lock, deadline, [&] { return s.closed || readable(); });
  return readable();
}

bool DiskBuffer::read(std::size_t max_records, std::size_t max_bytes, Chunk& out) {
  State& s = *s_;
  max_records = std::max<std::size_t>(max_records, 1);
  for (;;) {
    Pos pos;
    std::uint64_t limit = 0;
    std::shared_ptr<File> file;
    {
      std::lock_guard lock(s.mu);
      Segment* seg = s.normalize_rd();
      if (seg == nullptr || s.rd.off >= seg->size) return false;
      pos = s.rd;
      limit = seg->size;
      file = seg->file;
      // A chunk stops before an acknowledged range (present after a reopen only).
      auto it = s.ahead.upper_bound(pos);
      if (it != s.ahead.end() && it->first.seg == pos.seg) limit = std::min(limit, it->first.off);
    }
    // Read as much as the chunk needs: 64 KiB first, doubling, at most max_bytes (or the first
    // frame, when it alone is larger).
    const std::uint64_t avail = limit - pos.off;
    const std::uint64_t cap = std::max<std::uint64_t>(max_bytes, kFrameHeaderSize);
    std::string& b = s.rbuf;
    b.clear();
    auto fill = [&](std::uint64_t need) {
      if (b.size() >= need) return true;
      const std::uint64_t grown =
          std::min<std::uint64_t>(cap, std::max<std::uint64_t>(2 * b.size(), 64 << 10));
      const std::uint64_t target = std::min(std::max(need, grown), avail);
      const std::size_t old = b.size();
      b.resize(static_cast<std::size_t>(target));
      std::size_t got = 0;
      int err = 0;
      pread_all(file->fd, b.data() + old, b.size() - old, pos.off + old, got, err);
      b.resize(old + got);
      return b.size() >= need;
    };
    std::size_t n = 0;
    std::uint64_t off = 0;
    bool corrupt = false;
    while (n < max_records && off < avail) {
      if (avail - off < kFrameHeaderSize || !fill(off + kFrameHeaderSize)) {
        corrupt = true;  // a partial frame inside committed data, or the file shrank
        break;
      }
      const std::uint32_t len = get32(b.data() + off);
      const std::uint64_t total = kFrameHeaderSize + len;
      if (len == 0 || len > kMaxFrameLen || total > avail - off) {
        corrupt = true;
        break;
      }
      if (n > 0 && off + total > max_bytes) break;
      if (!fill(off + total)) {
        corrupt = true;
        break;
      }
      const char* frame = b.data() + off;
      if (frame_crc(frame, len) != get32(frame + 4)) {
        corrupt = true;
        break;
      }
      if (out.records.size() <= n) out.records.emplace_back();
      if (!decode_record(std::string_view(frame + kFrameHeaderSize, len), out.records[n])) {
        corrupt = true;
        break;
      }
      ++n;
      off += total;
    }
    std::lock_guard lock(s.mu);
    Segment* seg = s.find(pos.seg);
    if (seg == nullptr || seg->file != file || s.rd != pos) continue;  // dropped meanwhile
    if (n == 0 && corrupt) {
      // Skip the rest of the segment: its records count as corrupt and acknowledged.
      std::string error;
      if (!seg->sealed) {
        if (!s.rotate(error)) return false;
        seg = s.find(pos.seg);
        if (seg == nullptr) continue;
      }
      const Pos bad{pos.seg, pos.off + off};
      const std::uint64_t skipped = seg->records - seg->acked - seg->inflight;
      s.corrupt_total += skipped;
      seg->acked += skipped;
      s.buffered -= skipped;
      s.ahead.emplace(bad, AheadRange{{pos.seg, seg->size}, skipped});
      s.rd = {pos.seg, seg->size};
      s.advance_ack();
      s.write_ledger();
      continue;
    }
    out.records.resize(n);
    out.handle = {pos.seg, pos.off, pos.off + off, n};
    out.bytes = off;
    seg->inflight += n;
    s.rd = {pos.seg, pos.off + off};
    return true;
  }
}

void DiskBuffer::acknowledge(const Chunk::Handle& h) {
  State& s = *s_;
  std::lock_guard lock(s.mu);
  Segment* seg = s.find(h.segment);
  const Pos begin{h.segment, h.begin};
  if (seg == nullptr || h.records == 0 || begin < s.ack || h.end > seg->size ||
      s.ahead.contains(begin)) {
    return;  // dropped, already acknowledged, or not a chunk of this buffer
  }
  s.ahead.emplace(begin, AheadRange{{h.segment, h.end}, h.records});
  seg->acked += h.records;
  seg->inflight -= std::min(seg->inflight, h.records);
  s.buffered -= h.records;
  s.advance_ack();
  s.write_ledger();
}

DiskBufferStats DiskBuffer::stats() const {
  State& s = *s_;
  std::lock_guard lock(s.mu);
  DiskBufferStats st;
  st.records = s.buffered;
  st.bytes = s.total_bytes;
  st.segments = s.segs.size();
  st.appended_total = s.appended_total;
  st.dropped_oldest_total = s.dropped_oldest_total;
  st.refused_total = s.refused_total;
  st.corrupt_total = s.corrupt_total;
  st.io_errors_total = s.io_errors_total;
  Pos p = s.ack;
  s.normalize(p);
  if (const Segment* seg = s.find(p.seg); seg != nullptr && p.off < seg->size) {
    char h[kFrameHeaderSize];
    std::size_t got = 0;
    int err = 0;
    if (pread_all(seg->file->fd, h, sizeof h, p.off, got, err) && got == sizeof h) {
      st.oldest_append_time = sdk::Timestamp{static_cast<std::int64_t>(get64(h + 8))};
    }
  }
  return st;
}

}  // namespace webmon::delivery
