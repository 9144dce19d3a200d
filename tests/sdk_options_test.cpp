// sdk/options.hpp: options declared once. Bounds, choices, defaults and bindings of every
// member type, nested tables (object, object_list) with errors naming the full path
// (`targets[1].port`) — both in the plugin (sdk::load_options) and in the host's validation
// (which runs first, on the same table) — and parse_size overflow.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "options.hpp"
#include "pipeline.hpp"
#include "webmon/sdk/kind.hpp"
#include "webmon/sdk/options.hpp"

namespace webmon {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;
using namespace std::chrono_literals;

/// The options of one component written in YAML (indented by four spaces), with the
/// positions the agent's YAML loader gives them: line 4 is the first option.
sdk::ConfigNode yaml_options(const std::string& options) {
  const std::string text = "sources:\n  s:\n    plugin: x\n" + options +
                           "sinks:\n  k:\n    plugin: y\n    inputs: [s]\n";
  return agent::parse_pipeline(text, "p.yaml", [](std::string_view) { return std::nullopt; })
      .components.at(0)
      .options;
}

struct Target {
  std::string host;
  int port = 0;
};
struct Tls {
  bool verify = false;
  std::string ca_file;
};
struct Options {
  bool flag = false;
  int small = 0;
  std::int64_t big = 0;
  std::uint32_t size32 = 0;
  std::uint64_t size64 = 0;
  double ratio = 0;
  std::string mode;
  std::chrono::milliseconds timeout{};
  std::vector<std::string> tags;
  std::map<std::string, std::string, std::less<>> headers;
  std::optional<std::int64_t> limit;
  sdk::ConfigNode raw;
  Tls tls;
  std::vector<Target> targets;
};

constexpr OptionSpec kTarget[] = {
    {.name = "host",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "host",
     .assign = sdk::bind<&Target::host>()},
    {.name = "port",
     .type = OptionType::integer,
     .default_value = "443",
     .required = false,
     .description = "port",
     .min = "1",
     .max = "65535",
     .assign = sdk::bind<&Target::port>()},
};
constexpr OptionSpec kTls[] = {
    {.name = "verify",
     .type = OptionType::boolean,
     .default_value = "true",
     .required = false,
     .description = "verify",
     .assign = sdk::bind<&Tls::verify>()},
    {.name = "ca_file",
     .type = OptionType::string,
     .default_value = "",
     .required = false,
     .description = "CA file",
     .assign = sdk::bind<&Tls::ca_file>()},
};
constexpr OptionSpec kOptions[] = {
    {.name = "flag",
     .type = OptionType::boolean,
     .default_value = "false",
     .required = false,
     .description = "a bool",
     .assign = sdk::bind<&Options::flag>()},
    {.name = "small",
     .type = OptionType::integer,
     .default_value = "5",
     .required = false,
     .description = "an int",
     .min = "1",
     .max = "10",
     .assign = sdk::bind<&Options::small>()},
    {.name = "big",
     .type = OptionType::integer,
     .default_value = "-9000000000",
     .required = false,
     .description = "an int64",
     .assign = sdk::bind<&Options::big>()},
    {.name = "size32",
     .type = OptionType::size,
     .default_value = "64KiB",
     .required = false,
     .description = "a size",
     .max = "1MiB",
     .assign = sdk::bind<&Options::size32>()},
    {.name = "size64",
     .type = OptionType::size,
     .default_value = "8GiB",
     .required = false,
     .description = "a big size",
     .min = "1KiB",
     .assign = sdk::bind<&Options::size64>()},
    {.name = "ratio",
     .type = OptionType::number,
     .default_value = "0.5",
     .required = false,
     .description = "a number",
     .min = "0",
     .max = "1",
     .assign = sdk::bind<&Options::ratio>()},
    {.name = "mode",
     .type = OptionType::string,
     .default_value = "fast",
     .required = false,
     .description = "a choice",
     .choices = "fast|safe|off",
     .assign = sdk::bind<&Options::mode>()},
    {.name = "timeout",
     .type = OptionType::duration,
     .default_value = "5s",
     .required = false,
     .description = "a duration",
     .min = "100ms",
     .max = "1m",
     .assign = sdk::bind<&Options::timeout>()},
    {.name = "tags",
     .type = OptionType::string_list,
     .default_value = nullptr,
     .required = false,
     .description = "a list",
     .max = "3",
     .choices = "a|b|c",
     .assign = sdk::bind<&Options::tags>()},
    {.name = "headers",
     .type = OptionType::string_map,
     .default_value = nullptr,
     .required = false,
     .description = "a map",
     .assign = sdk::bind<&Options::headers>()},
    {.name = "limit",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = false,
     .description = "optional",
     .min = "0",
     .assign = sdk::bind<&Options::limit>()},
    {.name = "raw",
     .type = OptionType::any,
     .default_value = nullptr,
     .required = false,
     .description = "anything",
     .assign = sdk::bind<&Options::raw>()},
    {.name = "tls",
     .type = OptionType::object,
     .default_value = nullptr,
     .required = false,
     .description = "nested",
     .children = kTls,
     .child_count = std::size(kTls),
     .assign = sdk::bind_object<&Options::tls, kTls>()},
    {.name = "targets",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "list of maps",
     .children = kTarget,
     .child_count = std::size(kTarget),
     .min = "1",
     .assign = sdk::bind_each<&Options::targets, kTarget>()},
};

/// The plugin's error for these options (after the host accepted them, or without the host).
std::string load_error(const std::string& options) {
  try {
    (void)sdk::load_options<Options>(yaml_options(options), kOptions);
  } catch (const sdk::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

/// The host's error for these options (checked against `table`).
std::string host_error(const std::string& options,
                       std::span<const OptionSpec> table = std::span<const OptionSpec>(kOptions)) {
  sdk::ConfigNode config = yaml_options(options);
  try {
    agent::validate_options(config, table, "source 's'");
  } catch (const sdk::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SdkOptions, DefaultsFillEveryBoundMember) {
  const auto o = sdk::load_options<Options>(yaml_options(""), kOptions);
  EXPECT_FALSE(o.flag);
  EXPECT_EQ(o.small, 5);
  EXPECT_EQ(o.big, -9000000000);
  EXPECT_EQ(o.size32, 65536U);
  EXPECT_EQ(o.size64, 8ULL << 30U);
  EXPECT_EQ(o.ratio, 0.5);
  EXPECT_EQ(o.mode, "fast");
  EXPECT_EQ(o.timeout, 5s);
  EXPECT_TRUE(o.tags.empty());
  EXPECT_TRUE(o.headers.empty());
  EXPECT_FALSE(o.limit.has_value());
  EXPECT_TRUE(o.raw.is_null());
  EXPECT_FALSE(o.tls.verify);  // no `tls:` at all: the member keeps its initializer
  EXPECT_TRUE(o.targets.empty());
}

TEST(SdkOptions, BindsEveryMemberType) {
  const auto o = sdk::load_options<Options>(
      yaml_options("    flag: true\n    small: 10\n    big: 9000000000\n    size32: 1MiB\n"
                   "    size64: 2048\n    ratio: 1\n    mode: safe\n    timeout: 250ms\n"
                   "    tags: [a, c]\n    headers: {x-a: \"1\", x-b: two}\n    limit: 0\n"
                   "    raw: {any: [thing]}\n    tls: {ca_file: /ca.pem}\n"
                   "    targets:\n      - {host: a}\n      - {host: b, port: 8443}\n"),
      kOptions);
  EXPECT_TRUE(o.flag);
  EXPECT_EQ(o.small, 10);
  EXPECT_EQ(o.big, 9000000000);
  EXPECT_EQ(o.size32, 1U << 20U);
  EXPECT_EQ(o.size64, 2048U);
  EXPECT_EQ(o.ratio, 1.0);
  EXPECT_EQ(o.mode, "safe");
  EXPECT_EQ(o.timeout, 250ms);
  EXPECT_EQ(o.tags, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(o.headers.at("x-a"), "1");
  EXPECT_EQ(o.headers.at("x-b"), "two");
  ASSERT_TRUE(o.limit.has_value());
  EXPECT_EQ(*o.limit, 0);
  ASSERT_TRUE(o.raw.is_map());
  EXPECT_EQ(o.raw.find("any")->items().at(0).text(), "thing");
  EXPECT_TRUE(o.tls.verify);  // the nested table's default
  EXPECT_EQ(o.tls.ca_file, "/ca.pem");
  ASSERT_EQ(o.targets.size(), 2U);
  EXPECT_EQ(o.targets[0].host, "a");
  EXPECT_EQ(o.targets[0].port, 443);  // the nested default, per item
  EXPECT_EQ(o.targets[1].host, "b");
  EXPECT_EQ(o.targets[1].port, 8443);
}

TEST(SdkOptions, BoundsNameTheOptionThePositionAndTheLimit) {
  EXPECT_EQ(load_error("    small: 11\n"),
            "p.yaml:4:12: option 'small' must be at most 10, got 11");
  EXPECT_EQ(load_error("    small: 0\n"), "p.yaml:4:12: option 'small' must be at least 1, got 0");
  EXPECT_EQ(load_error("    timeout: 50ms\n"),
            "p.yaml:4:14: option 'timeout' must be at least 100ms, got 50ms");
  EXPECT_EQ(load_error("    timeout: 2m\n"),
            "p.yaml:4:14: option 'timeout' must be at most 1m, got 2m");
  EXPECT_EQ(load_error("    size32: 2MiB\n"),
            "p.yaml:4:13: option 'size32' must be at most 1MiB, got 2MiB");
  EXPECT_EQ(load_error("    size64: 1000\n"),
            "p.yaml:4:13: option 'size64' must be at least 1KiB, got 1000");
  EXPECT_EQ(load_error("    ratio: 1.5\n"),
            "p.yaml:4:12: option 'ratio' must be at most 1, got 1.5");
  EXPECT_EQ(load_error("    limit: -1\n"),
            "p.yaml:4:12: option 'limit' must be at least 0, got -1");
  // Lists are bounded by their number of items.
  EXPECT_EQ(load_error("    tags: [a, b, c, a]\n"),
            "p.yaml:4:11: option 'tags' must be at most 3 items, got 4");
  EXPECT_EQ(load_error("    targets: []\n"),
            "p.yaml:4:14: option 'targets' must be at least 1 items, got 0");
  // The limits themselves are allowed.
  EXPECT_EQ(load_error("    small: 1\n    timeout: 1m\n    size32: 1MiB\n    ratio: 0\n"),
            "no error");
}

TEST(SdkOptions, ChoicesListWhatIsAllowed) {
  EXPECT_EQ(load_error("    mode: turbo\n"),
            "p.yaml:4:11: option 'mode' must be one of 'fast', 'safe', 'off', got 'turbo'");
  EXPECT_EQ(load_error("    tags: [a, x]\n"),
            "p.yaml:4:15: option 'tags' must be one of 'a', 'b', 'c', got 'x'");
}

TEST(SdkOptions, NestedErrorsNameTheFullPath) {
  const std::string bad_port = "    targets:\n      - {host: a}\n      - {host: b, port: 70000}\n";
  EXPECT_EQ(load_error(bad_port),
            "p.yaml:6:25: option 'targets[1].port' must be at most 65535, got 70000");
  EXPECT_EQ(host_error(bad_port),
            "p.yaml:6:25: source 's': option 'targets[1].port' must be at most 65535, got 70000");
  const std::string no_host = "    targets:\n      - {host: a}\n      - {port: 80}\n";
  EXPECT_EQ(load_error(no_host), "p.yaml:6:9: missing required option 'targets[1].host'");
  EXPECT_EQ(host_error(no_host),
            "p.yaml:6:9: source 's': missing required option 'targets[1].host' (host)");
  EXPECT_EQ(host_error("    tls: {verify: maybe}\n"),
            "p.yaml:4:19: source 's': option 'tls.verify': expected true or false, got 'maybe'");
  // The prefix does not leak into the next top-level option.
  EXPECT_EQ(load_error("    targets:\n      - {host: a}\n    small: 99\n"),
            "p.yaml:6:12: option 'small' must be at most 10, got 99");
}

TEST(SdkOptions, HostAndPluginAgreeOnBounds) {
  EXPECT_EQ(host_error("    small: 11\n"),
            "p.yaml:4:12: source 's': option 'small' must be at most 10, got 11");
  EXPECT_EQ(host_error("    mode: turbo\n"),
            "p.yaml:4:11: source 's': option 'mode' must be one of 'fast', 'safe', 'off', got "
            "'turbo'");
  EXPECT_EQ(host_error("    small: 10\n    mode: off\n"), "no error");
}

// sdk::option<&M>(): the type follows from the member, the rest from `extra`.
static_assert(sdk::option<&Options::flag>("f", "").type == OptionType::boolean);
static_assert(sdk::option<&Options::small>("s", "").type == OptionType::integer);
static_assert(sdk::option<&Options::big>("b", "").type == OptionType::integer);
static_assert(sdk::option<&Options::size32>("s", "").type == OptionType::size);
static_assert(sdk::option<&Options::size64>("s", "").type == OptionType::size);
static_assert(sdk::option<&Options::ratio>("r", "").type == OptionType::number);
static_assert(sdk::option<&Options::mode>("m", "").type == OptionType::string);
static_assert(sdk::option<&Options::timeout>("t", "").type == OptionType::duration);
static_assert(sdk::option<&Options::tags>("t", "").type == OptionType::string_list);
static_assert(sdk::option<&Options::headers>("h", "").type == OptionType::string_map);
static_assert(sdk::option<&Options::limit>("l", "").type == OptionType::integer);
static_assert(sdk::option<&Options::raw>("r", "").type == OptionType::any);

constexpr OptionSpec kShort[] = {
    sdk::option<&Options::small>("small", "an int",
                                 {.default_value = "5", .min = "1", .max = "10"}),
    sdk::option<&Options::mode>("mode", "a choice", {.required = true, .choices = "fast|safe"}),
    sdk::option<&Options::timeout>("timeout", "a duration", {.default_value = "5s"}),
    sdk::option<&Options::tags>("tags", "a list", {.secret = true})};

TEST(SdkOptions, OptionHelperWritesTheSameEntryAsTheLongForm) {
  EXPECT_STREQ(kShort[0].name, "small");
  EXPECT_STREQ(kShort[0].description, "an int");
  EXPECT_STREQ(kShort[0].default_value, "5");
  EXPECT_FALSE(kShort[0].required);
  EXPECT_STREQ(kShort[0].min, "1");
  EXPECT_STREQ(kShort[0].max, "10");
  EXPECT_TRUE(kShort[1].required);
  EXPECT_STREQ(kShort[1].choices, "fast|safe");
  EXPECT_TRUE(kShort[3].secret);
  EXPECT_FALSE(kShort[2].secret);

  const auto o =
      sdk::load_options<Options>(yaml_options("    mode: safe\n    tags: [x]\n"), kShort);
  EXPECT_EQ(o.small, 5);
  EXPECT_EQ(o.mode, "safe");
  EXPECT_EQ(o.timeout, 5s);
  EXPECT_EQ(o.tags, std::vector<std::string>{"x"});

  EXPECT_EQ(host_error("    mode: fast\n    small: 11\n", kShort),
            "p.yaml:5:12: source 's': option 'small' must be at most 10, got 11");
  EXPECT_EQ(host_error("    mode: turbo\n", kShort),
            "p.yaml:4:11: source 's': option 'mode' must be one of 'fast', 'safe', got 'turbo'");
  EXPECT_EQ(host_error("    small: 2\n", kShort),
            "p.yaml:3:5: source 's': missing required option 'mode' (a choice)");
}

// sdk::check_fields(): the four fields every check kind starts with, then the kind's own.
constexpr auto kCheckKindFields =
    sdk::check_fields({{"rtt_ms", sdk::FieldType::float64, false, "ms", "round trip"}});
constexpr sdk::KindSpec kCheckKind =
    sdk::make_kind("ping", 1, kCheckKindFields, "target", "one ping");

TEST(SdkKinds, CheckFieldsComeFirstWithTheirTypes) {
  ASSERT_EQ(kCheckKind.field_count, 5U);
  const char* names[] = {"target", "success", "error", "error_message", "rtt_ms"};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_STREQ(kCheckKind.fields[i].name, names[i]);
  }
  EXPECT_EQ(kCheckKind.fields[0].type, sdk::FieldType::string);
  EXPECT_FALSE(kCheckKind.fields[0].nullable);
  EXPECT_EQ(kCheckKind.fields[1].type, sdk::FieldType::boolean);
  EXPECT_FALSE(kCheckKind.fields[1].nullable);
  EXPECT_TRUE(kCheckKind.fields[2].nullable);
  EXPECT_TRUE(kCheckKind.fields[3].nullable);
  EXPECT_STREQ(kCheckKind.fields[4].unit, "ms");
  EXPECT_EQ(kCheckKind.field_size, sizeof(sdk::FieldSpec));
  EXPECT_STREQ(kCheckKind.key_field, "target");
}

TEST(SdkParseSize, RefusesWhatDoesNotFitIn64Bits) {
  EXPECT_EQ(sdk::parse_size("999999999999999GiB"), std::nullopt);
  EXPECT_EQ(sdk::parse_size("17179869184GiB"), std::nullopt);  // 2^34 GiB = 2^64 bytes
  EXPECT_EQ(sdk::parse_size("17179869183GiB"), 17179869183ULL << 30U);
  EXPECT_EQ(sdk::parse_size("9999999999999999"), std::nullopt);  // more than 15 digits
  EXPECT_EQ(sdk::parse_size("999999999999999"), 999999999999999ULL);
  EXPECT_EQ(sdk::parse_size("64KiB"), 65536U);
  EXPECT_EQ(sdk::parse_size("1MB"), 1000000U);
  EXPECT_EQ(sdk::parse_size("-1"), std::nullopt);
  EXPECT_EQ(sdk::parse_size("1TiB"), std::nullopt);
  EXPECT_EQ(load_error("    size64: 999999999999999GiB\n"),
            "p.yaml:4:13: expected a size such as 512, 64KiB or 1MiB, got '999999999999999GiB'");
  EXPECT_EQ(host_error("    size64: 999999999999999GiB\n"),
            "p.yaml:4:13: source 's': option 'size64': expected a size such as 512, 64KiB or "
            "1MiB, got '999999999999999GiB'");
}

}  // namespace
}  // namespace webmon
