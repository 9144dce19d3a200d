// The dns_check record kind, declared once: the plugin declares and emits it, the README's
// field table is checked against it (tests/plugin_docs_test.cpp).
#pragma once

#include "webmon/sdk/kind.hpp"

namespace webmon::plugins::dns_check {

using sdk::FieldType;

inline constexpr sdk::FieldSpec kDnsCheckFields[] = {
    {"target", FieldType::string, false, "", "target name"},
    {"query", FieldType::string, false, "", "name looked up"},
    {"type", FieldType::string, false, "", "record type asked for (A, AAAA, ...)"},
    {"server", FieldType::string, false, "", "server asked, address:port"},
    {"agent", FieldType::string, false, "", "agent name (agent.name)"},
    {"success", FieldType::boolean, false, "",
     "a reply came with the expected rcode and the expected answers"},
    {"error", FieldType::string, true, "", "error class; null on success"},
    {"error_message", FieldType::string, true, "", "human-readable detail"},
    {"rcode", FieldType::string, true, "",
     "response code (NOERROR, NXDOMAIN, ...); null without a reply"},
    {"answer_count", FieldType::int64, true, "",
     "answers of the queried type; null without a reply"},
    {"answers", FieldType::string, true, "",
     "answers of the queried type, sorted, joined with \", \"; null without a reply"},
    {"min_ttl", FieldType::int64, true, "s", "smallest TTL of the answers; null without answers"},
    {"authoritative", FieldType::boolean, true, "", "AA flag of the reply"},
    {"truncated", FieldType::boolean, true, "", "TC flag of the reply (answers may be missing)"},
    {"query_time_ms", FieldType::float64, true, "ms", "query sent until the reply arrived"},
    {"response_time_ms", FieldType::float64, false, "ms", "whole check"},
    {"lateness_ms", FieldType::float64, false, "ms", "actual start - scheduled start"},
    {"labels", FieldType::string_map, false, "", "target and plugin-level labels"},
};

inline constexpr sdk::KindSpec kDnsCheckKind =
    sdk::make_kind("dns_check", 1, kDnsCheckFields, "target", "one DNS query of one target");

inline constexpr sdk::KindSpec kDnsCheckKinds[] = {kDnsCheckKind};

}  // namespace webmon::plugins::dns_check
