// generator source: emits synthetic http_check records (or, with `kind: synthetic_tcp_check`,
// records shaped like a TCP check's), for tests, benchmarks and demos.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "webmon/common/http_check_kind.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::generator {
namespace {

using sdk::AckStatus;
using sdk::OptionSpec;
using sdk::OptionType;

struct Options {
  std::int64_t count = 0;
  double rate = 0;
  std::int64_t targets = 0;
  std::int64_t batch_size = 0;
  std::int64_t failure_every = 0;
  std::string kind;
};

// Declared once: the host checks the bounds and fills the defaults; load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "count",
     .type = OptionType::integer,
     .default_value = "0",
     .required = false,
     .description = "records to emit, then finish; 0 = endless",
     .min = "0",
     .assign = sdk::bind<&Options::count>()},
    {.name = "rate",
     .type = OptionType::number,
     .default_value = "0",
     .required = false,
     .description = "records per second; 0 = as fast as possible",
     .min = "0",
     .assign = sdk::bind<&Options::rate>()},
    {.name = "targets",
     .type = OptionType::integer,
     .default_value = "10",
     .required = false,
     .description = "number of distinct target names",
     .min = "1",
     .max = "10000000",
     .assign = sdk::bind<&Options::targets>()},
    {.name = "batch_size",
     .type = OptionType::integer,
     .default_value = "500",
     .required = false,
     .description = "records per emitted batch (at most)",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Options::batch_size>()},
    {.name = "failure_every",
     .type = OptionType::integer,
     .default_value = "20",
     .required = false,
     .description = "every Nth record is a failed check (HTTP 500); 0 = never",
     .min = "0",
     .assign = sdk::bind<&Options::failure_every>()},
    {.name = "kind",
     .type = OptionType::string,
     .default_value = "http_check",
     .required = false,
     .description = "record kind: http_check, or synthetic_tcp_check (a tcp_check-shaped kind, "
                    "registered at start, for benchmarks of kinds no sink has compiled in)",
     .choices = "http_check|synthetic_tcp_check",
     .assign = sdk::bind<&Options::kind>()},
};

// The tcp_check-shaped kind of `kind: synthetic_tcp_check` (13 fields and labels). Named so it
// never collides with the declaration of a real tcp_check plugin.
constexpr sdk::FieldSpec kTcpFields[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"host", sdk::FieldType::string, false, "", "host name connected to"},
    {"port", sdk::FieldType::int64, false, "", "TCP port"},
    {"agent", sdk::FieldType::string, false, "", "agent name"},
    {"success", sdk::FieldType::boolean, false, "", "connected (and the reply matched)"},
    {"error", sdk::FieldType::string, true, "", "error class; null on success"},
    {"error_message", sdk::FieldType::string, true, "", "detail of the error"},
    {"remote_ip", sdk::FieldType::string, true, "", "address connected to"},
    {"connect_ms", sdk::FieldType::float64, true, "ms", "TCP connect"},
    {"tls_ms", sdk::FieldType::float64, true, "ms", "TLS handshake"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "whole check"},
    {"tls_cert_not_after", sdk::FieldType::timestamp, true, "UTC", "certificate expiry"},
    {"lateness_ms", sdk::FieldType::float64, false, "ms", "actual - scheduled start"},
    {"labels", sdk::FieldType::string_map, false, "", "target labels"},
};
constexpr sdk::KindSpec kTcpKind = sdk::make_kind("synthetic_tcp_check", 1, kTcpFields, "target",
                                                  "a synthetic TCP check (generator)");

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
      : o_(sdk::load_options<Options>(config, kOptions)), agent_(ctx.agent_name()) {}

 protected:
  sdk::Status on_run() override {
    if (tcp()) {  // sinks find its declaration through the host
      if (sdk::Status s = ctx().register_kind(kTcpKind); !s.is_ok()) {
        return s;
      }
    }
    const auto start = std::chrono::steady_clock::now();
    std::int64_t emitted = 0;
    std::uint64_t token = 0;
    // With a rate, batches are sized for about 100 emits per second.
    std::int64_t batch = o_.batch_size;
    if (o_.rate > 0) {
      batch = std::clamp<std::int64_t>(static_cast<std::int64_t>(o_.rate / 100), 1, o_.batch_size);
    }
    while (!ctx().stop_requested() && (o_.count == 0 || emitted < o_.count)) {
      const std::int64_t n = o_.count == 0 ? batch : std::min(batch, o_.count - emitted);
      if (o_.rate > 0) {
        const auto due =
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(emitted) / o_.rate));
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
        b.records.push_back(tcp() ? make_tcp_record(emitted + i, now)
                                  : make_record(emitted + i, now));
      }
      // A load generator honours backpressure: on `full` it waits for room before the next
      // batch; a refused batch is emitted again once there is room.
      sdk::EmitResult r = emitter().emit(std::move(b));
      while (r == sdk::EmitResult::refused && !ctx().stop_requested()) {
        (void)emitter().wait_writable(std::chrono::milliseconds(100));
        // NOLINTNEXTLINE(bugprone-use-after-move): emit() leaves a refused batch as it was
        r = emitter().emit(std::move(b));
      }
      if (!sdk::taken(r)) {
        break;
      }
      emitted += n;
      if (r == sdk::EmitResult::full) {
        while (!emitter().wait_writable(std::chrono::milliseconds(100)) &&
               !ctx().stop_requested()) {
        }
      }
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
  /// Per-target strings, made once.
  struct Target {
    std::string name;
    std::string url;
    std::string remote_ip;
  };

  const Target& target(std::size_t t) {
    if (targets_cache_.size() <= t) {
      targets_cache_.resize(t + 1);
    }
    Target& c = targets_cache_[t];
    if (c.name.empty()) {
      char name[32];
      std::snprintf(name, sizeof name, "target-%05lld", static_cast<long long>(t));
      c.name = name;
      c.url = "https://" + c.name + ".example/";
      c.remote_ip = "192.0.2." + std::to_string(t % 254 + 1);
    }
    return c;
  }

  /// A random UUID version 7 (RFC 9562) whose first 48 bits are `at` in milliseconds.
  std::string make_uuid(sdk::Timestamp at) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto ms = static_cast<std::uint64_t>(at.micros / 1000);
    const std::uint64_t r1 = id_rng_.next();
    const std::uint64_t r2 = id_rng_.next();
    std::uint8_t b[16];
    for (int i = 0; i < 6; ++i) {
      b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    }
    b[6] = static_cast<std::uint8_t>(0x70 | ((r1 >> 8U) & 0x0FU));
    b[7] = static_cast<std::uint8_t>(r1);
    b[8] = static_cast<std::uint8_t>(0x80 | ((r1 >> 16U) & 0x3FU));
    for (int i = 9; i < 16; ++i) {
      b[i] = static_cast<std::uint8_t>(r2 >> (8 * (i - 9)));
    }
    char out[36];
    char* p = out;
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) {
        *p++ = '-';
      }
      *p++ = kHex[b[i] >> 4U];
      *p++ = kHex[b[i] & 0x0FU];
    }
    return std::string(out, sizeof out);
  }

  /// A check-sized http_check record with every declared field (webmon/common/http_check_kind.hpp),
  /// built in place (22 fields).
  sdk::Record make_record(std::int64_t seq, sdk::Timestamp now) {
    const Target& t = target(static_cast<std::size_t>(seq % o_.targets));
    const bool failed = o_.failure_every > 0 && seq % o_.failure_every == o_.failure_every - 1;
    const double dns = rng_.uniform_ms(0.2, 2.0);
    const double connect = rng_.uniform_ms(0.3, 5.0);
    const double tls = rng_.uniform_ms(2.0, 20.0);
    const double ttfb = rng_.uniform_ms(5.0, 200.0);
    const double transfer = rng_.uniform_ms(0.1, 10.0);
    const double total = std::nearbyint((dns + connect + tls + ttfb + transfer) * 1000.0) / 1000.0;
    const auto body_bytes = static_cast<std::int64_t>(rng_.next() % 100'000);
    const double lateness = rng_.uniform_ms(0.0, 1.0);
    sdk::Record r;
    r.kind = kKind;
    r.id = make_uuid(now);
    r.time = now;
    auto& f = r.fields;
    f.reserve(22);
    f.push_back({kTarget, t.name});
    f.push_back({kUrl, t.url});
    f.push_back({kMethod, kGet});
    f.push_back({kAgent, agent_});
    if (failed) {
      f.push_back({kSuccess, false});
      f.push_back({kStatusCode, std::int64_t{500}});
      f.push_back({kError, kHttpStatus});
      f.push_back({kErrorMessage, kStatusMessage});
    } else {
      f.push_back({kSuccess, true});
      f.push_back({kStatusCode, std::int64_t{200}});
      f.push_back({kError, std::monostate{}});
      f.push_back({kErrorMessage, std::monostate{}});
    }
    f.push_back({kResponseTime, total});
    f.push_back({kDns, dns});
    f.push_back({kConnect, connect});
    f.push_back({kTls, tls});
    f.push_back({kTtfb, ttfb});
    f.push_back({kTransfer, transfer});
    f.push_back({kBodyBytes, body_bytes});
    f.push_back({kHttpVersion, kHttp11});
    f.push_back({kRemoteIp, t.remote_ip});
    f.push_back({kRedirects, std::int64_t{0}});
    f.push_back({kRegexMatched, std::monostate{}});
    f.push_back({kTlsNotAfter, sdk::Timestamp{now.micros + 90LL * 86'400'000'000LL}});
    f.push_back({kTlsIssuer, kIssuer});
    f.push_back({kLateness, lateness});
    return r;
  }

  /// A synthetic_tcp_check record, built in place like make_record (13 fields).
  sdk::Record make_tcp_record(std::int64_t seq, sdk::Timestamp now) {
    const Target& t = target(static_cast<std::size_t>(seq % o_.targets));
    const bool failed = o_.failure_every > 0 && seq % o_.failure_every == o_.failure_every - 1;
    const double connect = rng_.uniform_ms(0.3, 5.0);
    const double tls = rng_.uniform_ms(2.0, 20.0);
    sdk::Record r;
    r.kind = kTcpKindName;
    r.id = make_uuid(now);
    r.time = now;
    auto& f = r.fields;
    f.reserve(13);
    f.push_back({kTarget, t.name});
    f.push_back({kHost, t.name + ".example"});
    f.push_back({kPort, std::int64_t{443}});
    f.push_back({kAgent, agent_});
    f.push_back({kSuccess, !failed});
    f.push_back({kError, failed ? sdk::Value(kConnectError) : sdk::Value()});
    f.push_back({kErrorMessage, failed ? sdk::Value(kRefused) : sdk::Value()});
    f.push_back({kRemoteIp, t.remote_ip});
    f.push_back({kConnect, connect});
    f.push_back({kTls, failed ? sdk::Value() : sdk::Value(tls)});
    f.push_back({kTotal, std::nearbyint((connect + (failed ? 0 : tls)) * 1000.0) / 1000.0});
    f.push_back({kTlsNotAfter, sdk::Timestamp{now.micros + 90LL * 86'400'000'000LL}});
    f.push_back({kLateness, rng_.uniform_ms(0.0, 1.0)});
    return r;
  }
  const std::string kTcpKindName{"synthetic_tcp_check"}, kHost{"host"}, kPort{"port"},
      kTotal{"total_ms"}, kConnectError{"connect"}, kRefused{"connection refused"};

  // Field names and constant values, made once and copied into each record.
  const std::string kKind{"http_check"};
  const std::string kTarget{"target"}, kUrl{"url"}, kMethod{"method"}, kAgent{"agent"},
      kSuccess{"success"}, kStatusCode{"status_code"}, kError{"error"},
      kErrorMessage{"error_message"}, kResponseTime{"response_time_ms"}, kDns{"dns_ms"},
      kConnect{"connect_ms"}, kTls{"tls_ms"}, kTtfb{"ttfb_ms"}, kTransfer{"transfer_ms"},
      kBodyBytes{"body_bytes"}, kHttpVersion{"http_version"}, kRemoteIp{"remote_ip"},
      kRedirects{"redirects"}, kRegexMatched{"regex_matched"}, kTlsNotAfter{"tls_cert_not_after"},
      kTlsIssuer{"tls_cert_issuer"}, kLateness{"lateness_ms"};
  const std::string kGet{"GET"}, kHttp11{"1.1"}, kIssuer{"CN=Example Test CA"},
      kHttpStatus{"http_status"}, kStatusMessage{"status 500 not in 200-399"};

  Options o_;
  [[nodiscard]] bool tcp() const noexcept { return o_.kind == "synthetic_tcp_check"; }
  std::string agent_;
  std::vector<Target> targets_cache_;
  Rng rng_{0x5EED};
  // Ids must differ between runs and between generators: seeded at random.
  Rng id_rng_{(static_cast<std::uint64_t>(std::random_device{}()) << 32U) ^ std::random_device{}()};
};

}  // namespace
}  // namespace webmon::plugins::generator

WEBMON_PLUGIN_SOURCE(webmon::plugins::generator::Generator, "generator", "0.1.0",
                     "Emits synthetic http_check records (tests, benchmarks, demos)",
                     webmon::plugins::generator::kOptions,
                     webmon::sdk::emits(webmon::common::kHttpCheckKinds))
