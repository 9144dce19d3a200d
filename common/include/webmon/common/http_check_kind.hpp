// The http_check record kind, declared once. Version 2 added body_bytes_wire and failed_url
// (both nullable, so records of version 1 still conform). The http_check plugin declares it (and
// emits its fields in this order), the generator emits it, kafka_source decodes messages of the
// first wire format (which carried no declaration) with it, postgres_sink's table, views and the
// plugin README's field table follow it (tests check each against this list).
#pragma once

#include "webmon/sdk/kind.hpp"

namespace webmon::common {

using sdk::FieldType;

inline constexpr sdk::FieldSpec kHttpCheckFields[] = {
    {"target", FieldType::string, false, "", "target name"},
    {"url", FieldType::string, false, "", "URL requested (the first one, before redirects)"},
    {"method", FieldType::string, false, "", "HTTP method"},
    {"agent", FieldType::string, false, "", "agent name (agent.name)"},
    {"success", FieldType::boolean, false, "",
     "every condition held: transport, status, body regexes, JSON assertions, TLS, "
     "max_response_time, min_cert_validity"},
    {"status_code", FieldType::int64, true, "", "final HTTP status; null when no response arrived"},
    {"error", FieldType::string, true, "", "error class; null on success"},
    {"error_message", FieldType::string, true, "",
     "human-readable detail (libcurl's message or the failed condition)"},
    {"response_time_ms", FieldType::float64, false, "ms", "whole check, all redirects included"},
    {"dns_ms", FieldType::float64, true, "ms", "name resolution"},
    {"connect_ms", FieldType::float64, true, "ms", "TCP connect (after DNS)"},
    {"tls_ms", FieldType::float64, true, "ms", "TLS handshake (after connect); null for http://"},
    {"ttfb_ms", FieldType::float64, true, "ms", "request sent until the first response byte"},
    {"transfer_ms", FieldType::float64, true, "ms",
     "first response byte until the end of the body"},
    {"body_bytes", FieldType::int64, false, "bytes",
     "body bytes received (final response), after decoding a compressed body"},
    {"body_bytes_wire", FieldType::int64, true, "bytes",
     "the same body as received, before decoding (schema version 2)"},
    {"http_version", FieldType::string, true, "", "1.0, 1.1, 2 or 3; null without a response"},
    {"remote_ip", FieldType::string, true, "", "address connected to"},
    {"redirects", FieldType::int64, false, "", "redirects followed"},
    {"failed_url", FieldType::string, true, "",
     "on a failure after a redirect: the URL that failed; null otherwise (schema version 2)"},
    {"regex_matched", FieldType::boolean, true, "",
     "true when the body matched body_regex and did not match body_regex_absent; null when no "
     "regex is configured or no body arrived"},
    {"tls_cert_not_after", FieldType::timestamp, true, "UTC",
     "expiry of the server's leaf certificate (https)"},
    {"tls_cert_issuer", FieldType::string, true, "",
     "issuer of the leaf certificate, RFC 2253 (CN=...,O=...)"},
    {"lateness_ms", FieldType::float64, false, "ms", "actual start - scheduled start"},
    {"tls_version", FieldType::string, true, "", "negotiated protocol, e.g. TLSv1.3"},
    {"labels", FieldType::string_map, false, "", "target and pipeline labels"},
};

inline constexpr sdk::KindSpec kHttpCheckKind =
    sdk::make_kind("http_check", 2, kHttpCheckFields, "target", "one HTTP(S) check of one target");

inline constexpr sdk::KindSpec kHttpCheckKinds[] = {kHttpCheckKind};

}  // namespace webmon::common
