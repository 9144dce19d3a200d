// Snapshot encoding and atomic file I/O (see snapshot.hpp).
//
// Format (little-endian): the magic "webmon-status-page 1\n", a u64 target count, then per
// target: name, url, group (u32 length + bytes), checks u64, last_time i64, last_success u8,
// last_status i32, last_ms f64, last_error_time i64, last_error, last_error_message,
// cert_not_after i64, a u32 count of non-empty buckets and each (hour i32, checks u32,
// failures u32), a u32 count of samples and each (ms f32, ok u8), oldest first. The file ends
// with the FNV-1a 64 hash of everything before it.
#include "snapshot.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace webmon::plugins::status_page {
namespace {

constexpr std::string_view kMagic = "webmon-status-page 1\n";

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out_.append(buf, sizeof(T));
  }
  void str(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = get<std::uint32_t>();
    need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  [[nodiscard]] std::size_t remaining() const { return in_.size() - pos_; }

 private:
  void need(std::size_t n) const {
    if (in_.size() - pos_ < n) {
      throw SnapshotError("truncated at byte " + std::to_string(pos_));
    }
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string encode_snapshot(const StatusModel& model) {
  std::string out;
  const auto states = model.states();
  out.reserve(64 + states.size() * 1024);
  out.append(kMagic);
  Writer w(out);
  w.put(static_cast<std::uint64_t>(states.size()));
  for (const TargetState* t : states) {
    w.str(t->name);
    w.str(t->url);
    w.str(t->group);
    w.put(t->checks);
    w.put(t->last_time_us);
    w.put(static_cast<std::uint8_t>(t->last_success ? 1 : 0));
    w.put(static_cast<std::int32_t>(t->last_status));
    w.put(t->last_ms);
    w.put(t->last_error_time_us);
    w.str(t->last_error);
    w.str(t->last_error_message);
    w.put(t->cert_not_after_us);
    std::uint32_t used = 0;
    for (const auto& b : t->buckets) {
      used += b.hour >= 0 ? 1 : 0;
    }
    w.put(used);
    for (const auto& b : t->buckets) {
      if (b.hour >= 0) {
        w.put(b.hour);
        w.put(b.checks);
        w.put(b.failures);
      }
    }
    const auto samples = t->ordered_samples();
    w.put(static_cast<std::uint32_t>(samples.size()));
    for (const auto& s : samples) {
      w.put(s.ms);
      w.put(static_cast<std::uint8_t>(s.ok ? 1 : 0));
    }
  }
  w.put(fnv1a(out));
  return out;
}

std::size_t decode_snapshot(std::string_view data, StatusModel& model) {
  if (data.size() < kMagic.size() + 16 || data.substr(0, kMagic.size()) != kMagic) {
    throw SnapshotError("not a status_page snapshot (unknown header)");
  }
  const std::string_view body = data.substr(0, data.size() - 8);
  std::uint64_t stored_hash = 0;
  std::memcpy(&stored_hash, data.data() + body.size(), 8);
  if (stored_hash != fnv1a(body)) {
    throw SnapshotError("checksum mismatch (the file is damaged or truncated)");
  }
  Reader r(body.substr(kMagic.size()));
  const auto count = r.get<std::uint64_t>();
  std::vector<TargetState> states;
  for (std::uint64_t i = 0; i < count; ++i) {
    TargetState t;
    t.name = r.str();
    t.url = r.str();
    t.group = r.str();
    t.checks = r.get<std::uint64_t>();
    t.last_time_us = r.get<std::int64_t>();
    t.last_success = r.get<std::uint8_t>() != 0;
    t.last_status = r.get<std::int32_t>();
    t.last_ms = r.get<double>();
    t.last_error_time_us = r.get<std::int64_t>();
    t.last_error = r.str();
    t.last_error_message = r.str();
    t.cert_not_after_us = r.get<std::int64_t>();
    const auto used = r.get<std::uint32_t>();
    if (used > kBucketCount) {
      throw SnapshotError("target '" + t.name + "': " + std::to_string(used) + " buckets");
    }
    for (std::uint32_t k = 0; k < used; ++k) {
      Bucket b;
      b.hour = r.get<std::int32_t>();
      b.checks = r.get<std::uint32_t>();
      b.failures = r.get<std::uint32_t>();
      if (b.hour < 0 || b.failures > b.checks) {
        throw SnapshotError("target '" + t.name + "': invalid bucket");
      }
      t.buckets[static_cast<std::size_t>(b.hour) % kBucketCount] = b;
    }
    const auto n = r.get<std::uint32_t>();
    if (n > r.remaining() / 5) {
      throw SnapshotError("target '" + t.name + "': truncated samples");
    }
    t.samples.resize(n);
    for (std::uint32_t k = 0; k < n; ++k) {
      t.samples[k].ms = r.get<float>();
      t.samples[k].ok = r.get<std::uint8_t>() != 0;
    }
    t.sample_next = 0;
    t.sample_count = n;
    states.push_back(std::move(t));
  }
  if (r.remaining() != 0) {
    throw SnapshotError(std::to_string(r.remaining()) + " unexpected bytes at the end");
  }
  // Only a fully valid file changes the model.
  for (auto& t : states) {
    model.restore(std::move(t));
  }
  return states.size();
}

void write_file_atomically(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw SnapshotError("cannot create '" + tmp + "': " + errno_text());
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw SnapshotError("cannot write '" + tmp + "': " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw SnapshotError("cannot sync '" + tmp + "': " + why);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw SnapshotError("cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
  // Make the rename itself durable.
  const std::size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

bool read_file(const std::string& path, std::string& out) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SnapshotError("cannot open '" + path + "': " + errno_text());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    throw SnapshotError("cannot read '" + path + "': " + errno_text());
  }
  out = std::move(ss).str();
  return true;
}

}  // namespace webmon::plugins::status_page
