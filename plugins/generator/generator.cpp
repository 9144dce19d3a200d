// generator source: emits synthetic http_check records, for tests, benchmarks and demos.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::generator {
namespace {

using sdk::AckStatus;
using sdk::OptionSpec;
using sdk::OptionType;

constexpr OptionSpec kOptions[] = {
    {"count", OptionType::integer, "0", false, "records to emit, then finish; 0 = endless"},
    {"rate", OptionType::number, "0", false, "records per second; 0 = as fast as possible"},
    {"targets", OptionType::integer, "10", false, "number of distinct target names"},
    {"batch_size", OptionType::integer, "500", false, "records per emitted batch (at most)"},
    {"failure_every", OptionType::integer, "20", false,
     "every Nth record is a failed check (HTTP 500); 0 = never"},
};

/// splitmix64: fast, good enough for synthetic values.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }
  /// Uniform in [lo, hi), rounded to microseconds like real measurements.
  double uniform_ms(double lo, double hi) {
    const double v = lo + (hi - lo) * static_cast<double>(next() >> 11U) * 0x1.0p-53;
    return std::nearbyint(v * 1000.0) / 1000.0;
  }

 private:
  std::uint64_t s_;
};

class Generator final : public sdk::Source {
 public:
  Generator(const sdk::ConfigNode& config, sdk::Context& ctx)
      : count_(config.get_int("count", 0)),
        rate_(config.get_double("rate", 0)),
        targets_(config.get_int("targets", 10)),
        batch_size_(config.get_int("batch_size", 500)),
        failure_every_(config.get_int("failure_every", 20)),
        agent_(ctx.agent_name()) {
    if (count_ < 0) {
      config.find("count")->fail("option 'count' must be 0 (endless) or more");
    }
    if (rate_ < 0) {
      config.find("rate")->fail("option 'rate' must be 0 (unlimited) or more");
    }
    if (targets_ < 1 || targets_ > 10'000'000) {
      config.find("targets")->fail("option 'targets' must be between 1 and 10000000");
    }
    if (batch_size_ < 1 || batch_size_ > 1'000'000) {
      config.find("batch_size")->fail("option 'batch_size' must be between 1 and 1000000");
    }
    if (failure_every_ < 0) {
      config.find("failure_every")->fail("option 'failure_every' must be 0 or more");
    }
  }

 protected:
  sdk::Status on_run() override {
    const auto start = std::chrono::steady_clock::now();
    std::int64_t emitted = 0;
    std::uint64_t token = 0;
    // With a rate, batches are sized for about 100 emits per second.
    std::int64_t batch = batch_size_;
    if (rate_ > 0) {
      batch = std::clamp<std::int64_t>(static_cast<std::int64_t>(rate_ / 100), 1, batch_size_);
    }
    while (!ctx().stop_requested() && (count_ == 0 || emitted < count_)) {
      const std::int64_t n = count_ == 0 ? batch : std::min(batch, count_ - emitted);
      if (rate_ > 0) {
        const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(emitted / rate_));
        const auto now = std::chrono::steady_clock::now();
        if (due > now &&
            ctx().wait_for_stop(std::chrono::duration_cast<std::chrono::milliseconds>(due - now))) {
          break;
        }
      }
      sdk::Batch b;
      b.token = ++token;
      b.records.reserve(static_cast<std::size_t>(n));
      const sdk::Timestamp now = sdk::now();
      for (std::int64_t i = 0; i < n; ++i) {
        b.records.push_back(make_record(emitted + i, now));
      }
      if (!ctx().emit(std::move(b))) {
        break;
      }
      emitted += n;
    }
    ctx().info("finished after emitting " + std::to_string(emitted) + " records");
    return sdk::Status::ok();
  }

  void on_acknowledge(std::uint64_t /*token*/, AckStatus status) override {
    switch (status) {
      case AckStatus::delivered:
        ctx().counter("acked_delivered").add();
        break;
      case AckStatus::retryable:
        ctx().counter("acked_retryable").add();
        break;
      case AckStatus::rejected:
        ctx().counter("acked_rejected").add();
        break;
    }
  }

 private:
  // Field positions in the prototype record (see prototype()).
  enum Slot : std::size_t {
    kSuccess = 4, kStatus, kError, kErrorMessage, kResponseTime, kDns, kConnect, kTls, kTtfb,
    kTransfer, kBodyBytes, kTlsNotAfter = 19, kLateness = 21,
  };

  /// One record per target with every field in place; checks are copies with values set.
  sdk::Record prototype(std::int64_t t) const {
    char name[32];
    std::snprintf(name, sizeof name, "target-%05lld", static_cast<long long>(t));
    sdk::Record r;
    r.kind = "http_check";
    r.fields.reserve(22);
    r.add("target", std::string(name));
    r.add("url", "https://" + std::string(name) + ".example/");
    r.add("method", std::string("GET"));
    r.add("agent", agent_);
    r.add("success", true);
    r.add("status_code", std::int64_t{200});
    r.add("error", sdk::Value());
    r.add("error_message", sdk::Value());
    r.add("response_time_ms", 0.0);
    r.add("dns_ms", 0.0);
    r.add("connect_ms", 0.0);
    r.add("tls_ms", 0.0);
    r.add("ttfb_ms", 0.0);
    r.add("transfer_ms", 0.0);
    r.add("body_bytes", std::int64_t{0});
    r.add("http_version", std::string("1.1"));
    r.add("remote_ip", "192.0.2." + std::to_string(t % 254 + 1));
    r.add("redirects", std::int64_t{0});
    r.add("regex_matched", sdk::Value());
    r.add("tls_cert_not_after", sdk::Timestamp{});
    r.add("tls_cert_issuer", std::string("CN=Example Test CA"));
    r.add("lateness_ms", 0.0);
    return r;
  }

  sdk::Record make_record(std::int64_t seq, sdk::Timestamp now) {
    const auto t = static_cast<std::size_t>(seq % targets_);
    if (prototypes_.size() <= t) {
      prototypes_.resize(t + 1);
    }
    if (prototypes_[t].kind.empty()) {
      prototypes_[t] = prototype(static_cast<std::int64_t>(t));
    }
    sdk::Record r = prototypes_[t];
    const bool failed = failure_every_ > 0 && seq % failure_every_ == failure_every_ - 1;
    const double dns = rng_.uniform_ms(0.2, 2.0);
    const double connect = rng_.uniform_ms(0.3, 5.0);
    const double tls = rng_.uniform_ms(2.0, 20.0);
    const double ttfb = rng_.uniform_ms(5.0, 200.0);
    const double transfer = rng_.uniform_ms(0.1, 10.0);
    r.time = now;
    r.id = sdk::make_uuid_v7(now);
    auto& f = r.fields;
    if (failed) {
      f[kSuccess].value = false;
      f[kStatus].value = std::int64_t{500};
      f[kError].value = std::string("http_status");
      f[kErrorMessage].value = std::string("status 500 not in 200-399");
    }
    f[kResponseTime].value = std::nearbyint((dns + connect + tls + ttfb + transfer) * 1000.0) / 1000.0;
    f[kDns].value = dns;
    f[kConnect].value = connect;
    f[kTls].value = tls;
    f[kTtfb].value = ttfb;
    f[kTransfer].value = transfer;
    f[kBodyBytes].value = static_cast<std::int64_t>(rng_.next() % 100'000);
    f[kTlsNotAfter].value = sdk::Timestamp{now.micros + 90LL * 86'400'000'000LL};
    f[kLateness].value = rng_.uniform_ms(0.0, 1.0);
    return r;
  }

  std::int64_t count_;
  double rate_;
  std::int64_t targets_;
  std::int64_t batch_size_;
  std::int64_t failure_every_;
  std::string agent_;
  std::vector<sdk::Record> prototypes_;
  Rng rng_{0x5EED};
};

}  // namespace
}  // namespace webmon::plugins::generator

WEBMON_PLUGIN_SOURCE(webmon::plugins::generator::Generator, "generator", "0.1.0",
                     "Emits synthetic http_check records (tests, benchmarks, demos)",
                     webmon::plugins::generator::kOptions)
