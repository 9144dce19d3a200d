// http_check's options table, declared once: the host validates with it (types, bounds,
// choices, unknown keys, `targets[3].timeout` in errors), load_options() fills the structs
// below with it (targets_file items too), --list-plugins prints it, and the docs tests compare
// README.md and sample.yaml with it.
//
// Per-target options have no default in kTargetOptions: a target that does not set one takes
// the plugin-level option of the same name (Options::defaults), which carries the default.
// What the table cannot express is checked in config.cpp: URLs, regular expressions, status
// ranges, networks, encodings, files, and options that depend on each other.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "webmon/sdk/check.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "webmon/sdk/scheduler.hpp"

namespace webmon::plugins::http_check {

using sdk::OptionSpec;
using sdk::OptionType;
using StringMap = std::map<std::string, std::string, std::less<>>;

/// One item of `json`.
struct JsonAssertionOptions {
  std::string pointer;
  std::optional<std::string> equals;
  std::optional<std::string> regex;
};

inline constexpr OptionSpec kJsonAssertionOptions[] = {
    {.name = "pointer",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "JSON pointer (RFC 6901) into the body, e.g. /status or /items/0/id; \"\" is "
                    "the whole body",
     .assign = sdk::bind<&JsonAssertionOptions::pointer>()},
    {.name = "equals",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "the value's text must equal this (a string's content; other values as "
                    "compact JSON)",
     .assign = sdk::bind<&JsonAssertionOptions::equals>()},
    {.name = "regex",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "PCRE2 regular expression the value's text must match",
     .assign = sdk::bind<&JsonAssertionOptions::regex>()},
};

/// `json`, as a struct so that a target without it (inherit) differs from `json: []` (none).
struct JsonOption {
  std::vector<JsonAssertionOptions> items;
};
/// Fills a JsonOption (found by argument-dependent lookup from sdk::bind and load_options).
inline void from_config(const sdk::ConfigNode& n, JsonOption& out) {
  sdk::bind_each<&JsonOption::items, kJsonAssertionOptions>()(&out, n);
}

/// Options a target may set (each also exists at plugin level as that target's default).
struct TargetOptions {
  std::string url;
  std::optional<std::string> name;
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> method;
  std::optional<StringMap> headers;
  std::optional<std::string> body;
  std::optional<std::vector<std::string>> expect_status;
  std::optional<std::string> body_regex;
  std::optional<std::string> body_regex_absent;
  std::optional<std::string> follow_redirects;
  std::optional<std::vector<std::string>> internal_networks;
  std::optional<std::string> accept_encoding;
  std::optional<std::int64_t> max_redirects;
  std::optional<bool> tls_verify;
  std::optional<std::string> ca_file;
  std::optional<std::string> cert_file;
  std::optional<std::string> key_file;
  std::optional<std::string> ip_version;
  std::optional<std::string> proxy;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> bearer_token;
  std::optional<StringMap> labels;
  std::optional<std::uint64_t> max_body_size;
  std::optional<JsonOption> json;
  std::optional<std::chrono::milliseconds> max_response_time;
  std::optional<std::chrono::milliseconds> min_cert_validity;
};

struct Options {
  std::vector<TargetOptions> targets;
  std::optional<std::string> targets_file;
  std::chrono::milliseconds targets_file_poll{};
  sdk::Shard shard;
  TargetOptions defaults;  // plugin-level values of the per-target options
  std::int64_t max_concurrency = 0;
  std::int64_t threads = 0;
  bool reuse_connections = false;
  std::chrono::milliseconds dns_cache{};
  std::string user_agent;
  std::int64_t batch_size = 0;
  std::chrono::milliseconds flush_interval{};
  bool once = false;
};

// `shard: {index, count}`: the SDK's table, the same in every check plugin.
using sdk::kShardOptions;

/// Plugin-level copies of the per-target options bind into Options::defaults.
template <auto Member>
void assign_default(void* target, const sdk::ConfigNode& value) {
  sdk::from_config(value, static_cast<Options*>(target)->defaults.*Member);
}

// D(x): the default at plugin level, nullptr at target level; B(member): the binding.
#define WEBMON_HTTP_CHECK_TARGET_OPTIONS(D, B)                                                   \
  {.name = "interval",                                                                           \
   .type = OptionType::duration,                                                                 \
   .default_value = D("30s"),                                                                    \
   .required = false,                                                                            \
   .description = "time between two checks of a target",                                         \
   .min = "1ms",                                                                                 \
   .assign = B(interval)},                                                                       \
      {.name = "timeout",                                                                        \
       .type = OptionType::duration,                                                             \
       .default_value = D("10s"),                                                                \
       .required = false,                                                                        \
       .description =                                                                            \
           "limit for a whole check (DNS, connect, TLS, request, "                               \
           "body)",                                                                              \
       .min = "1ms",                                                                             \
       .assign = B(timeout)},                                                                    \
      {.name = "method",                                                                         \
       .type = OptionType::string,                                                               \
       .default_value = D("GET"),                                                                \
       .required = false,                                                                        \
       .description = "HTTP method (GET, HEAD, POST, PUT, ...)",                                 \
       .assign = B(method)},                                                                     \
      {.name = "headers",                                                                        \
       .type = OptionType::string_map,                                                           \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "request headers; target headers are merged over plugin-level ones",       \
       .assign = B(headers)},                                                                    \
      {.name = "body",                                                                           \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "request body (sent with the method above)",                               \
       .assign = B(body)},                                                                       \
      {.name = "expect_status",                                                                  \
       .type = OptionType::string_list,                                                          \
       .default_value = D("200-399"),                                                            \
       .required = false,                                                                        \
       .description = "accepted status codes and ranges, e.g. [200, 301-302, 404]",              \
       .assign = B(expect_status)},                                                              \
      {.name = "body_regex",                                                                     \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PCRE2 regular expression the body must match",                            \
       .assign = B(body_regex)},                                                                 \
      {.name = "body_regex_absent",                                                              \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PCRE2 regular expression the body must not match",                        \
       .assign = B(body_regex_absent)},                                                          \
      {.name = "follow_redirects",                                                               \
       .type = OptionType::string,                                                               \
       .default_value = D("true"),                                                               \
       .required = false,                                                                        \
       .description =                                                                            \
           "follow 3xx Location headers: true, false, or same_host (only to the "                \
           "same host name)",                                                                    \
       .choices = "true|false|same_host",                                                        \
       .assign = B(follow_redirects)},                                                           \
      {.name = "internal_networks",                                                              \
       .type = OptionType::string_list,                                                          \
       .default_value = D("loopback,private,link_local"),                                        \
       .required = false,                                                                        \
       .description =                                                                            \
           "addresses a redirect from an address outside them may not lead to "                  \
           "(CIDRs, loopback, private, link_local; none: no restriction)",                       \
       .assign = B(internal_networks)},                                                          \
      {.name = "accept_encoding",                                                                \
       .type = OptionType::string,                                                               \
       .default_value = D("all"),                                                                \
       .required = false,                                                                        \
       .description =                                                                            \
           "Accept-Encoding: all (every encoding libcurl decodes), identity, or "                \
           "e.g. \"gzip, br\"; compressed bodies are decoded before body conditions",            \
       .assign = B(accept_encoding)},                                                            \
      {.name = "max_redirects",                                                                  \
       .type = OptionType::integer,                                                              \
       .default_value = D("10"),                                                                 \
       .required = false,                                                                        \
       .description = "redirects followed before the check fails with too_many_redirects",       \
       .min = "0",                                                                               \
       .max = "1000",                                                                            \
       .assign = B(max_redirects)},                                                              \
      {.name = "tls_verify",                                                                     \
       .type = OptionType::boolean,                                                              \
       .default_value = D("true"),                                                               \
       .required = false,                                                                        \
       .description = "verify the server certificate chain and host name",                       \
       .assign = B(tls_verify)},                                                                 \
      {.name = "ca_file",                                                                        \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PEM bundle of trusted CAs (default: the system store)",                   \
       .assign = B(ca_file)},                                                                    \
      {.name = "cert_file",                                                                      \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PEM client certificate (mutual TLS)",                                     \
       .assign = B(cert_file)},                                                                  \
      {.name = "key_file",                                                                       \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PEM private key of cert_file",                                            \
       .assign = B(key_file)},                                                                   \
      {.name = "ip_version",                                                                     \
       .type = OptionType::string,                                                               \
       .default_value = D("any"),                                                                \
       .required = false,                                                                        \
       .description = "address family: any, 4 or 6",                                             \
       .choices = "any|4|6",                                                                     \
       .assign = B(ip_version)},                                                                 \
      {.name = "proxy",                                                                          \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "proxy URL; unset = http_proxy/https_proxy/no_proxy from the "                        \
           "environment, \"\" = none",                                                           \
       .assign = B(proxy)},                                                                      \
      {.name = "username",                                                                       \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "HTTP basic auth user name",                                               \
       .assign = B(username)},                                                                   \
      {.name = "password",                                                                       \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "HTTP basic auth password (use ${VAR})",                                   \
       .secret = true,                                                                           \
       .assign = B(password)},                                                                   \
      {.name = "bearer_token",                                                                   \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "sends Authorization: Bearer <token> (use ${VAR})",                        \
       .secret = true,                                                                           \
       .assign = B(bearer_token)},                                                               \
      {.name = "labels",                                                                         \
       .type = OptionType::string_map,                                                           \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "labels on every record; target labels are merged over plugin-level ones", \
       .assign = B(labels)},                                                                     \
      {.name = "max_body_size",                                                                  \
       .type = OptionType::size,                                                                 \
       .default_value = D("10MiB"),                                                              \
       .required = false,                                                                        \
       .description = "a larger body fails the check (error other) instead of being read on",    \
       .min = "1",                                                                               \
       .assign = B(max_body_size)},                                                              \
      {.name = "json",                                                                           \
       .type = OptionType::object_list,                                                          \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "assertions on a JSON body: [{pointer, equals | regex}] (json_invalid, "              \
           "json_mismatch)",                                                                     \
       .children = kJsonAssertionOptions,                                                        \
       .child_count = sizeof(kJsonAssertionOptions) / sizeof(kJsonAssertionOptions[0]),          \
       .assign = B(json)},                                                                       \
      {.name = "max_response_time",                                                              \
       .type = OptionType::duration,                                                             \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "a slower check fails with error slow (default: no "                                  \
           "limit)",                                                                             \
       .min = "1ms",                                                                             \
       .assign = B(max_response_time)},                                                          \
      {.name = "min_cert_validity",                                                              \
       .type = OptionType::duration,                                                             \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "an https certificate expiring sooner fails with cert_expiring, e.g. "                \
           "14d (default: off)",                                                                 \
       .min = "0",                                                                               \
       .assign = B(min_cert_validity)},

#define WEBMON_HTTP_CHECK_NO_DEFAULT(x) nullptr
#define WEBMON_HTTP_CHECK_DEFAULT(x) x
#define WEBMON_HTTP_CHECK_BIND_TARGET(m) sdk::bind<&TargetOptions::m>()
#define WEBMON_HTTP_CHECK_BIND_DEFAULT(m) &assign_default<&TargetOptions::m>

inline constexpr OptionSpec kTargetOptions[] = {
    {.name = "url",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "http:// or https:// URL to check",
     .assign = sdk::bind<&TargetOptions::url>()},
    {.name = "name",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "target name in records (default: the url)",
     .assign = sdk::bind<&TargetOptions::name>()},
    WEBMON_HTTP_CHECK_TARGET_OPTIONS(WEBMON_HTTP_CHECK_NO_DEFAULT, WEBMON_HTTP_CHECK_BIND_TARGET)};

inline constexpr OptionSpec kOptions[] = {
    {.name = "targets",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "targets to check: url (required), name and any per-target option below",
     .children = kTargetOptions,
     .child_count = sizeof(kTargetOptions) / sizeof(kTargetOptions[0]),
     .assign = sdk::bind_each<&Options::targets, kTargetOptions>()},
    {.name = "targets_file",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "YAML file holding a list of targets (same keys as targets); relative to "
                    "the pipeline file",
     .assign = sdk::bind<&Options::targets_file>()},
    {.name = "targets_file_poll",
     .type = OptionType::duration,
     .default_value = "1s",
     .required = false,
     .description = "how often targets_file is checked for changes (reloaded when changed; "
                    "also on SIGHUP); 0s: on SIGHUP only",
     .min = "0",
     .assign = sdk::bind<&Options::targets_file_poll>()},
    {.name = "shard",
     .type = OptionType::object,
     .default_value = nullptr,
     .required = false,
     .description = "{index, count}: check only the targets whose name hashes to this shard",
     .children = kShardOptions,
     .child_count = sizeof(kShardOptions) / sizeof(kShardOptions[0]),
     .assign = sdk::bind_object<&Options::shard, kShardOptions>()},
    WEBMON_HTTP_CHECK_TARGET_OPTIONS(WEBMON_HTTP_CHECK_DEFAULT, WEBMON_HTTP_CHECK_BIND_DEFAULT){
        .name = "max_concurrency",
        .type = OptionType::integer,
        .default_value = "500",
        .required = false,
        .description = "checks in flight at once; due checks wait (and are late) beyond it",
        .min = "1",
        .max = "100000",
        .assign = sdk::bind<&Options::max_concurrency>()},
    {.name = "threads",
     .type = OptionType::integer,
     .default_value = "0",
     .required = false,
     .description = "check loops (threads), each with its share of the targets and of "
                    "max_concurrency; one loop uses one core; 0: one per CPU core (at most 8 "
                    "and at most one per target)",
     .min = "0",
     .max = "64",
     .assign = sdk::bind<&Options::threads>()},
    {.name = "reuse_connections",
     .type = OptionType::boolean,
     .default_value = "false",
     .required = false,
     .description = "keep connections and TLS sessions between checks (false: every check "
                    "connects anew)",
     .assign = sdk::bind<&Options::reuse_connections>()},
    {.name = "dns_cache",
     .type = OptionType::duration,
     .default_value = "0s",
     .required = false,
     .description = "keep host-name lookups this long (0s: every check resolves anew, so "
                    "dns_ms is real; with reuse_connections, 0s keeps libcurl's 60 s)",
     .min = "0",
     .assign = sdk::bind<&Options::dns_cache>()},
    {.name = "user_agent",
     .type = OptionType::string,
     .default_value = "webmon-http-check/0.1",
     .required = false,
     .description = "User-Agent header",
     .assign = sdk::bind<&Options::user_agent>()},
    {.name = "batch_size",
     .type = OptionType::integer,
     .default_value = "500",
     .required = false,
     .description = "records per emitted batch (at most)",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Options::batch_size>()},
    {.name = "flush_interval",
     .type = OptionType::duration,
     .default_value = "100ms",
     .required = false,
     .description = "longest time a result waits for its batch to fill",
     .min = "0",
     .assign = sdk::bind<&Options::flush_interval>()},
    {.name = "once",
     .type = OptionType::boolean,
     .default_value = "false",
     .required = false,
     .description = "check every target once, immediately, then finish (smoke tests, cron)",
     .assign = sdk::bind<&Options::once>()},
};

#undef WEBMON_HTTP_CHECK_TARGET_OPTIONS
#undef WEBMON_HTTP_CHECK_NO_DEFAULT
#undef WEBMON_HTTP_CHECK_DEFAULT
#undef WEBMON_HTTP_CHECK_BIND_TARGET
#undef WEBMON_HTTP_CHECK_BIND_DEFAULT

}  // namespace webmon::plugins::http_check
