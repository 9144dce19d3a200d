// Micro-benchmarks of the disk buffer (agent/delivery/): the record codec on one 25-field
// http_check-like record, and append + read + acknowledge through a DiskBuffer on disk with
// the default fsync period (1 s). Run: build/release/bin/disk_buffer_bench
// (the buffer's directory is made under $TMPDIR, default /tmp, and removed afterwards).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "delivery/disk_buffer.hpp"
#include "delivery/record_codec.hpp"

namespace {

namespace fs = std::filesystem;
using webmon::delivery::AppendResult;
using webmon::delivery::Chunk;
using webmon::delivery::DiskBuffer;
using webmon::delivery::DiskBufferOptions;
using webmon::delivery::OpenReport;
using webmon::sdk::Record;
using webmon::sdk::Timestamp;
using webmon::sdk::Value;

Record sample(std::uint64_t n) {
  Record r;
  r.kind = "http_check";
  r.time = Timestamp{1'764'000'000'000'000LL + static_cast<std::int64_t>(n)};
  r.id = "0190d2c4-7f7e-7a1b-9c3d-" + std::to_string(100000000000ULL + n);
  const std::string target = "target-" + std::to_string(n % 1000);
  r.add("target", target);
  r.add("url", "https://" + target + ".example/");
  r.add("method", std::string("GET"));
  r.add("agent", std::string("bench-agent"));
  r.add("success", true);
  r.add("status_code", std::int64_t{200});
  r.add("error", Value());
  r.add("error_message", Value());
  r.add("response_time_ms", 104.217);
  r.add("dns_ms", 0.27);
  r.add("connect_ms", 1.864);
  r.add("tls_ms", 8.564);
  r.add("ttfb_ms", 90.939);
  r.add("transfer_ms", 2.573);
  r.add("body_bytes", std::int64_t{93130});
  r.add("http_version", std::string("1.1"));
  r.add("remote_ip", std::string("192.0.2.42"));
  r.add("redirects", std::int64_t{0});
  r.add("regex_matched", Value());
  r.add("tls_cert_not_after", Timestamp{r.time.micros + 7'776'000'000'000LL});
  r.add("tls_cert_issuer", std::string("CN=Example Test CA"));
  r.add("lateness_ms", 0.162);
  r.add("scheduled_at", Timestamp{r.time.micros - 162});
  r.add("attempt", std::int64_t{1});
  r.add("content_type", std::string("text/html; charset=utf-8"));
  r.labels = {{"region", "eu-west"}};
  return r;
}

std::vector<Record> samples(std::size_t n) {
  std::vector<Record> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(sample(i));
  return v;
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string t =
        std::string(base != nullptr && *base != 0 ? base : "/tmp") + "/wmdb-bench-XXXXXX";
    if (::mkdtemp(t.data()) == nullptr) std::abort();
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void BM_CodecEncode(benchmark::State& state) {
  const Record r = sample(42);
  std::string out;
  for (auto _ : state) {
    out.clear();
    webmon::delivery::encode_record(r, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_record"] = static_cast<double>(out.size());
}
BENCHMARK(BM_CodecEncode);

void BM_CodecDecode(benchmark::State& state) {
  std::string enc;
  webmon::delivery::encode_record(sample(42), enc);
  Record r;
  for (auto _ : state) {
    if (!webmon::delivery::decode_record(enc, r)) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(r.fields.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CodecDecode);

// One thread: append a batch, then read it back in chunks and acknowledge each chunk.
// Arg: records per batch (= per chunk).
void BM_AppendReadAck(benchmark::State& state) {
  TempDir dir;
  DiskBufferOptions o;
  o.path = dir.path();
  OpenReport report;
  auto buffer = DiskBuffer::open(o, report);
  const auto batch = samples(static_cast<std::size_t>(state.range(0)));
  Chunk chunk;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    const AppendResult res = buffer->append(batch);
    if (res.status != AppendResult::Status::appended) {
      state.SkipWithError(("append: " + res.error).c_str());
      break;
    }
    bytes += res.bytes;
    while (buffer->read(batch.size(), 8 << 20, chunk)) buffer->acknowledge(chunk.handle);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_AppendReadAck)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// Two threads, as in the agent: a producer appends batches while this thread reads and
// acknowledges. Arg: records per batch. Real time.
void BM_ProducerAndReader(benchmark::State& state) {
  TempDir dir;
  DiskBufferOptions o;
  o.path = dir.path();
  o.max_size = 256 << 20;  // the producer blocks beyond this backlog
  OpenReport report;
  auto buffer = DiskBuffer::open(o, report);
  const auto batch = samples(static_cast<std::size_t>(state.range(0)));
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const auto res = buffer->append(batch);
      if (res.status == AppendResult::Status::full) {
        buffer->wait_for_space(res.bytes,
                               std::chrono::steady_clock::now() + std::chrono::seconds(1));
      }
    }
  });
  Chunk chunk;
  std::int64_t records = 0;
  for (auto _ : state) {
    // One iteration: one chunk of up to a batch's records.
    while (!buffer->read(batch.size(), 8 << 20, chunk)) {
      buffer->wait_readable(std::chrono::steady_clock::now() + std::chrono::seconds(1));
    }
    records += static_cast<std::int64_t>(chunk.records.size());
    buffer->acknowledge(chunk.handle);
  }
  stop = true;
  producer.join();
  state.SetItemsProcessed(records);
  state.counters["backlog_records"] = static_cast<double>(buffer->stats().records);
}
BENCHMARK(BM_ProducerAndReader)->Arg(100)->Arg(1000)->UseRealTime()->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
