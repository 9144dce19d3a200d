// dns_check's options table, declared once: the host validates with it (types, bounds,
// choices, unknown keys, `targets[3].type` in errors), load_options() fills the structs with
// it, and the docs test compares README.md and sample.yaml with it.
//
// Per-target options have no default in kTargetOptions: a target that does not set one takes
// the plugin-level option of the same name, which carries the default.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "webmon/sdk/check.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "webmon/sdk/scheduler.hpp"

namespace webmon::plugins::dns_check {

using sdk::OptionSpec;
using sdk::OptionType;
using Labels = std::map<std::string, std::string, std::less<>>;

/// Options a target may set (each also exists at plugin level as that target's default).
struct TargetOptions {
  std::string name;
  std::string query;
  std::optional<std::string> type;
  std::optional<std::string> server;
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::vector<std::string>> expect;
  std::optional<std::string> expect_regex;
  std::optional<std::string> expect_rcode;
  std::optional<std::int64_t> min_answers;
  std::optional<bool> recursion;
  std::optional<std::chrono::milliseconds> max_response_time;
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

template <auto Member>
void assign_default(void* target, const sdk::ConfigNode& value) {
  sdk::from_config(value, static_cast<Options*>(target)->defaults.*Member);
}

// D(x): the default at plugin level, nullptr at target level; B(member): the binding.
#define WEBMON_DNS_CHECK_TARGET_OPTIONS(D, B)                                                    \
  {.name = "type",                                                                               \
   .type = OptionType::string,                                                                   \
   .default_value = D("A"),                                                                      \
   .required = false,                                                                            \
   .description = "record type: A, AAAA, CNAME, MX, TXT, NS or SOA",                             \
   .choices = "A|AAAA|CNAME|MX|TXT|NS|SOA",                                                      \
   .assign = B(type)},                                                                           \
      {.name = "server",                                                                         \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "DNS server as IP, IP:port or [IPv6]:port (default: the first "                       \
           "nameserver of /etc/resolv.conf)",                                                    \
       .assign = B(server)},                                                                     \
      {.name = "interval",                                                                       \
       .type = OptionType::duration,                                                             \
       .default_value = D("30s"),                                                                \
       .required = false,                                                                        \
       .description = "time between two checks of a target",                                     \
       .min = "1ms",                                                                             \
       .max = "1d",                                                                              \
       .assign = B(interval)},                                                                   \
      {.name = "timeout",                                                                        \
       .type = OptionType::duration,                                                             \
       .default_value = D("5s"),                                                                 \
       .required = false,                                                                        \
       .description = "time to wait for the reply",                                              \
       .min = "1ms",                                                                             \
       .max = "1m",                                                                              \
       .assign = B(timeout)},                                                                    \
      {.name = "expect",                                                                         \
       .type = OptionType::string_list,                                                          \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "answers that must all be present (exact text, e.g. 10.0.0.1 or "                     \
           "\"10 mail.example.com\")",                                                           \
       .assign = B(expect)},                                                                     \
      {.name = "expect_regex",                                                                   \
       .type = OptionType::string,                                                               \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "PCRE2 regular expression one answer must match",                          \
       .assign = B(expect_regex)},                                                               \
      {.name = "expect_rcode",                                                                   \
       .type = OptionType::string,                                                               \
       .default_value = D("NOERROR"),                                                            \
       .required = false,                                                                        \
       .description = "response code the reply must carry",                                      \
       .choices = "NOERROR|FORMERR|SERVFAIL|NXDOMAIN|NOTIMP|REFUSED",                            \
       .assign = B(expect_rcode)},                                                               \
      {.name = "min_answers",                                                                    \
       .type = OptionType::integer,                                                              \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description =                                                                            \
           "answers of the type required (default 1 with expect_rcode NOERROR, "                 \
           "else 0)",                                                                            \
       .min = "0",                                                                               \
       .max = "1000",                                                                            \
       .assign = B(min_answers)},                                                                \
      {.name = "recursion",                                                                      \
       .type = OptionType::boolean,                                                              \
       .default_value = D("true"),                                                               \
       .required = false,                                                                        \
       .description = "ask the server to recurse (RD flag)",                                     \
       .assign = B(recursion)},                                                                  \
      {.name = "max_response_time",                                                              \
       .type = OptionType::duration,                                                             \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "a slower reply (query_time_ms) fails with error slow",                    \
       .min = "1ms",                                                                             \
       .assign = B(max_response_time)},                                                          \
      {.name = "labels",                                                                         \
       .type = OptionType::string_map,                                                           \
       .default_value = nullptr,                                                                 \
       .required = false,                                                                        \
       .description = "labels on every record; target labels are merged over plugin-level ones", \
       .assign = B(labels)},

#define WEBMON_DNS_CHECK_NO_DEFAULT(x) nullptr
#define WEBMON_DNS_CHECK_DEFAULT(x) x
#define WEBMON_DNS_CHECK_BIND_TARGET(m) sdk::bind<&TargetOptions::m>()
#define WEBMON_DNS_CHECK_BIND_DEFAULT(m) &assign_default<&TargetOptions::m>

inline constexpr OptionSpec kTargetOptions[] = {
    {.name = "query",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "the name to look up",
     .assign = sdk::bind<&TargetOptions::query>()},
    {.name = "name",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "target name in records (default: query/TYPE); unique",
     .assign = sdk::bind<&TargetOptions::name>()},
    WEBMON_DNS_CHECK_TARGET_OPTIONS(WEBMON_DNS_CHECK_NO_DEFAULT, WEBMON_DNS_CHECK_BIND_TARGET)};

inline constexpr OptionSpec kOptions[] = {
    {.name = "targets",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "targets to check: query (required), name and any per-target option below",
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
    WEBMON_DNS_CHECK_TARGET_OPTIONS(WEBMON_DNS_CHECK_DEFAULT, WEBMON_DNS_CHECK_BIND_DEFAULT){
        .name = "max_concurrency",
        .type = OptionType::integer,
        .default_value = "500",
        .required = false,
        .description = "queries in flight at once; due checks wait beyond it",
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

#undef WEBMON_DNS_CHECK_TARGET_OPTIONS
#undef WEBMON_DNS_CHECK_NO_DEFAULT
#undef WEBMON_DNS_CHECK_DEFAULT
#undef WEBMON_DNS_CHECK_BIND_TARGET
#undef WEBMON_DNS_CHECK_BIND_DEFAULT

}  // namespace webmon::plugins::dns_check
