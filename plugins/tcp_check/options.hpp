// tcp_check's options table, declared once: the host validates with it (types, bounds,
// choices, unknown keys, `targets[3].port` in errors), load_options() fills the structs with
// it, and the docs test compares README.md and sample.yaml with it.
//
// Per-target options have no default in kTargetOptions: a target that does not set one takes
// the plugin-level option of the same name, which carries the default.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "webmon/sdk/check.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "webmon/sdk/scheduler.hpp"

namespace webmon::plugins::tcp_check {

using sdk::OptionSpec;
using sdk::OptionType;
using Labels = std::map<std::string, std::string, std::less<>>;

/// Options a target may set (each also exists at plugin level as that target's default).
struct TargetOptions {
  std::string name;
  std::string host;
  std::int64_t port = 0;
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> ip_version;
  std::optional<std::string> send;
  std::optional<std::string> expect;
  std::optional<std::uint64_t> max_reply_size;
  std::optional<bool> tls;
  std::optional<bool> tls_verify;
  std::optional<std::string> ca_file;
  std::optional<std::string> server_name;
  std::optional<std::chrono::milliseconds> max_response_time;
  std::optional<std::chrono::milliseconds> min_cert_validity;
  Labels labels;
};

struct Options {
  std::vector<TargetOptions> targets;
  std::optional<std::string> targets_file;
  sdk::Shard shard;
  TargetOptions defaults;  // plugin-level values of the per-target options
  std::int64_t max_concurrency = 0;
  std::int64_t batch_size = 0;
  std::chrono::milliseconds flush_interval{};
  bool once = false;
};

// `shard: {index, count}`: the SDK's table, the same in every check plugin.
using sdk::kShardOptions;

// D(x): the default at plugin level, nullptr at target level.
#define WEBMON_TCP_CHECK_TARGET_OPTIONS(D, B)                                                    \
  {.name = "interval",                                                                           \
   .type = OptionType::duration,                                                                 \
   .default_value = D("30s"),                                                                    \
   .required = false,                                                                            \
   .description = "time between two checks of a target",                                         \
   .min = "1ms",                                                                                 \
   .max = "1d",                                                                                  \
   .assign = B(interval)},                                                                       \
      {.name = "timeout",                                                                        \
       .type = OptionType::duration,                                                             \
       .default_value = D("10s"),                                                                \
       .required = false,                                                                        \
       .description = "limit for a whole check (DNS, connect, TLS, send, reply)",                \
       .min = "1ms",                                                                             \
       .max = "10m",                                                                             \
       .assign = B(timeout)},                                                                    \
      {.name = "ip_version",                                                                     \
       .type = OptionType::string,                                                               \
       .default_value = D("any"),                                                                \
       .required = false,                                                                        \
       .description = "address family: any, 4 or 6",                                             \
       .choices = "any|4|6",                                                                     \
       .assign = B(ip_version)},                                                                 \
      {.name = "send",                                                                           \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "payload sent after connecting (and after TLS)",                           \
       .assign = B(send)},                                                                       \
      {.name = "expect",                                                                         \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PCRE2 regular expression the reply must match",                           \
       .assign = B(expect)},                                                                     \
      {.name = "max_reply_size",                                                                 \
       .type = OptionType::size,                                                                 \
       .default_value = D("64KiB"),                                                              \
       .required = false,                                                                        \
       .description = "reply bytes read at most while waiting for `expect` to match",            \
       .min = "1",                                                                               \
       .max = "16MiB",                                                                           \
       .assign = B(max_reply_size)},                                                             \
      {.name = "tls",                                                                            \
       .type = OptionType::boolean,                                                              \
       .default_value = D("false"),                                                              \
       .required = false,                                                                        \
       .description = "TLS handshake after connecting",                                          \
       .assign = B(tls)},                                                                        \
      {.name = "tls_verify",                                                                     \
       .type = OptionType::boolean,                                                              \
       .default_value = D("true"),                                                               \
       .required = false,                                                                        \
       .description = "verify the certificate chain and server_name (TLS)",                      \
       .assign = B(tls_verify)},                                                                 \
      {.name = "ca_file",                                                                        \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PEM bundle of trusted CAs (default: system store)",                       \
       .assign = B(ca_file)},                                                                    \
      {.name = "server_name",                                                                    \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "TLS SNI and name verified (default: host unless it is an IP address)",    \
       .assign = B(server_name)},                                                                \
      {.name = "max_response_time",                                                              \
       .type = OptionType::duration,                                                             \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "a slower check (response_time_ms) fails with error slow",                 \
       .min = "1ms",                                                                             \
       .assign = B(max_response_time)},                                                          \
      {.name = "min_cert_validity",                                                              \
       .type = OptionType::duration,                                                             \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "with tls: a leaf certificate expiring sooner fails with cert_expiring",   \
       .min = "0",                                                                               \
       .assign = B(min_cert_validity)},                                                          \
      {.name = "labels",                                                                         \
       .type = OptionType::string_map,                                                           \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "labels on every record; target labels are merged over plugin-level ones", \
       .assign = B(labels)},

#define WEBMON_TCP_CHECK_NO_DEFAULT(x) nullptr
#define WEBMON_TCP_CHECK_DEFAULT(x) x
#define WEBMON_TCP_CHECK_BIND_TARGET(m) sdk::bind<&TargetOptions::m>()
#define WEBMON_TCP_CHECK_BIND_DEFAULT(m) &assign_default<&TargetOptions::m>

// Plugin-level copies of the per-target options bind into Options::defaults.
template <auto Member>
void assign_default(void* target, const sdk::ConfigNode& value) {
  sdk::from_config(value, static_cast<Options*>(target)->defaults.*Member);
}

inline constexpr OptionSpec kTargetOptions[] = {
    {.name = "host",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "host name or IP address to connect to",
     .assign = sdk::bind<&TargetOptions::host>()},
    {.name = "port",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = true,
     .description = "TCP port",
     .min = "1",
     .max = "65535",
     .assign = sdk::bind<&TargetOptions::port>()},
    {.name = "name",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "target name in records (default: host:port); unique",
     .assign = sdk::bind<&TargetOptions::name>()},
    WEBMON_TCP_CHECK_TARGET_OPTIONS(WEBMON_TCP_CHECK_NO_DEFAULT, WEBMON_TCP_CHECK_BIND_TARGET)};

inline constexpr OptionSpec kOptions[] = {
    {.name = "targets",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "targets to check: host and port (required), name and any per-target "
                    "option below",
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
    {.name = "shard",
     .type = OptionType::object,
     .default_value = nullptr,
     .required = false,
     .description = "{index, count}: check only the targets whose name hashes to this shard",
     .children = kShardOptions,
     .child_count = sizeof(kShardOptions) / sizeof(kShardOptions[0]),
     .assign = sdk::bind_object<&Options::shard, kShardOptions>()},
    WEBMON_TCP_CHECK_TARGET_OPTIONS(WEBMON_TCP_CHECK_DEFAULT, WEBMON_TCP_CHECK_BIND_DEFAULT){
        .name = "max_concurrency",
        .type = OptionType::integer,
        .default_value = "500",
        .required = false,
        .description = "checks in flight at once; due checks wait beyond it",
        .min = "1",
        .max = "100000",
        .assign = sdk::bind<&Options::max_concurrency>()},
    {.name = "batch_size",
     .type = OptionType::integer,
     .default_value = "500",
     .required = false,
     .description = "records per emitted batch (at most)",
     .min = "1",
     .max = "100000",
     .assign = sdk::bind<&Options::batch_size>()},
    {.name = "flush_interval",
     .type = OptionType::duration,
     .default_value = "100ms",
     .required = false,
     .description = "longest time a result waits for its batch to fill",
     .min = "0",
     .max = "1m",
     .assign = sdk::bind<&Options::flush_interval>()},
    {.name = "once",
     .type = OptionType::boolean,
     .default_value = "false",
     .required = false,
     .description = "check every target once, immediately, then finish",
     .assign = sdk::bind<&Options::once>()},
};

#undef WEBMON_TCP_CHECK_TARGET_OPTIONS
#undef WEBMON_TCP_CHECK_NO_DEFAULT
#undef WEBMON_TCP_CHECK_DEFAULT
#undef WEBMON_TCP_CHECK_BIND_TARGET
#undef WEBMON_TCP_CHECK_BIND_DEFAULT

}  // namespace webmon::plugins::tcp_check
