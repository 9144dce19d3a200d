// Driving PostgresSink directly in tests: the SDK test kit's fake context and Ack log, and a
// valid http_check record.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "webmon/sdk/sdk.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::plugins::postgres_sink::testing {

using FakeContext = sdk::testing::FakeContext;
using AckLog = sdk::testing::AckLog;

/// A valid http_check record like the generator's, at `time`.
inline sdk::Record make_check(sdk::Timestamp time, const std::string& target, bool success,
                              double response_ms) {
  sdk::Record r;
  r.kind = "http_check";
  r.time = time;
  r.id = sdk::make_uuid_v7(time);
  r.add("target", target);
  r.add("url", "https://" + target + ".example/");
  r.add("method", std::string("GET"));
  r.add("agent", std::string("test-agent"));
  r.add("success", success);
  r.add("status_code", std::int64_t{success ? 200 : 503});
  r.add("error", success ? sdk::Value() : sdk::Value(std::string("http_status")));
  r.add("error_message", success ? sdk::Value() : sdk::Value(std::string("status 503")));
  r.add("response_time_ms", response_ms);
  r.add("dns_ms", 1.25);
  r.add("connect_ms", 2.5);
  r.add("tls_ms", sdk::Value());
  r.add("ttfb_ms", 10.0);
  r.add("transfer_ms", 0.125);
  r.add("body_bytes", std::int64_t{1256});
  r.add("http_version", std::string("2"));
  r.add("remote_ip", std::string("192.0.2.7"));
  r.add("redirects", std::int64_t{1});
  r.add("regex_matched", true);
  r.add("tls_cert_not_after", sdk::Timestamp{time.micros + 86'400'000'000LL * 30});
  r.add("tls_cert_issuer", std::string("CN=Test CA"));
  r.add("lateness_ms", 0.5);
  r.labels["region"] = "eu-west";
  return r;
}

}  // namespace webmon::plugins::postgres_sink::testing
