// http_check's options table: the one declaration of every option, used by the host (validation,
// defaults, --list-plugins), by the plugin (targets_file items are checked against kTargetOptions)
// and by the tests that compare sample.yaml and README.md with it.
//
// Per-target options have no default in kTargetOptions: a target that does not set one inherits
// the plugin-level option of the same name, which carries the default.
#pragma once

#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::http_check {

using sdk::OptionSpec;
using sdk::OptionType;

inline constexpr OptionSpec kShardOptions[] = {
    {"index", OptionType::integer, nullptr, true, "this agent's shard, 0 <= index < count"},
    {"count", OptionType::integer, nullptr, true, "number of shards the target list is split into"},
};

// One JSON body assertion (an item of `json`).
inline constexpr OptionSpec kJsonAssertionOptions[] = {
    {"pointer", OptionType::string, nullptr, true,
     "JSON pointer (RFC 6901) into the body, e.g. /status or /items/0/id; \"\" is the whole body"},
    {"equals", OptionType::string, nullptr, false,
     "the value's text must equal this (a string's content; other values as compact JSON)"},
    {"regex", OptionType::string, nullptr, false,
     "PCRE2 regular expression the value's text must match"},
};

// Options a target may set; each also exists at plugin level as that target's default.
#define WEBMON_HTTP_CHECK_TARGET_OPTIONS(D)                                                       \
  {"interval", OptionType::duration, D("30s"), false, "time between two checks of a target"},     \
      {"timeout", OptionType::duration, D("10s"), false,                                          \
       "limit for a whole check (DNS, connect, TLS, request, body)"},                             \
      {"method", OptionType::string, D("GET"), false, "HTTP method (GET, HEAD, POST, PUT, ...)"}, \
      {"headers", OptionType::string_map, nullptr, false,                                         \
       "request headers; target headers are merged over plugin-level ones"},                      \
      {"body", OptionType::string, nullptr, false, "request body (sent with the method above)"},  \
      {"expect_status", OptionType::string_list, D("200-399"), false,                             \
       "accepted status codes and ranges, e.g. [200, 301-302, 404]"},                             \
      {"body_regex", OptionType::string, nullptr, false,                                          \
       "PCRE2 regular expression the body must match"},                                           \
      {"body_regex_absent", OptionType::string, nullptr, false,                                   \
       "PCRE2 regular expression the body must not match"},                                       \
      {"follow_redirects", OptionType::string, D("true"), false,                                  \
       "follow 3xx Location headers: true, false, or same_host (only to the same host name)"},    \
      {"internal_networks", OptionType::string_list, D("loopback,private,link_local"), false,     \
       "addresses a redirect from an address outside them may not lead to (CIDRs, loopback, "     \
       "private, link_local; none: no restriction)"},                                             \
      {"accept_encoding", OptionType::string, D("all"), false,                                    \
       "Accept-Encoding: all (every encoding libcurl decodes), identity, or e.g. \"gzip, br\"; "   \
       "compressed bodies are decoded before body conditions"},                                   \
      {"max_redirects", OptionType::integer, D("10"), false,                                      \
       "redirects followed before the check fails with too_many_redirects"},                      \
      {"tls_verify", OptionType::boolean, D("true"), false,                                       \
       "verify the server certificate chain and host name"},                                      \
      {"ca_file", OptionType::string, nullptr, false,                                             \
       "PEM bundle of trusted CAs (default: the system store)"},                                  \
      {"cert_file", OptionType::string, nullptr, false, "PEM client certificate (mutual TLS)"},   \
      {"key_file", OptionType::string, nullptr, false, "PEM private key of cert_file"},           \
      {"ip_version", OptionType::string, D("any"), false, "address family: any, 4 or 6"},         \
      {"proxy", OptionType::string, nullptr, false,                                               \
       "proxy URL; unset = http_proxy/https_proxy/no_proxy from the environment, \"\" = none"},   \
      {"username", OptionType::string, nullptr, false, "HTTP basic auth user name"},              \
      {"password", OptionType::string, nullptr, false, "HTTP basic auth password (use ${VAR})",   \
       nullptr, 0, true},                                                                         \
      {"bearer_token", OptionType::string, nullptr, false,                                        \
       "sends Authorization: Bearer <token> (use ${VAR})", nullptr, 0, true},                     \
      {"labels", OptionType::string_map, nullptr, false,                                          \
       "labels on every record; target labels are merged over plugin-level ones"},                \
      {"max_body_size", OptionType::size, D("10MiB"), false,                                      \
       "a larger body fails the check (error other) instead of being read on"},                   \
      {"json", OptionType::object_list, nullptr, false,                                           \
       "assertions on a JSON body: [{pointer, equals | regex}] (json_invalid, json_mismatch)",    \
       kJsonAssertionOptions, sizeof(kJsonAssertionOptions) / sizeof(kJsonAssertionOptions[0])},  \
      {"max_response_time", OptionType::duration, nullptr, false,                                 \
       "a slower check fails with error slow (default: no limit)"},                               \
      {"min_cert_validity", OptionType::duration, nullptr, false,                                 \
       "an https certificate expiring sooner fails with cert_expiring, e.g. 14d (default: off)"},

#define WEBMON_HTTP_CHECK_NO_DEFAULT(x) nullptr
#define WEBMON_HTTP_CHECK_DEFAULT(x) x

inline constexpr OptionSpec kTargetOptions[] = {
    {"url", OptionType::string, nullptr, true, "http:// or https:// URL to check"},
    {"name", OptionType::string, nullptr, false, "target name in records (default: the url)"},
    WEBMON_HTTP_CHECK_TARGET_OPTIONS(WEBMON_HTTP_CHECK_NO_DEFAULT)};

inline constexpr OptionSpec kOptions[] = {
    {"targets", OptionType::object_list, nullptr, false,
     "targets to check: url (required), name and any per-target option below", kTargetOptions,
     sizeof(kTargetOptions) / sizeof(kTargetOptions[0])},
    {"targets_file", OptionType::string, nullptr, false,
     "YAML file holding a list of targets (same keys as targets); relative to the pipeline file"},
    {"targets_file_poll", OptionType::duration, "1s", false,
     "how often targets_file is checked for changes (reloaded when changed; also on SIGHUP); "
     "0s: on SIGHUP only"},
    {"shard", OptionType::object, nullptr, false,
     "{index, count}: check only the targets whose name hashes to this shard", kShardOptions,
     sizeof(kShardOptions) / sizeof(kShardOptions[0])},
    WEBMON_HTTP_CHECK_TARGET_OPTIONS(WEBMON_HTTP_CHECK_DEFAULT)
    {"max_concurrency", OptionType::integer, "500", false,
     "checks in flight at once; due checks wait (and are late) beyond it"},
    {"threads", OptionType::integer, "0", false,
     "check loops (threads), each with its share of the targets and of max_concurrency; "
     "one loop uses one core; 0: one per CPU core (at most 8 and at most one per target)"},
    {"reuse_connections", OptionType::boolean, "false", false,
     "keep connections and TLS sessions between checks (false: every check connects anew)"},
    {"dns_cache", OptionType::duration, "0s", false,
     "keep host-name lookups this long (0s: every check resolves anew, so dns_ms is real; "
     "with reuse_connections, 0s keeps libcurl's 60 s)"},
    {"user_agent", OptionType::string, "webmon-http-check/0.1", false, "User-Agent header"},
    {"batch_size", OptionType::integer, "500", false, "records per emitted batch (at most)"},
    {"flush_interval", OptionType::duration, "100ms", false,
     "longest time a result waits for its batch to fill"},
    {"once", OptionType::boolean, "false", false,
     "check every target once, immediately, then finish (smoke tests, cron)"},
};

#undef WEBMON_HTTP_CHECK_TARGET_OPTIONS
#undef WEBMON_HTTP_CHECK_NO_DEFAULT
#undef WEBMON_HTTP_CHECK_DEFAULT

}  // namespace webmon::plugins::http_check
