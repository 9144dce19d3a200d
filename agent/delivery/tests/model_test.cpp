// Model-based test of DiskBuffer: random sequences of append / read / acknowledge (out of order)
// / clean reopen / crash (the directory as a kill -9 leaves it: copied while the buffer is open)
// / truncated tail, checked against a plain in-memory model after every step: records are read
// in append order; after a reopen every record not acknowledged is read again, in order, and
// no acknowledged one is; counts (buffered records, bytes on disk, records cut) match.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "delivery/disk_buffer.hpp"
#include "delivery/record_codec.hpp"
#include "test_util.hpp"

namespace webmon::delivery {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kFrameHeader = 16;
constexpr std::uint64_t kSegmentHeader = 16;

struct ModelRecord {
  sdk::Record record;
  std::uint64_t frame = 0;  // bytes on disk
  bool acked = false;
  bool lost = false;  // cut off a truncated tail
};

struct InFlight {
  Chunk::Handle handle;
  std::vector<std::size_t> indices;
};

class Model {
 public:
  // max_size 0: large enough never to be full.
  Model(std::uint64_t seed, WhenFull policy, std::uint64_t max_size) : rng_(seed) {
    opt_.segment_size = 16384;
    opt_.max_size = max_size != 0 ? max_size : 256 << 20;
    opt_.when_full = policy;
    open_in(next_dir());
  }

  void step() {
    const auto op = rng_() % 100;
    if (op < 22) {
      append();
    } else if (op < 62) {
      read();
    } else if (op < 91) {
      acknowledge();
    } else if (op < 94) {
      reopen_clean();
    } else if (op < 97) {
      crash(false);
    } else {
      crash(true);
    }
    check_counts();
  }

  void finish() {
    while (!in_flight_.empty()) acknowledge();
    while (!unread_.empty() && !::testing::Test::HasFailure()) {
      read();
      while (!in_flight_.empty()) acknowledge();
    }
    Chunk c;
    EXPECT_FALSE(buffer_->read(1000, 1 << 20, c));
    EXPECT_TRUE(unread_.empty());
    EXPECT_EQ(buffer_->stats().records, 0u);
    // Only the active segment is left.
    EXPECT_EQ(test::segment_files(dir_).size(), 1u);
    check_counts();
  }

  std::uint64_t reopens = 0;
  std::uint64_t crashes = 0;
  std::uint64_t truncations = 0;
  std::uint64_t lost = 0;
  std::uint64_t max_segments = 0;
  std::uint64_t full = 0;
  std::uint64_t refused = 0;
  std::uint64_t dropped = 0;

 private:
  fs::path next_dir() { return root_.path() / std::to_string(dirs_++); }

  void open_in(const fs::path& dir) {
    dir_ = dir;
    opt_.path = dir;
    buffer_ = DiskBuffer::open(opt_, report_);
  }

  void append() {
    const std::size_t n = 1 + rng_() % 8;
    std::vector<sdk::Record> batch;
    for (std::size_t i = 0; i < n; ++i) {
      sdk::Record r = test::check_record(log_.size() + i);
      r.add("padding", std::string(rng_() % 1500, static_cast<char>('a' + rng_() % 26)));
      batch.push_back(std::move(r));
    }
    const auto res = buffer_->append(batch);
    if (res.status == AppendResult::Status::full) {
      ASSERT_EQ(opt_.when_full, WhenFull::block);
      ASSERT_EQ(res.refused, n);
      ++full;
      return;
    }
    if (res.status == AppendResult::Status::dropped) {
      ASSERT_EQ(opt_.when_full, WhenFull::drop_newest);
      ASSERT_EQ(res.refused, n);
      refused += n;
      return;
    }
    ASSERT_EQ(res.status, AppendResult::Status::appended) << res.error;
    ASSERT_EQ(res.appended, n);
    if (res.dropped_oldest > 0) {
      // Whole oldest segments went: their unacknowledged records are the oldest ones.
      ASSERT_EQ(opt_.when_full, WhenFull::drop_oldest);
      dropped += res.dropped_oldest;
      std::uint64_t k = res.dropped_oldest;
      for (auto& r : log_) {
        if (k == 0) break;
        if (!r.acked && !r.lost) {
          r.lost = true;
          --k;
        }
      }
      ASSERT_EQ(k, 0u) << "more records dropped than were buffered";
      std::erase_if(unread_, [&](std::size_t i) { return log_[i].lost; });
    }
    for (auto& r : batch) {
      std::string enc;
      encode_record(r, enc);
      unread_.push_back(log_.size());
      log_.push_back({std::move(r), kFrameHeader + enc.size()});
    }
  }

  void read() {
    if (in_flight_.size() >= 8) return;  // the host keeps a few chunks in flight
    Chunk c;
    const std::size_t max_records = 1 + rng_() % 12;
    const std::size_t max_bytes = 100 + rng_() % 30000;
    if (!buffer_->read(max_records, max_bytes, c)) {
      ASSERT_TRUE(unread_.empty()) << "nothing read but " << unread_.size() << " expected";
      return;
    }
    ASSERT_FALSE(c.records.empty());
    ASSERT_LE(c.records.size(), max_records);
    ASSERT_LE(c.records.size(), unread_.size());
    InFlight f{c.handle, {}};
    for (const auto& r : c.records) {
      const std::size_t i = unread_.front();
      unread_.pop_front();
      ASSERT_EQ(r, log_[i].record) << "expected " << log_[i].record.id << ", read " << r.id;
      ASSERT_FALSE(log_[i].acked);
      f.indices.push_back(i);
    }
    in_flight_.push_back(std::move(f));
  }

  void acknowledge() {
    if (in_flight_.empty()) return;
    const std::size_t k = rng_() % in_flight_.size();  // any order
    buffer_->acknowledge(in_flight_[k].handle);
    for (std::size_t i : in_flight_[k].indices) log_[i].acked = true;
    in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(k));
  }

  // After a reopen: every record neither acknowledged nor lost, in append order.
  void expect_reopened(std::uint64_t records_cut, std::uint64_t bytes_cut) {
    in_flight_.clear();
    unread_.clear();
    for (std::size_t i = 0; i < log_.size(); ++i) {
      if (!log_[i].acked && !log_[i].lost) unread_.push_back(i);
    }
    EXPECT_EQ(report_.records, unread_.size())
        << "segments " << report_.segments << " bytes " << report_.bytes << " problems "
        << (report_.problems.empty() ? "" : report_.problems[0]);
    EXPECT_EQ(report_.records_cut, records_cut);
    EXPECT_EQ(report_.bytes_cut, bytes_cut);
    EXPECT_EQ(report_.problems.size(), records_cut);
  }

  void reopen_clean() {
    ++reopens;
    buffer_.reset();
    open_in(dir_);
    expect_reopened(0, 0);
  }

  // The files as a kill -9 leaves them (everything appended was written to the OS), then
  // optionally the tail of the newest segment cut at a random byte, as a power cut could.
  void crash(bool truncate) {
    ++crashes;
    const fs::path copy = next_dir();
    fs::create_directories(copy);
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename() != "lock") fs::copy_file(e.path(), copy / e.path().filename());
    }
    buffer_.reset();  // its final sync goes to the old directory, which is dropped
    fs::remove_all(dir_);
    std::uint64_t records_cut = 0;
    std::uint64_t bytes_cut = 0;
    const auto files = test::segment_files(copy);
    const auto size = files.empty() ? 0 : fs::file_size(files.back());
    if (truncate && size > kSegmentHeader) {
      ++truncations;
      const std::uint64_t new_size = kSegmentHeader + rng_() % (size - kSegmentHeader);
      fs::resize_file(files.back(), new_size);
      // The newest records are at the end of the newest segment.
      std::uint64_t end = size;
      for (std::size_t i = log_.size(); i-- > 0 && end > new_size;) {
        if (log_[i].lost) continue;
        log_[i].lost = true;
        ++lost;
        end -= log_[i].frame;
      }
      if (new_size > end) {  // a frame torn in the middle: detected, cut and counted
        records_cut = 1;
        bytes_cut = new_size - end;
      }
    }
    open_in(copy);
    expect_reopened(records_cut, bytes_cut);
  }

  void check_counts() {
    max_segments = std::max<std::uint64_t>(max_segments, buffer_->stats().segments);
    ASSERT_LE(test::segment_bytes(dir_), opt_.max_size);
    std::uint64_t buffered = 0;
    for (const auto& r : log_) buffered += !r.acked && !r.lost ? 1 : 0;
    const auto st = buffer_->stats();
    ASSERT_EQ(st.records, buffered);
    ASSERT_EQ(st.bytes, test::segment_bytes(dir_));
    ASSERT_EQ(st.segments, test::segment_files(dir_).size());
    ASSERT_EQ(st.oldest_append_time.has_value(), buffered > 0);
  }

  std::mt19937_64 rng_;
  test::TempDir root_;
  int dirs_ = 0;
  fs::path dir_;
  DiskBufferOptions opt_;
  std::unique_ptr<DiskBuffer> buffer_;
  OpenReport report_;
  std::vector<ModelRecord> log_;
  std::deque<std::size_t> unread_;
  std::vector<InFlight> in_flight_;
};

struct Params {
  std::uint64_t seed;
  WhenFull policy;
  std::uint64_t max_size;  // 0: never full
};

void PrintTo(const Params& p, std::ostream* os) {
  *os << "seed " << p.seed << ", max_size " << p.max_size;
}

std::string name(const ::testing::TestParamInfo<Params>& info) {
  const char* policy = info.param.policy == WhenFull::block         ? "block"
                       : info.param.policy == WhenFull::drop_oldest ? "drop_oldest"
                                                                    : "drop_newest";
  return std::string(info.param.max_size == 0 ? "roomy" : "small") + "_" + policy + "_seed" +
         std::to_string(info.param.seed);
}

class DiskBufferModel : public ::testing::TestWithParam<Params> {};

TEST_P(DiskBufferModel, RandomOperationsMatchTheModel) {
  const Params p = GetParam();
  Model m(p.seed, p.policy, p.max_size);
  for (int i = 0; i < 1500 && !HasFatalFailure() && !HasFailure(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    m.step();
  }
  if (!HasFailure()) m.finish();
  // The sequence did exercise reopens, crashes and cut tails.
  EXPECT_GT(m.reopens, 0u);
  EXPECT_GT(m.crashes, 0u);
  EXPECT_GT(m.truncations, 0u);
  if (p.max_size != 0) {  // the policy did act
    EXPECT_GT(p.policy == WhenFull::block         ? m.full
              : p.policy == WhenFull::drop_oldest ? m.dropped
                                                  : m.refused,
              0u);
  }
  RecordProperty("lost_to_truncation", static_cast<int>(m.lost));
  RecordProperty("max_segments", static_cast<int>(m.max_segments));
  RecordProperty("reopens_crashes", std::to_string(m.reopens) + " " + std::to_string(m.crashes));
}

// Roomy: the buffer never fills. Small: three segments' worth, so each policy acts often.
constexpr std::uint64_t kSmall = 3 * 16384;
INSTANTIATE_TEST_SUITE_P(
    Policies, DiskBufferModel,
    ::testing::Values(
        Params{1, WhenFull::block, 0}, Params{2, WhenFull::block, 0}, Params{3, WhenFull::block, 0},
        Params{4, WhenFull::block, 0}, Params{5, WhenFull::block, 0}, Params{6, WhenFull::block, 0},
        Params{7, WhenFull::block, kSmall}, Params{8, WhenFull::block, kSmall},
        Params{9, WhenFull::drop_newest, kSmall}, Params{10, WhenFull::drop_newest, kSmall},
        Params{11, WhenFull::drop_oldest, kSmall}, Params{12, WhenFull::drop_oldest, kSmall},
        Params{13, WhenFull::drop_oldest, kSmall}),
    name);

}  // namespace
}  // namespace webmon::delivery
