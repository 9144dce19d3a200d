// DiskBuffer: reading in order, out-of-order acknowledgements and the ledger, segment deletion,
// torn and corrupt data found at open, each when_full policy, max_size, errors, concurrency.
#include "delivery/disk_buffer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "delivery/record_codec.hpp"
#include "test_util.hpp"

namespace webmon::delivery {
namespace {

namespace fs = std::filesystem;
using test::check_record;
using test::check_records;
using test::segment_bytes;
using test::segment_files;
using test::TempDir;

constexpr std::uint64_t kFrameHeader = 16;  // README.md: u32 length, u32 crc, u64 append time

std::chrono::steady_clock::time_point deadline() {
  return std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

DiskBufferOptions small_options(const fs::path& dir) {
  DiskBufferOptions o;
  o.path = dir;
  o.segment_size = 4096;
  o.max_size = 1 << 20;
  return o;
}

std::unique_ptr<DiskBuffer> open_buffer(const DiskBufferOptions& o, OpenReport* report = nullptr) {
  OpenReport r;
  auto b = DiskBuffer::open(o, r);
  if (report != nullptr) *report = r;
  return b;
}

// Reads everything unread, acknowledging each chunk; returns the ids in read order.
std::vector<std::string> drain(DiskBuffer& b, bool ack = true, std::size_t max_records = 7) {
  std::vector<std::string> ids;
  Chunk c;
  while (b.read(max_records, 1 << 20, c)) {
    for (const auto& r : c.records) ids.push_back(r.id);
    if (ack) b.acknowledge(c.handle);
  }
  return ids;
}

std::vector<std::string> ids_of(std::uint64_t first, std::size_t n) {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back("rec-" + std::to_string(first + i));
  return v;
}

std::uint64_t frame_size(const sdk::Record& r) {
  std::string b;
  encode_record(r, b);
  return kFrameHeader + b.size();
}

TEST(DiskBuffer, ReadsWhatWasAppendedInOrderWithEqualRecords) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  const auto batch1 = check_records(0, 3);
  const auto batch2 = check_records(3, 40);
  auto res = b->append(batch1);
  EXPECT_EQ(res.status, AppendResult::Status::appended);
  EXPECT_EQ(res.appended, 3u);
  EXPECT_EQ(b->append(batch2).appended, 40u);
  EXPECT_EQ(b->stats().records, 43u);
  EXPECT_EQ(b->stats().appended_total, 43u);

  std::vector<sdk::Record> got;
  Chunk c;
  while (b->read(10, 1 << 20, c)) {
    EXPECT_LE(c.records.size(), 10u);
    EXPECT_EQ(c.handle.records, c.records.size());
    got.insert(got.end(), c.records.begin(), c.records.end());
    b->acknowledge(c.handle);
  }
  ASSERT_EQ(got.size(), 43u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], check_record(i));
  EXPECT_EQ(b->stats().records, 0u);
  EXPECT_FALSE(b->stats().oldest_append_time.has_value());
}

TEST(DiskBuffer, MaxBytesLimitsAChunkButOneRecordAlwaysComes) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  b->append(check_records(0, 5));
  Chunk c;
  ASSERT_TRUE(b->read(100, 1, c));  // smaller than any record
  EXPECT_EQ(c.records.size(), 1u);
  const std::uint64_t one = frame_size(check_record(1));
  ASSERT_TRUE(b->read(100, 2 * one + one / 2, c));
  EXPECT_EQ(c.records.size(), 2u);
  EXPECT_EQ(c.bytes, 2 * one);
}

TEST(DiskBuffer, ChunksLargerThanTheFirstReadAndRecordsLargerThanMaxBytes) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 4 << 20;
  o.max_size = 16 << 20;
  auto b = open_buffer(o);
  auto batch = check_records(0, 100);
  for (auto& r : batch) r.add("body", std::string(3000, 'b'));  // 100 x ~3.6 KB: 360 KB
  auto big = check_records(100, 1);
  big[0].add("body", std::string(300'000, 'B'));
  b->append(batch);
  b->append(big);
  b->append(check_records(101, 1));
  Chunk c;
  ASSERT_TRUE(b->read(1000, 400'000, c));  // the batch fits, the big record after it does not
  ASSERT_EQ(c.records.size(), 100u);       // one chunk, several reads from the file
  EXPECT_EQ(c.records, batch);
  ASSERT_TRUE(b->read(1000, 1000, c));  // the big one alone, although above max_bytes
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0], big[0]);
  ASSERT_TRUE(b->read(1000, 1000, c));
  EXPECT_EQ(c.records, check_records(101, 1));
}

TEST(DiskBuffer, OutOfOrderAcksAdvanceContiguouslyAndSurviveReopen) {
  TempDir dir;
  const auto o = small_options(dir.path());
  {
    auto b = open_buffer(o);
    b->append(check_records(0, 6));
    Chunk a, m, z;
    ASSERT_TRUE(b->read(2, 1 << 20, a));
    ASSERT_TRUE(b->read(2, 1 << 20, m));
    ASSERT_TRUE(b->read(2, 1 << 20, z));
    b->acknowledge(z.handle);
    EXPECT_EQ(b->stats().records, 4u);
    b->acknowledge(a.handle);
    b->acknowledge(a.handle);  // twice: harmless
    EXPECT_EQ(b->stats().records, 2u);
    // The oldest unacknowledged record is rec-2 (chunk m).
    ASSERT_TRUE(b->stats().oldest_append_time.has_value());
    b->append(check_records(6, 1));
  }
  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_TRUE(report.ledger_found);
  EXPECT_EQ(report.records, 3u);  // rec-2, rec-3 (m) and rec-6
  EXPECT_EQ(drain(*b), (std::vector<std::string>{"rec-2", "rec-3", "rec-6"}));
  EXPECT_EQ(b->stats().records, 0u);
}

TEST(DiskBuffer, AcknowledgedSegmentsAreDeleted) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  for (int i = 0; i < 30; ++i) b->append(check_records(static_cast<std::uint64_t>(i) * 5, 5));
  const auto files = segment_files(dir.path());
  ASSERT_GT(files.size(), 10u);
  EXPECT_EQ(b->stats().segments, files.size());
  EXPECT_EQ(b->stats().bytes, segment_bytes(dir.path()));
  // Reading without acknowledging deletes nothing.
  Chunk c;
  std::vector<Chunk::Handle> handles;
  while (b->read(5, 1 << 20, c)) handles.push_back(c.handle);
  EXPECT_EQ(segment_files(dir.path()).size(), files.size());
  // Acknowledge all but the first chunk: nothing can go yet.
  for (std::size_t i = 1; i < handles.size(); ++i) b->acknowledge(handles[i]);
  EXPECT_EQ(segment_files(dir.path()).size(), files.size());
  EXPECT_EQ(b->stats().records, 5u);
  b->acknowledge(handles[0]);
  // Only the active segment is left.
  EXPECT_EQ(segment_files(dir.path()), std::vector<fs::path>{files.back()});
  EXPECT_EQ(b->stats().records, 0u);
  EXPECT_EQ(b->stats().bytes, segment_bytes(dir.path()));
}

TEST(DiskBuffer, TornTailIsCutCountedAndTheRecordsBeforeItDelivered) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 1 << 20;
  o.max_size = 4 << 20;
  {
    auto b = open_buffer(o);
    for (std::uint64_t i = 0; i < 10; ++i) b->append(check_records(i, 1));
  }
  auto files = segment_files(dir.path());
  const fs::path last = files.back();
  const auto size = fs::file_size(last);
  fs::resize_file(last, size - 5);  // the 10th record loses its last 5 bytes

  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_EQ(report.records_cut, 1u);
  EXPECT_EQ(report.bytes_cut, frame_size(check_record(9)) - 5);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find(last.filename().string()), std::string::npos);
  EXPECT_NE(report.problems[0].find("torn"), std::string::npos) << report.problems[0];
  EXPECT_EQ(report.records, 9u);
  EXPECT_EQ(b->stats().corrupt_total, 1u);
  EXPECT_EQ(fs::file_size(last), size - frame_size(check_record(9)));  // truncated on disk
  EXPECT_EQ(drain(*b), ids_of(0, 9));
}

TEST(DiskBuffer, BadChecksumCutsTheSegmentFromThatFrame) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 1 << 20;
  o.max_size = 4 << 20;
  {
    auto b = open_buffer(o);
    b->append(check_records(0, 10));
  }
  const fs::path seg = segment_files(dir.path()).back();
  // Flip a byte inside the 8th record's payload.
  const std::uint64_t at = 16 + 7 * frame_size(check_record(0)) + kFrameHeader + 20;
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }
  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_EQ(report.records_cut, 3u);  // the bad frame and the two after it
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checksum"), std::string::npos) << report.problems[0];
  EXPECT_EQ(drain(*b), ids_of(0, 7));
}

TEST(DiskBuffer, CorruptionInAnOlderSegmentSkipsOnlyTheRestOfThatSegment) {
  TempDir dir;
  const auto o = small_options(dir.path());
  {
    auto b = open_buffer(o);
    for (std::uint64_t i = 0; i < 40; ++i) b->append(check_records(i, 1));
  }
  const auto files = segment_files(dir.path());
  ASSERT_GE(files.size(), 4u);
  const std::uint64_t per_segment = (fs::file_size(files[0]) - 16) / frame_size(check_record(0));
  // Garbage in the payload of the second frame of the second segment.
  {
    std::fstream f(files[1], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(16 + frame_size(check_record(0)) + kFrameHeader + 30));
    f.write("garbage!", 8);
  }
  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_EQ(report.records_cut, per_segment - 1);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find(files[1].filename().string()), std::string::npos);
  std::vector<std::string> want = ids_of(0, per_segment + 1);
  const auto rest = ids_of(2 * per_segment, 40 - 2 * per_segment);
  want.insert(want.end(), rest.begin(), rest.end());
  EXPECT_EQ(drain(*b), want);
}

TEST(DiskBuffer, ASegmentWithABadHeaderIsRemovedAndReported) {
  TempDir dir;
  const auto o = small_options(dir.path());
  {
    auto b = open_buffer(o);
    for (std::uint64_t i = 0; i < 20; ++i) b->append(check_records(i, 1));
  }
  const auto files = segment_files(dir.path());
  const std::uint64_t per_segment = (fs::file_size(files[0]) - 16) / frame_size(check_record(0));
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.write("XXXX", 4);
  }
  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_EQ(report.records_cut, per_segment);
  EXPECT_FALSE(fs::exists(files[0]));
  EXPECT_EQ(drain(*b), ids_of(per_segment, 20 - per_segment));
}

// A real kill -9: a child process appends and acknowledges, reports its progress through a
// pipe, and is killed while its buffer is open (no destructor, no final sync).
TEST(DiskBuffer, KillDashNineLosesNothingAppendedAndRepeatsNothingAcknowledged) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.sync_interval = std::chrono::hours(1);  // nothing is synced before the kill
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    OpenReport r;
    auto b = DiskBuffer::open(o, r);
    for (std::uint64_t i = 0; i < 200; i += 10) b->append(check_records(i, 10));
    Chunk c;
    std::vector<Chunk::Handle> handles;
    for (int k = 0; k < 6; ++k) {
      b->read(10, 1 << 20, c);
      handles.push_back(c.handle);
    }
    // Acknowledge chunks 0, 1, 2 and 4 (rec-0..29 and rec-40..49), not 3 and 5.
    for (int k : {4, 0, 2, 1}) b->acknowledge(handles[static_cast<std::size_t>(k)]);
    const char done = 'x';
    if (::write(fds[1], &done, 1) != 1) ::_exit(2);
    for (;;) ::pause();  // killed here
  }
  ::close(fds[1]);
  char got = 0;
  ASSERT_EQ(::read(fds[0], &got, 1), 1);
  ::close(fds[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_EQ(report.records_cut, 0u);
  EXPECT_EQ(report.records, 160u);
  std::vector<std::string> want = ids_of(30, 10);
  const auto rest = ids_of(50, 150);
  want.insert(want.end(), rest.begin(), rest.end());
  EXPECT_EQ(drain(*b), want);
}

TEST(DiskBuffer, AnEmptySegmentFileIsRemovedSilently) {
  TempDir dir;
  const auto o = small_options(dir.path());
  {
    auto b = open_buffer(o);
    b->append(check_records(0, 3));
  }
  // As a stop between creating a segment file and writing its header leaves it.
  std::ofstream(dir.path() / "segment-00000000000000000099.wmdb").flush();
  OpenReport report;
  auto b = open_buffer(o, &report);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.records_cut, 0u);
  EXPECT_FALSE(fs::exists(dir.path() / "segment-00000000000000000099.wmdb"));
  EXPECT_EQ(drain(*b), ids_of(0, 3));
  b->append(check_records(3, 1));
  EXPECT_EQ(drain(*b), ids_of(3, 1));
}

TEST(DiskBuffer, BlockReturnsFullAndWaitForSpaceLetsTheProducerFinish) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.max_size = 2 * o.segment_size;
  o.when_full = WhenFull::block;
  auto b = open_buffer(o);
  // Fill it without a reader.
  std::uint64_t n = 0;
  AppendResult res;
  while ((res = b->append(check_records(n, 1))).status == AppendResult::Status::appended) ++n;
  EXPECT_EQ(res.status, AppendResult::Status::full);
  EXPECT_EQ(res.refused, 1u);
  EXPECT_EQ(res.appended, 0u);
  EXPECT_EQ(b->stats().records, n);
  EXPECT_EQ(b->stats().appended_total, n);
  EXPECT_LE(segment_bytes(dir.path()), o.max_size);

  // A reader acknowledging everything, a producer waiting for space and retrying.
  constexpr std::uint64_t kTotal = 500;
  std::vector<std::string> read_ids;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    Chunk c;
    while (read_ids.size() < kTotal) {
      if (!b->wait_readable(deadline())) break;
      while (b->read(3, 1 << 20, c)) {
        for (const auto& r : c.records) read_ids.push_back(r.id);
        b->acknowledge(c.handle);
      }
    }
    done = true;
  });
  for (std::uint64_t i = n; i < kTotal;) {
    res = b->append(check_records(i, 1));
    if (res.status == AppendResult::Status::full) {
      if (!b->wait_for_space(res.bytes, deadline())) {
        ADD_FAILURE() << "no space came at record " << i << ": " << b->stats().bytes
                      << " bytes on disk, " << b->stats().records << " records";
        break;
      }
      continue;
    }
    if (res.status != AppendResult::Status::appended) {
      ADD_FAILURE() << "status " << static_cast<int>(res.status) << " " << res.error;
      break;
    }
    EXPECT_LE(segment_bytes(dir.path()), o.max_size);
    ++i;
  }
  b->close_waiters();
  reader.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(read_ids, ids_of(0, kTotal));
  EXPECT_EQ(b->stats().refused_total, 0u);
  EXPECT_EQ(b->stats().dropped_oldest_total, 0u);
}

TEST(DiskBuffer, WaitForSpaceReturnsFalseOnClose) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.max_size = 2 * o.segment_size;
  auto b = open_buffer(o);
  AppendResult res;
  for (std::uint64_t n = 0;
       (res = b->append(check_records(n, 1))).status == AppendResult::Status::appended; ++n) {
  }
  ASSERT_EQ(res.status, AppendResult::Status::full);
  std::thread closer([&] { b->close_waiters(); });
  EXPECT_FALSE(b->wait_for_space(res.bytes, deadline()));
  closer.join();
}

TEST(DiskBuffer, DropNewestRefusesAndCountsTheNewRecords) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.max_size = 2 * o.segment_size;
  o.when_full = WhenFull::drop_newest;
  auto b = open_buffer(o);
  std::uint64_t appended = 0;
  std::uint64_t refused = 0;
  for (std::uint64_t i = 0; i < 60; i += 2) {
    const auto res = b->append(check_records(i, 2));
    if (res.status == AppendResult::Status::appended) {
      EXPECT_EQ(refused, 0u) << "appended after a refusal without any acknowledgement";
      appended += 2;
    } else {
      EXPECT_EQ(res.status, AppendResult::Status::dropped);
      EXPECT_EQ(res.refused, 2u);
      refused += 2;
    }
    EXPECT_LE(segment_bytes(dir.path()), o.max_size);
  }
  ASSERT_GT(refused, 0u);
  EXPECT_EQ(b->stats().refused_total, refused);
  EXPECT_EQ(b->stats().appended_total, appended);
  EXPECT_EQ(drain(*b), ids_of(0, appended));  // the oldest are kept
}

TEST(DiskBuffer, DropOldestDeletesWholeOldSegmentsAndCountsThem) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.max_size = 3 * o.segment_size;
  o.when_full = WhenFull::drop_oldest;
  auto b = open_buffer(o);
  constexpr std::uint64_t kTotal = 200;
  std::uint64_t dropped = 0;
  for (std::uint64_t i = 0; i < kTotal; ++i) {
    const auto res = b->append(check_records(i, 1));
    ASSERT_EQ(res.status, AppendResult::Status::appended);
    dropped += res.dropped_oldest;
    EXPECT_LE(segment_bytes(dir.path()), o.max_size);
  }
  ASSERT_GT(dropped, 0u);
  EXPECT_EQ(b->stats().dropped_oldest_total, dropped);
  EXPECT_EQ(b->stats().records, kTotal - dropped);
  // What is left is the newest records, in order, and nothing else.
  EXPECT_EQ(drain(*b), ids_of(dropped, kTotal - dropped));
}

TEST(DiskBuffer, DropOldestWhileChunksAreInFlight) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.max_size = 2 * o.segment_size;
  o.when_full = WhenFull::drop_oldest;
  auto b = open_buffer(o);
  b->append(check_records(0, 3));
  Chunk c;
  ASSERT_TRUE(b->read(2, 1 << 20, c));  // rec-0, rec-1 in flight
  const auto in_flight = c.handle;
  std::uint64_t dropped = 0;
  std::uint64_t i = 3;
  while (dropped == 0) dropped += b->append(check_records(i++, 1)).dropped_oldest;
  b->acknowledge(in_flight);  // its segment is gone: harmless
  const auto ids = drain(*b);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids, ids_of(i - ids.size(), ids.size()));  // the newest, in order
  EXPECT_EQ(dropped + ids.size(), i);                  // every record is either dropped or read
  EXPECT_EQ(b->stats().records, 0u);
}

TEST(DiskBuffer, ABatchLargerThanMaxSizeIsRefusedWhateverThePolicy) {
  TempDir dir;
  for (auto policy : {WhenFull::block, WhenFull::drop_oldest, WhenFull::drop_newest}) {
    auto o = small_options(dir.path());
    o.max_size = 2 * o.segment_size;
    o.when_full = policy;
    auto b = open_buffer(o);
    const auto res = b->append(check_records(0, 100));
    EXPECT_EQ(res.status, AppendResult::Status::too_large);
    EXPECT_EQ(res.refused, 100u);
    EXPECT_EQ(b->stats().records, 0u);
  }
}

TEST(DiskBuffer, ABatchLargerThanASegmentGetsItsOwnSegment) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  b->append(check_records(0, 1));
  EXPECT_EQ(b->append(check_records(1, 30)).appended, 30u);
  EXPECT_EQ(drain(*b, true, 1000), ids_of(0, 31));
}

TEST(DiskBuffer, ClearErrorsForUnusableDirectoriesAndBadOptions) {
  TempDir dir;
  {
    std::ofstream(dir.path() / "file") << "x";
    auto o = small_options(dir.path() / "file" / "sub");
    try {
      open_buffer(o);
      ADD_FAILURE() << "opened a directory under a regular file";
    } catch (const DiskBufferError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot create the directory"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find((dir.path() / "file" / "sub").string()),
                std::string::npos);
    }
  }
  {
    auto o = small_options(dir.path() / "buf");
    auto first = open_buffer(o);
    try {
      open_buffer(o);
      ADD_FAILURE() << "opened the same directory twice";
    } catch (const DiskBufferError& e) {
      EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
    }
  }
  {
    auto o = small_options(dir.path() / "b2");
    o.max_size = o.segment_size;
    EXPECT_THROW(open_buffer(o), DiskBufferError);
    o.path.clear();
    EXPECT_THROW(open_buffer(o), DiskBufferError);
  }
}

TEST(DiskBuffer, CreatesMissingParents) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path() / "a" / "b"));
  EXPECT_TRUE(fs::is_directory(dir.path() / "a" / "b"));
}

TEST(DiskBuffer, StatsTrackOldestAppendTimeAndBytes) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  EXPECT_FALSE(b->stats().oldest_append_time.has_value());
  const auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  b->append(check_records(0, 2));
  const auto after = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const auto st = b->stats();
  ASSERT_TRUE(st.oldest_append_time.has_value());
  EXPECT_GE(st.oldest_append_time->micros, before);
  EXPECT_LE(st.oldest_append_time->micros, after);
  EXPECT_EQ(st.bytes, segment_bytes(dir.path()));
  EXPECT_EQ(st.records, 2u);
}

TEST(DiskBuffer, WaitReadableIsWokenByAppend) {
  TempDir dir;
  auto b = open_buffer(small_options(dir.path()));
  std::thread producer([&] { b->append(check_records(0, 1)); });
  EXPECT_TRUE(b->wait_readable(deadline()));
  producer.join();
  EXPECT_EQ(drain(*b), ids_of(0, 1));
}

TEST(DiskBuffer, ManyProducersOneReaderKeepEachProducersOrder) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 64 << 10;
  o.max_size = 64 << 20;
  auto b = open_buffer(o);
  constexpr int kProducers = 4;
  constexpr std::uint64_t kPerProducer = 2000;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < kPerProducer; i += 10) {
        auto batch = check_records(0, 10);
        for (std::uint64_t k = 0; k < 10; ++k) {
          batch[k].id = std::to_string(p) + ":" + std::to_string(i + k);
        }
        ASSERT_EQ(b->append(batch).appended, 10u);
      }
    });
  }
  std::map<int, std::uint64_t> next;
  std::uint64_t total = 0;
  Chunk c;
  while (total < kProducers * kPerProducer) {
    ASSERT_TRUE(b->wait_readable(deadline()));
    while (b->read(100, 1 << 20, c)) {
      for (const auto& r : c.records) {
        const auto colon = r.id.find(':');
        const int p = std::stoi(r.id.substr(0, colon));
        EXPECT_EQ(std::stoull(r.id.substr(colon + 1)), next[p]++) << r.id;
        ++total;
      }
      b->acknowledge(c.handle);
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(total, kProducers * kPerProducer);
  EXPECT_EQ(b->stats().records, 0u);
}

TEST(DiskBuffer, SyncAfterEveryAppendWorks) {
  TempDir dir;
  auto o = small_options(dir.path());
  o.sync_interval = std::chrono::milliseconds(0);
  {
    auto b = open_buffer(o);
    for (std::uint64_t i = 0; i < 20; ++i) b->append(check_records(i, 1));
    Chunk c;
    ASSERT_TRUE(b->read(5, 1 << 20, c));
    b->acknowledge(c.handle);
  }
  auto b = open_buffer(o);
  EXPECT_EQ(drain(*b), ids_of(5, 15));
}

}  // namespace
}  // namespace webmon::delivery
