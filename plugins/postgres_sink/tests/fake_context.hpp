// Driving PostgresSink directly in tests: the SDK test kit's fake context and Ack log, a valid
// http_check record, and a tcp_check-shaped kind (as a third-party check would declare it) with
// its records.
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

/// A tcp_check-shaped declaration, version 1.
inline constexpr sdk::FieldSpec kTcpFieldsV1[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"host", sdk::FieldType::string, false, "", "host connected to"},
    {"port", sdk::FieldType::int64, false, "", "TCP port"},
    {"success", sdk::FieldType::boolean, false, "", "connected (and the reply matched)"},
    {"error", sdk::FieldType::string, true, "", "error class; null on success"},
    {"connect_ms", sdk::FieldType::float64, true, "ms", "TCP connect"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "whole check"},
    {"cert_not_after", sdk::FieldType::timestamp, true, "UTC", "certificate expiry"},
    {"labels", sdk::FieldType::string_map, false, "", "labels"},
};
inline constexpr sdk::KindSpec kTcpKindV1 =
    sdk::make_kind("tcp_check", 1, kTcpFieldsV1, "target", "one TCP check");

/// Version 2 adds a field.
inline constexpr sdk::FieldSpec kTcpFieldsV2[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"host", sdk::FieldType::string, false, "", "host connected to"},
    {"port", sdk::FieldType::int64, false, "", "TCP port"},
    {"success", sdk::FieldType::boolean, false, "", "connected (and the reply matched)"},
    {"error", sdk::FieldType::string, true, "", "error class; null on success"},
    {"connect_ms", sdk::FieldType::float64, true, "ms", "TCP connect"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "whole check"},
    {"cert_not_after", sdk::FieldType::timestamp, true, "UTC", "certificate expiry"},
    {"labels", sdk::FieldType::string_map, false, "", "labels"},
    {"tls_version", sdk::FieldType::string, true, "", "negotiated TLS version"},
};
inline constexpr sdk::KindSpec kTcpKindV2 =
    sdk::make_kind("tcp_check", 2, kTcpFieldsV2, "target", "one TCP check");

/// A version that changes the type of `port` (int → string): cannot be applied.
inline constexpr sdk::FieldSpec kTcpFieldsPortString[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"host", sdk::FieldType::string, false, "", "host connected to"},
    {"port", sdk::FieldType::string, false, "", "TCP port or service name"},
    {"success", sdk::FieldType::boolean, false, "", "connected"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "whole check"},
};
inline constexpr sdk::KindSpec kTcpKindPortString =
    sdk::make_kind("tcp_check", 3, kTcpFieldsPortString, "target", "one TCP check");

/// A valid tcp_check record (version 1 fields) at `time`.
inline sdk::Record make_tcp(sdk::Timestamp time, const std::string& target, bool success,
                            double total_ms) {
  sdk::Record r;
  r.kind = "tcp_check";
  r.time = time;
  r.id = sdk::make_uuid_v7(time);
  r.add("target", target);
  r.add("host", target + ".example");
  r.add("port", std::int64_t{5432});
  r.add("success", success);
  r.add("error", success ? sdk::Value() : sdk::Value(std::string("connect")));
  r.add("connect_ms", success ? sdk::Value(total_ms / 2) : sdk::Value());
  r.add("total_ms", total_ms);
  r.add("cert_not_after", sdk::Timestamp{time.micros + 86'400'000'000LL * 7});
  r.labels["zone"] = "a";
  return r;
}

}  // namespace webmon::plugins::postgres_sink::testing
