// The tcp_check record kind, declared once: the plugin declares and emits it, the README's
// field table is checked against it (tests/plugin_docs_test.cpp).
#pragma once

#include "webmon/sdk/kind.hpp"

namespace webmon::plugins::tcp_check {

using sdk::FieldType;

inline constexpr sdk::FieldSpec kTcpCheckFields[] = {
    {"target", FieldType::string, false, "", "target name"},
    {"host", FieldType::string, false, "", "host name or address connected to"},
    {"port", FieldType::int64, false, "", "TCP port"},
    {"agent", FieldType::string, false, "", "agent name (agent.name)"},
    {"success", FieldType::boolean, false, "",
     "connected, TLS (if configured) succeeded and the reply matched expect (if configured)"},
    {"error", FieldType::string, true, "", "error class; null on success"},
    {"error_message", FieldType::string, true, "", "human-readable detail"},
    {"remote_ip", FieldType::string, true, "", "address connected to (last one tried)"},
    {"dns_ms", FieldType::float64, true, "ms", "name resolution; 0 for an address literal"},
    {"connect_ms", FieldType::float64, true, "ms", "TCP connect (after DNS)"},
    {"tls_ms", FieldType::float64, true, "ms", "TLS handshake (after connect); null without TLS"},
    {"reply_ms", FieldType::float64, true, "ms",
     "payload sent (or connection ready) until the reply matched expect; null without expect"},
    {"response_time_ms", FieldType::float64, false, "ms", "whole check"},
    {"bytes_sent", FieldType::int64, false, "bytes", "payload bytes sent"},
    {"bytes_received", FieldType::int64, false, "bytes", "reply bytes read"},
    {"reply_matched", FieldType::boolean, true, "",
     "the reply matched expect; null when expect is not set or no reply was read"},
    {"tls_version", FieldType::string, true, "", "negotiated protocol, e.g. TLSv1.3"},
    {"tls_cert_not_after", FieldType::timestamp, true, "UTC",
     "expiry of the server's leaf certificate"},
    {"tls_cert_issuer", FieldType::string, true, "",
     "issuer of the leaf certificate, RFC 2253 (CN=...,O=...)"},
    {"lateness_ms", FieldType::float64, false, "ms", "actual start - scheduled start"},
    {"labels", FieldType::string_map, false, "", "target and plugin-level labels"},
};

inline constexpr sdk::KindSpec kTcpCheckKind =
    sdk::make_kind("tcp_check", 1, kTcpCheckFields, "target", "one TCP (optionally TLS) check");

inline constexpr sdk::KindSpec kTcpCheckKinds[] = {kTcpCheckKind};

}  // namespace webmon::plugins::tcp_check
