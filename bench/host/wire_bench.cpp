// Micro-benchmark of the JSON wire format (common/): encoding and decoding one http_check
// record. Run: build/release/bin/wire_bench
#include <benchmark/benchmark.h>

#include "webmon/common/wire.hpp"
#include "webmon/sdk/util.hpp"

namespace {

webmon::sdk::Record sample() {
  using webmon::sdk::Value;
  webmon::sdk::Record r;
  r.kind = "http_check";
  r.time = webmon::sdk::now();
  r.id = webmon::sdk::make_uuid_v7(r.time);
  r.add("target", std::string("target-00042"));
  r.add("url", std::string("https://target-00042.example/"));
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
  r.add("tls_cert_not_after", webmon::sdk::Timestamp{r.time.micros + 7'776'000'000'000LL});
  r.add("tls_cert_issuer", std::string("CN=Example Test CA"));
  r.add("lateness_ms", 0.162);
  r.labels = {{"region", "eu-west"}};
  return r;
}

void BM_Encode(benchmark::State& state) {
  const auto r = sample();
  std::string out;
  for (auto _ : state) {
    out.clear();
    webmon::common::append_json(r, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_Encode);

// reuse:1: into the same record each time, whose storage is overwritten (kafka_source decodes
// into records of finished batches); reuse:0: into a new record each time, destroyed after.
// fast:1: the decoder's fast path for our encoder's layout (the default); fast:0: the general
// simdjson decoder only (what other producers' messages get).
void BM_Decode(benchmark::State& state) {
  const std::string json = webmon::common::to_json(sample());
  const bool reuse = state.range(0) == 1;
  webmon::common::JsonDecoder decoder;
  decoder.set_fast_path(state.range(1) == 1);
  webmon::sdk::Record used;
  std::string error;
  for (auto _ : state) {
    webmon::sdk::Record fresh;
    webmon::sdk::Record& r = reuse ? used : fresh;
    if (!decoder.decode(json, r, error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    benchmark::DoNotOptimize(r.fields.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode)->ArgNames({"reuse", "fast"})->ArgsProduct({{1, 0}, {1, 0}});

void BM_CopyRecord(benchmark::State& state) {
  const auto r = sample();
  for (auto _ : state) {
    webmon::sdk::Record copy = r;
    benchmark::DoNotOptimize(copy.fields.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CopyRecord);

}  // namespace

BENCHMARK_MAIN();
