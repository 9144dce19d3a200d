// http_check tests: configuration (host validation and the plugin's own), then real checks
// through the real host (http_check -> file sink) against servers inside this process on
// 127.0.0.1 ephemeral ports. Test suites are named http_check_* so `ctest -R http_check`
// selects them.
#include "http_check.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "options.hpp"
#include "pipeline_runner.hpp"
#include "test_servers.hpp"
#include "webmon/common/schema.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::http_check {
namespace {

using nlohmann::json;
using webmon::testing::PipelineRun;
using webmon::testing::RunOptions;
using webmon::testing::TempDir;
using namespace std::chrono_literals;
namespace t = webmon::plugins::http_check::testing;

std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

// A pipeline: http_check (with `source_options`, indented 4) -> file sink at `out`.
std::string pipeline(const std::string& source_options, const std::string& out) {
  return "sources:\n  checks:\n    plugin: http_check\n    proxy: \"\"\n" + source_options +
         "sinks:\n  out:\n    plugin: file\n    inputs: [checks]\n    path: " + yaml_quote(out) +
         "\n";
}

struct Result {
  PipelineRun run;
  std::vector<json> records;
  std::vector<std::string> lines;

  // The records of one target, in order.
  [[nodiscard]] std::vector<json> of(const std::string& target) const {
    std::vector<json> out;
    for (const auto& r : records) {
      if (r["target"] == target) {
        out.push_back(r);
      }
    }
    return out;
  }
  // The one record of a target (once mode).
  [[nodiscard]] json one(const std::string& target) const {
    auto v = of(target);
    EXPECT_EQ(v.size(), 1U) << "records of target " << target;
    return v.empty() ? json::object() : v.front();
  }
};

Result run(const std::string& source_options, const RunOptions& options = {}) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  Result r;
  r.run = webmon::testing::run_pipeline(pipeline(source_options, out), options);
  EXPECT_EQ(r.run.config_error, "");
  EXPECT_EQ(r.run.exit_code, 0);
  r.lines = webmon::testing::lines(webmon::testing::read_file(out));
  for (const auto& line : r.lines) {
    r.records.push_back(json::parse(line));
  }
  return r;
}

// The complete lines of a file that a running pipeline appends to, parsed.
std::vector<json> records_in(const std::string& path) {
  std::vector<json> out;
  const std::string text = webmon::testing::read_file(path);
  std::size_t start = 0;
  for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    out.push_back(json::parse(text.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

std::size_t count_of(const std::vector<json>& records, const std::string& target) {
  return static_cast<std::size_t>(std::count_if(
      records.begin(), records.end(), [&](const json& r) { return r["target"] == target; }));
}

// Waits (polling, every 20 ms) until `done()` holds; the deadline only bounds a hang.
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Runs until the records written so far satisfy `done` (then stops the agent), with the
// deadline only bounding a hang. `during` runs first, on the helper thread, with the output
// path (e.g. to change a targets file mid-run).
Result run_until(const std::string& source_options,
                 const std::function<bool(const std::vector<json>&)>& done,
                 const std::function<void(const std::string&)>& during = {}) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  Result r;
  bool reached = false;
  RunOptions o;
  o.during = [&](agent::Runtime& rt) {
    if (during) {
      during(out);
    }
    reached = wait_until([&] { return done(records_in(out)); });
    rt.request_stop();
  };
  r.run = webmon::testing::run_pipeline(pipeline(source_options, out), o);
  EXPECT_TRUE(reached) << "the condition did not hold within the deadline";
  EXPECT_EQ(r.run.config_error, "");
  EXPECT_EQ(r.run.exit_code, 0);
  r.lines = webmon::testing::lines(webmon::testing::read_file(out));
  for (const auto& line : r.lines) {
    r.records.push_back(json::parse(line));
  }
  return r;
}

// Percent-encodes a query parameter value.
std::string query_escape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4U];
      out += kHex[c & 15U];
    }
  }
  return out;
}

// Checks each target once (once: true), with `targets` as YAML list items indented 6.
Result once(const std::string& targets, const std::string& extra = "") {
  return run("    once: true\n" + extra + "    targets:\n" + targets);
}

std::string target(const std::string& name, const std::string& url, const std::string& more = "") {
  return "      - { name: " + yaml_quote(name) + ", url: " + yaml_quote(url) +
         (more.empty() ? "" : ", " + more) + " }\n";
}

std::string validate(const std::string& source_options) {
  return webmon::testing::validate_pipeline(pipeline(source_options, "-"));
}

// Every field of DESIGN.md's http_check table with its JSON type.
void expect_schema(const json& r) {
  static const std::map<std::string, std::string> kTypes = {{"target", "string"},
                                                            {"url", "string"},
                                                            {"method", "string"},
                                                            {"agent", "string"},
                                                            {"success", "bool"},
                                                            {"status_code", "int?"},
                                                            {"error", "string?"},
                                                            {"error_message", "string?"},
                                                            {"response_time_ms", "double"},
                                                            {"dns_ms", "double?"},
                                                            {"connect_ms", "double?"},
                                                            {"tls_ms", "double?"},
                                                            {"ttfb_ms", "double?"},
                                                            {"transfer_ms", "double?"},
                                                            {"body_bytes", "int"},
                                                            {"body_bytes_wire", "int"},
                                                            {"failed_url", "string?"},
                                                            {"http_version", "string?"},
                                                            {"remote_ip", "string?"},
                                                            {"redirects", "int"},
                                                            {"regex_matched", "bool?"},
                                                            {"tls_cert_not_after", "string?"},
                                                            {"tls_cert_issuer", "string?"},
                                                            {"lateness_ms", "double"},
                                                            {"tls_version", "string?"},
                                                            {"labels", "object"},
                                                            {"id", "string"},
                                                            {"time", "string"},
                                                            {"kind", "string"},
                                                            {"schema", "int"}};
  for (const auto& [name, type] : kTypes) {
    ASSERT_TRUE(r.contains(name)) << "missing field " << name;
    const json& v = r[name];
    const bool nullable = type.back() == '?';
    const std::string base = nullable ? type.substr(0, type.size() - 1) : type;
    if (v.is_null()) {
      EXPECT_TRUE(nullable) << name << " is null";
      continue;
    }
    if (base == "string") {
      EXPECT_TRUE(v.is_string()) << name << ": " << v;
    } else if (base == "bool") {
      EXPECT_TRUE(v.is_boolean()) << name << ": " << v;
    } else if (base == "int") {
      EXPECT_TRUE(v.is_number_integer()) << name << ": " << v;
    } else if (base == "double") {
      EXPECT_TRUE(v.is_number_float()) << name << ": " << v;
    } else if (base == "object") {
      EXPECT_TRUE(v.is_object()) << name << ": " << v;
    }
  }
  EXPECT_EQ(r["kind"], "http_check");
  if (r["error"].is_string()) {
    const std::string e = r["error"];
    EXPECT_TRUE(std::find(std::begin(kErrorClasses), std::end(kErrorClasses), e) !=
                std::end(kErrorClasses))
        << e;
  }
  EXPECT_EQ(r["success"].get<bool>(), r["error"].is_null());
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(http_check_config, ValidConfigBuildsAndDefaultsApply) {
  EXPECT_EQ(validate("    targets:\n" + target("a", "https://example.com/")), "");
  sdk::ConfigNode cfg = sdk::ConfigNode::make_map();
  sdk::ConfigNode list = sdk::ConfigNode::make_list();
  sdk::ConfigNode item = sdk::ConfigNode::make_map();
  item.set("url", sdk::ConfigNode("http://example.com/x"));
  list.push_back(item);
  cfg.set("targets", list);
  const Settings s = parse_settings(cfg);
  ASSERT_EQ(s.targets.size(), 1U);
  const Target& tg = s.targets[0];
  EXPECT_EQ(tg.name, "http://example.com/x");
  EXPECT_EQ(tg.method, "GET");
  EXPECT_EQ(tg.expect_status_text, "200-399");
  EXPECT_EQ(tg.follow_redirects, RedirectMode::all);
  EXPECT_TRUE(tg.tls_verify);
  EXPECT_EQ(tg.max_body_size, 10U << 20U);
}

TEST(http_check_config, TargetsInheritPluginLevelOptions) {
  const std::string yaml = pipeline(
      "    interval: 5s\n    timeout: 2s\n    method: head\n    headers: { X-A: '1', X-B: '2' }\n"
      "    labels: { team: web }\n    targets:\n" +
          target("a", "http://127.0.0.1/",
                 "interval: 1m, headers: { x-b: '3' }, labels: { tier: gold }") +
          target("b", "http://127.0.0.1/b"),
      "-");
  EXPECT_EQ(webmon::testing::validate_pipeline(yaml), "");
  sdk::ConfigNode cfg = sdk::ConfigNode::make_map();
  cfg.set("interval", sdk::ConfigNode("5s"));
  cfg.set("method", sdk::ConfigNode("head"));
  sdk::ConfigNode headers = sdk::ConfigNode::make_map();
  headers.set("X-A", sdk::ConfigNode("1"));
  headers.set("X-B", sdk::ConfigNode("2"));
  cfg.set("headers", headers);
  sdk::ConfigNode list = sdk::ConfigNode::make_list();
  sdk::ConfigNode a = sdk::ConfigNode::make_map();
  a.set("url", sdk::ConfigNode("http://127.0.0.1/"));
  a.set("interval", sdk::ConfigNode("1m"));
  sdk::ConfigNode h2 = sdk::ConfigNode::make_map();
  h2.set("x-b", sdk::ConfigNode("3"));
  a.set("headers", h2);
  list.push_back(a);
  sdk::ConfigNode b = sdk::ConfigNode::make_map();
  b.set("url", sdk::ConfigNode("http://127.0.0.1/b"));
  list.push_back(b);
  cfg.set("targets", list);
  const Settings s = parse_settings(cfg);
  ASSERT_EQ(s.targets.size(), 2U);
  EXPECT_EQ(s.targets[0].interval, 60s);
  EXPECT_EQ(s.targets[1].interval, 5s);
  EXPECT_EQ(s.targets[0].method, "HEAD");
  EXPECT_EQ(s.targets[0].headers, (std::vector<std::string>{"X-A: 1", "X-B: 3"}));
  EXPECT_EQ(s.targets[1].headers, (std::vector<std::string>{"X-A: 1", "X-B: 2"}));
}

TEST(http_check_config, BadUrlRejectedNamingTargetAndOption) {
  const std::string e = validate("    targets:\n" + target("shop", "ftp://example.com/"));
  EXPECT_NE(e.find("pipeline.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("target 'shop'"), std::string::npos) << e;
  EXPECT_NE(e.find("option 'url'"), std::string::npos) << e;
  const std::string e2 = validate("    targets:\n" + target("x", "http://exa mple.com/"));
  EXPECT_NE(e2.find("option 'url'"), std::string::npos) << e2;
  const std::string e3 = validate("    targets:\n" + target("y", "not a url"));
  EXPECT_NE(e3.find("invalid URL"), std::string::npos) << e3;
}

TEST(http_check_config, BadRegexRejectedNamingTargetAndOption) {
  const std::string e =
      validate("    targets:\n" + target("api", "http://127.0.0.1/", "body_regex: 'ok(('"));
  EXPECT_NE(e.find("target 'api'"), std::string::npos) << e;
  EXPECT_NE(e.find("option 'body_regex'"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid regular expression"), std::string::npos) << e;
  const std::string e2 = validate("    body_regex_absent: '[z-a]'\n    targets:\n" +
                                  target("api", "http://127.0.0.1/"));
  EXPECT_NE(e2.find("option 'body_regex_absent'"), std::string::npos) << e2;
}

TEST(http_check_config, NegativeOrZeroIntervalRejected) {
  const std::string e =
      validate("    targets:\n" + target("a", "http://127.0.0.1/", "interval: -5s"));
  EXPECT_NE(e.find("interval"), std::string::npos) << e;
  EXPECT_NE(e.find("duration"), std::string::npos) << e;
  const std::string e2 = validate("    interval: 0\n    targets:\n" + target("a", "http://h/"));
  EXPECT_NE(e2.find("option 'interval' must be at least 1ms, got 0"), std::string::npos) << e2;
  const std::string e3 = validate("    timeout: banana\n    targets:\n" + target("a", "http://h/"));
  EXPECT_NE(e3.find("option 'timeout'"), std::string::npos) << e3;
}

TEST(http_check_config, UnknownAndWronglyTypedTargetKeysRejected) {
  const std::string e =
      validate("    targets:\n" + target("a", "http://127.0.0.1/", "body_rgx: x"));
  EXPECT_NE(e.find("unknown option 'body_rgx'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'body_regex'"), std::string::npos) << e;
  const std::string e2 =
      validate("    targets:\n" + target("a", "http://127.0.0.1/", "tls_verify: maybe"));
  EXPECT_NE(e2.find("tls_verify"), std::string::npos) << e2;
  const std::string e3 = validate("    targets:\n      - { name: nourl }\n");
  EXPECT_NE(e3.find("missing required option 'targets[0].url'"), std::string::npos) << e3;
}

TEST(http_check_config, OtherOptionErrors) {
  auto expect_error = [](const std::string& opts, const std::string& needle) {
    const std::string e = validate(opts);
    EXPECT_NE(e.find(needle), std::string::npos) << "options:\n" << opts << "error: " << e;
  };
  expect_error("    targets:\n" + target("a", "http://h/", "expect_status: [200, 600]"),
               "option 'expect_status'");
  expect_error("    targets:\n" + target("a", "http://h/", "expect_status: '300-200'"),
               "option 'expect_status'");
  expect_error("    targets:\n" + target("a", "http://h/", "ip_version: 5"),
               "option 'targets[0].ip_version' must be one of 'any', '4', '6', got '5'");
  expect_error("    targets:\n" + target("a", "http://h/", "ca_file: /nonexistent/ca.pem"),
               "option 'ca_file': cannot read");
  expect_error("    targets:\n" + target("a", "http://h/", "method: 'GE T'"), "option 'method'");
  expect_error("    targets:\n" + target("a", "http://h/", "password: x"),
               "option 'password' needs username");
  expect_error("    targets:\n" + target("a", "http://h/") + target("a", "http://h/2"),
               "another target has the same name");
  expect_error("    shard: { index: 3, count: 3 }\n    targets:\n" + target("a", "http://h/"),
               "option 'shard.index'");
  expect_error("    max_concurrency: 0\n    targets:\n" + target("a", "http://h/"),
               "option 'max_concurrency'");
  expect_error("    once: true\n", "at least one target");
}

TEST(http_check_config, TargetsFileLoadedAndValidated) {
  TempDir dir;
  setenv("WEBMON_HTTP_CHECK_TEST_HOST", "127.0.0.1", 1);
  const std::string good = dir.write(
      "targets.yaml",
      "- url: http://${WEBMON_HTTP_CHECK_TEST_HOST}/a\n  name: a\n- url: http://127.0.0.1/b\n"
      "  interval: 1m\n  labels:\n    tier: ${WEBMON_HTTP_CHECK_TEST_TIER:-bronze}\n");
  EXPECT_EQ(validate("    targets_file: " + yaml_quote(good) + "\n"), "");
  sdk::ConfigNode cfg = sdk::ConfigNode::make_map();
  cfg.set("targets_file", sdk::ConfigNode(good));
  const Settings s = parse_settings(cfg);
  ASSERT_EQ(s.targets.size(), 2U);
  EXPECT_EQ(s.targets[0].url, "http://127.0.0.1/a");
  EXPECT_EQ(s.targets[1].name, "http://127.0.0.1/b");
  EXPECT_EQ(s.targets[1].labels.at("tier"), "bronze");

  const std::string missing = validate("    targets_file: /nonexistent/targets.yaml\n");
  EXPECT_NE(missing.find("option 'targets_file': cannot read '/nonexistent/targets.yaml'"),
            std::string::npos)
      << missing;
  const std::string unknown = dir.write("unknown.yaml", "- url: http://h/\n  colour: red\n");
  const std::string e = validate("    targets_file: " + yaml_quote(unknown) + "\n");
  EXPECT_NE(e.find(unknown + ":2:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown option 'colour'"), std::string::npos) << e;
  const std::string bad =
      dir.write("bad.yaml", "- url: http://h/\n- url: gopher://h/\n  name: g\n");
  const std::string e2 = validate("    targets_file: " + yaml_quote(bad) + "\n");
  EXPECT_NE(e2.find(bad + ":2:"), std::string::npos) << e2;
  EXPECT_NE(e2.find("target 'g' (targets_file[1]): option 'url'"), std::string::npos) << e2;
  const std::string notlist = dir.write("map.yaml", "url: http://h/\n");
  EXPECT_NE(validate("    targets_file: " + yaml_quote(notlist) + "\n").find("YAML list"),
            std::string::npos);
  const std::string broken = dir.write("broken.yaml", "- url: [unclosed\n");
  EXPECT_NE(validate("    targets_file: " + yaml_quote(broken) + "\n").find("targets_file"),
            std::string::npos);
}

TEST(http_check_config, TableChecksNameTheFullPathInTargetsAndTargetsFile) {
  TempDir dir;
  // Inline targets: the host checks bounds and choices, naming targets[i].option.
  const std::string inline_error = validate("    targets:\n" + target("a", "http://h/") +
                                            target("b", "http://h/b", "max_redirects: 5000"));
  EXPECT_NE(inline_error.find("pipeline.yaml:"), std::string::npos) << inline_error;
  EXPECT_NE(inline_error.find("option 'targets[1].max_redirects' must be at most 1000"),
            std::string::npos)
      << inline_error;
  // targets_file items: the same table, through load_options(), naming targets_file[i].option
  // at the file's line and column.
  const std::string bounds =
      dir.write("bounds.yaml", "- url: http://h/a\n- url: http://h/b\n  timeout: 0s\n");
  const std::string e = validate("    targets_file: " + yaml_quote(bounds) + "\n");
  EXPECT_NE(e.find(bounds + ":3:"), std::string::npos) << e;
  EXPECT_NE(e.find("option 'targets_file[1].timeout' must be at least 1ms"), std::string::npos)
      << e;
  const std::string choice = dir.write("choice.yaml", "- url: http://h/a\n  ip_version: '5'\n");
  const std::string e2 = validate("    targets_file: " + yaml_quote(choice) + "\n");
  EXPECT_NE(e2.find("option 'targets_file[0].ip_version' must be one of 'any', '4', '6'"),
            std::string::npos)
      << e2;
  const std::string nested = dir.write(
      "nested.yaml", "- url: http://h/a\n  json:\n    - { pointer: /a }\n    - { equals: x }\n");
  const std::string e3 = validate("    targets_file: " + yaml_quote(nested) + "\n");
  EXPECT_NE(e3.find("missing required option 'targets_file[0].json[1].pointer'"), std::string::npos)
      << e3;
  const std::string unknown_nested = dir.write(
      "unknown_nested.yaml", "- url: http://h/a\n  json: [{ pointer: /a, colour: red }]\n");
  const std::string e4 = validate("    targets_file: " + yaml_quote(unknown_nested) + "\n");
  EXPECT_NE(e4.find(unknown_nested + ":2:"), std::string::npos) << e4;
  EXPECT_NE(e4.find("unknown option 'colour'"), std::string::npos) << e4;
  // A repeated key is refused, as in the pipeline file.
  const std::string duplicate =
      dir.write("duplicate.yaml", "- url: http://h/a\n  timeout: 1s\n  timeout: 2s\n");
  const std::string e5 = validate("    targets_file: " + yaml_quote(duplicate) + "\n");
  EXPECT_NE(e5.find(duplicate + ":3:"), std::string::npos) << e5;
  EXPECT_NE(e5.find("duplicate key 'timeout'"), std::string::npos) << e5;
  // Targets of the file inherit the plugin-level options like inline ones.
  const std::string good = dir.write("good.yaml",
                                     "- url: http://h/a\n- url: http://h/b\n"
                                     "  timeout: 3s\n  json: [{pointer: /x}]\n");
  sdk::ConfigNode cfg = sdk::ConfigNode::make_map();
  cfg.set("targets_file", sdk::ConfigNode(good));
  cfg.set("timeout", sdk::ConfigNode("7s"));
  cfg.set("max_response_time", sdk::ConfigNode("2s"));
  const Settings s = parse_settings(cfg);
  ASSERT_EQ(s.targets.size(), 2U);
  EXPECT_EQ(s.targets[0].timeout, 7s);
  EXPECT_EQ(s.targets[1].timeout, 3s);
  EXPECT_EQ(s.targets[0].max_response_time, std::optional<std::chrono::milliseconds>(2s));
  EXPECT_TRUE(s.targets[0].json.empty());
  ASSERT_EQ(s.targets[1].json.size(), 1U);
  EXPECT_EQ(s.targets[1].json[0].pointer, "/x");
  EXPECT_EQ(s.targets[1].interval, 30s);  // the table's default
}

TEST(http_check_config, TargetsFileWithNestedAliasesIsRefused) {
  // A "billion laughs" file: 9 levels of 10 aliases each would expand to 10^9 nodes.
  TempDir dir;
  std::string text = "- &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level < 9; ++level) {
    const std::string prev = "*l" + std::to_string(level - 1);
    text += "- &l" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) {
      text += (i == 0 ? "" : ", ") + prev;
    }
    text += "]\n";
  }
  const std::string file = dir.write("laughs.yaml", text);
  const std::string e = validate("    targets_file: " + yaml_quote(file) + "\n");
  EXPECT_NE(e.find(file + ":1:"), std::string::npos) << e;
  EXPECT_NE(e.find("expands to more than 1000000 nodes (nested aliases?)"), std::string::npos) << e;
}

TEST(http_check_config, AgentExitsWithTwoOnBadConfiguration) {
  TempDir dir;
  const std::string file = dir.write(
      "p.yaml",
      pipeline("    targets:\n" + target("api", "http://127.0.0.1/", "body_regex: '(('"), "-"));
  const auto r =
      webmon::testing::run_process({webmon::testing::agent_binary(), "--pipeline", file}, 30s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("target 'api'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("option 'body_regex'"), std::string::npos) << r.err;
}

TEST(http_check_config, SecretsAreMarkedAndNeverListed) {
  const auto r = webmon::testing::run_process({webmon::testing::agent_binary(), "--list-plugins"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("password (string, secret)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bearer_token (string, secret)"), std::string::npos) << r.out;
}

TEST(http_check_config, StatusRangesParse) {
  const auto r = parse_status_ranges({"200", "301-302, 404", " 500 - 503 "});
  EXPECT_TRUE(status_accepted(r, 200));
  EXPECT_FALSE(status_accepted(r, 201));
  EXPECT_TRUE(status_accepted(r, 302));
  EXPECT_TRUE(status_accepted(r, 404));
  EXPECT_TRUE(status_accepted(r, 502));
  EXPECT_FALSE(status_accepted(r, 504));
  EXPECT_THROW(parse_status_ranges({"2xx"}), std::invalid_argument);
  EXPECT_THROW(parse_status_ranges({"200,"}), std::invalid_argument);
  EXPECT_THROW(parse_status_ranges({}), std::invalid_argument);
}

TEST(http_check_config, CurlErrorsMapToTheFixedClasses) {
  EXPECT_EQ(classify_curl_error(6), "dns");       // CURLE_COULDNT_RESOLVE_HOST
  EXPECT_EQ(classify_curl_error(7), "connect");   // CURLE_COULDNT_CONNECT
  EXPECT_EQ(classify_curl_error(28), "timeout");  // CURLE_OPERATION_TIMEDOUT
  EXPECT_EQ(classify_curl_error(35), "tls");      // CURLE_SSL_CONNECT_ERROR
  EXPECT_EQ(classify_curl_error(60), "tls");      // CURLE_PEER_FAILED_VERIFICATION
  EXPECT_EQ(classify_curl_error(47), "too_many_redirects");
  EXPECT_EQ(classify_curl_error(56), "other");  // CURLE_RECV_ERROR
  EXPECT_EQ(classify_curl_error(0), "");
}

TEST(http_check_config, ShardsSplitTargetsDeterministically) {
  sdk::ConfigNode list = sdk::ConfigNode::make_list();
  for (int i = 0; i < 300; ++i) {
    sdk::ConfigNode item = sdk::ConfigNode::make_map();
    item.set("url", sdk::ConfigNode("http://127.0.0.1/" + std::to_string(i)));
    list.push_back(item);
  }
  std::multiset<std::string> seen;
  for (int shard = 0; shard < 3; ++shard) {
    sdk::ConfigNode cfg = sdk::ConfigNode::make_map();
    cfg.set("targets", list);
    sdk::ConfigNode sh = sdk::ConfigNode::make_map();
    sh.set("index", sdk::ConfigNode(std::to_string(shard)));
    sh.set("count", sdk::ConfigNode("3"));
    cfg.set("shard", sh);
    const Settings a = parse_settings(cfg);
    const Settings b = parse_settings(cfg);
    ASSERT_EQ(a.targets.size(), b.targets.size());
    EXPECT_EQ(a.targets_total, 300U);
    EXPECT_GT(a.targets.size(), 60U);  // roughly a third each
    EXPECT_LT(a.targets.size(), 140U);
    for (std::size_t i = 0; i < a.targets.size(); ++i) {
      EXPECT_EQ(a.targets[i].name, b.targets[i].name);
      seen.insert(a.targets[i].name);
    }
  }
  EXPECT_EQ(seen.size(), 300U);  // every target in exactly one shard
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 300U);
}

TEST(http_check_config, SampleYamlValidatesAndReadmeNamesEveryOption) {
  const std::string dir = WEBMON_HTTP_CHECK_SOURCE_DIR;
  const std::string sample = webmon::testing::read_file(dir + "/sample.yaml");
  ASSERT_FALSE(sample.empty());
  EXPECT_EQ(webmon::testing::validate_pipeline(sample), "");
  const std::string readme = webmon::testing::read_file(dir + "/README.md");
  for (const auto& o : kOptions) {
    EXPECT_NE(sample.find(std::string(o.name) + ":"), std::string::npos) << o.name;
    EXPECT_NE(readme.find("`" + std::string(o.name) + "`"), std::string::npos) << o.name;
  }
  for (const auto& o : kTargetOptions) {
    EXPECT_NE(readme.find("`" + std::string(o.name) + "`"), std::string::npos) << o.name;
  }
  for (const auto& e : kErrorClasses) {
    EXPECT_NE(readme.find("`" + std::string(e) + "`"), std::string::npos) << e;
  }
  const auto* schema = common::find_schema("http_check");
  ASSERT_NE(schema, nullptr);
  for (const auto& f : schema->fields) {
    EXPECT_NE(readme.find("`" + std::string(f.name) + "`"), std::string::npos) << f.name;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP results

class http_check_http : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new t::HttpServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static t::HttpServer& server() { return *server_; }

 private:
  static t::HttpServer* server_;
};
t::HttpServer* http_check_http::server_ = nullptr;

TEST_F(http_check_http, StatusCodesWithDefaultExpectations) {
  const Result r =
      once(target("ok", server().url("/ok")) + target("404", server().url("/status/404")) +
           target("500", server().url("/status/500")) +
           target("301", server().url("/status/301"), "follow_redirects: false"));
  ASSERT_EQ(r.records.size(), 4U);
  for (const auto& rec : r.records) {
    expect_schema(rec);
  }
  const json ok = r.one("ok");
  EXPECT_TRUE(ok["success"].get<bool>());
  EXPECT_EQ(ok["status_code"], 200);
  EXPECT_EQ(ok["body_bytes"], 12);
  EXPECT_EQ(ok["http_version"], "1.1");
  EXPECT_EQ(ok["remote_ip"], "127.0.0.1");
  EXPECT_EQ(ok["method"], "GET");
  EXPECT_EQ(ok["url"], server().url("/ok"));
  EXPECT_EQ(ok["redirects"], 0);
  EXPECT_TRUE(ok["regex_matched"].is_null());
  EXPECT_TRUE(ok["tls_ms"].is_null());
  EXPECT_TRUE(ok["tls_cert_not_after"].is_null());
  for (const char* f : {"dns_ms", "connect_ms", "ttfb_ms", "transfer_ms"}) {
    ASSERT_TRUE(ok[f].is_number_float()) << f;
    EXPECT_GE(ok[f].get<double>(), 0.0) << f;
  }
  const double sum = ok["dns_ms"].get<double>() + ok["connect_ms"].get<double>() +
                     ok["ttfb_ms"].get<double>() + ok["transfer_ms"].get<double>();
  EXPECT_LE(sum, ok["response_time_ms"].get<double>() + 0.01);
  EXPECT_EQ(r.one("404")["error"], "http_status");
  EXPECT_EQ(r.one("404")["status_code"], 404);
  EXPECT_EQ(r.one("404")["error_message"], "status 404 not in 200-399");
  EXPECT_EQ(r.one("500")["error"], "http_status");
  EXPECT_FALSE(r.one("500")["success"].get<bool>());
  EXPECT_TRUE(r.one("301")["success"].get<bool>());
  EXPECT_EQ(r.run.counter("checks", "checks"), 4U);
  EXPECT_EQ(r.run.counter("checks", "checks_failed"), 2U);
}

TEST_F(http_check_http, CustomExpectStatus) {
  const Result r =
      once(target("404", server().url("/status/404"), "expect_status: [404]") +
           target("200", server().url("/ok"), "expect_status: [404]") +
           target("range", server().url("/status/503"), "expect_status: '200-299,500-503'"));
  EXPECT_TRUE(r.one("404")["success"].get<bool>());
  EXPECT_EQ(r.one("200")["error"], "http_status");
  EXPECT_EQ(r.one("200")["error_message"], "status 200 not in 404");
  EXPECT_TRUE(r.one("range")["success"].get<bool>());
}

TEST_F(http_check_http, Redirects) {
  const Result r =
      once(target("chain", server().url("/redirect/3")) + target("loop", server().url("/loop")) +
           target("nofollow", server().url("/redirect/3"), "follow_redirects: false") +
           target("limited", server().url("/redirect/3"), "max_redirects: 2"));
  const json chain = r.one("chain");
  EXPECT_TRUE(chain["success"].get<bool>()) << chain;
  EXPECT_EQ(chain["redirects"], 3);
  EXPECT_EQ(chain["status_code"], 200);
  EXPECT_EQ(chain["body_bytes"], 7);  // "arrived"
  const json loop = r.one("loop");
  EXPECT_EQ(loop["error"], "too_many_redirects");
  EXPECT_FALSE(loop["success"].get<bool>());
  EXPECT_EQ(loop["redirects"], 10);
  const json nofollow = r.one("nofollow");
  EXPECT_TRUE(nofollow["success"].get<bool>());
  EXPECT_EQ(nofollow["status_code"], 302);
  EXPECT_EQ(nofollow["redirects"], 0);
  EXPECT_EQ(r.one("limited")["error"], "too_many_redirects");
}

TEST_F(http_check_http, SlowResponseBeyondTimeoutIsTimeout) {
  const Result r = once(target("slow", server().url("/slow?ms=3000"), "timeout: 300ms") +
                        target("fast", server().url("/ok"), "timeout: 300ms"));
  const json slow = r.one("slow");
  EXPECT_EQ(slow["error"], "timeout") << slow;
  EXPECT_TRUE(slow["status_code"].is_null());
  EXPECT_GE(slow["response_time_ms"].get<double>(), 295.0);
  EXPECT_NE(slow["error_message"].get<std::string>().find("imed out"), std::string::npos);
  EXPECT_TRUE(r.one("fast")["success"].get<bool>());
}

TEST_F(http_check_http, ClosedPortIsConnectAndInvalidNameIsDns) {
  const Result r =
      once(target("closed", "http://127.0.0.1:" + std::to_string(t::closed_port()) + "/") +
           target("nxdomain", "http://no-such-host.invalid/"));
  const json closed = r.one("closed");
  expect_schema(closed);
  EXPECT_EQ(closed["error"], "connect");
  EXPECT_TRUE(closed["status_code"].is_null());
  EXPECT_TRUE(closed["http_version"].is_null());
  // The connect phase failed: it holds the time until the refusal; no later phase began.
  EXPECT_TRUE(closed["connect_ms"].is_number_float()) << closed;
  EXPECT_TRUE(closed["tls_ms"].is_null());
  EXPECT_TRUE(closed["ttfb_ms"].is_null());
  EXPECT_TRUE(closed["transfer_ms"].is_null());
  const json nx = r.one("nxdomain");
  expect_schema(nx);
  EXPECT_EQ(nx["error"], "dns");
  EXPECT_NE(nx["error_message"].get<std::string>().find("no-such-host.invalid"), std::string::npos);
}

TEST_F(http_check_http, BodyRegex) {
  const Result r =
      once(target("match", server().url("/ok"), "body_regex: 'hello\\s+webmon'") +
           target("mismatch", server().url("/ok"), "body_regex: '^goodbye'") +
           target("absent_ok", server().url("/ok"), "body_regex_absent: 'error|exception'") +
           target("absent_bad", server().url("/ok"), "body_regex_absent: 'webmon'") +
           target("status_first", server().url("/status/500"), "body_regex: 'status'"));
  EXPECT_TRUE(r.one("match")["success"].get<bool>());
  EXPECT_EQ(r.one("match")["regex_matched"], true);
  EXPECT_EQ(r.one("mismatch")["error"], "body_mismatch");
  EXPECT_EQ(r.one("mismatch")["regex_matched"], false);
  EXPECT_EQ(r.one("mismatch")["error_message"], "body does not match body_regex '^goodbye'");
  EXPECT_TRUE(r.one("absent_ok")["success"].get<bool>());
  EXPECT_EQ(r.one("absent_ok")["regex_matched"], true);
  EXPECT_EQ(r.one("absent_bad")["error"], "body_mismatch");
  EXPECT_EQ(r.one("absent_bad")["regex_matched"], false);
  EXPECT_EQ(r.one("status_first")["error"], "http_status");
  EXPECT_EQ(r.one("status_first")["regex_matched"], true);
}

TEST_F(http_check_http, MaxResponseTimeFailsASlowCheckWithSlow) {
  // The server delays its answer 300 ms: far beyond 50 ms, far below 10 s.
  const Result r =
      once(target("slow", server().url("/slow?ms=300"), "max_response_time: 50ms") +
               target("fast_enough", server().url("/ok"), "max_response_time: 10s") +
               target("inherits", server().url("/slow?ms=300")) +
               target("json_first", server().url("/slow?ms=300"),
                      "max_response_time: 50ms, json: [{pointer: /a}]") +
               target("status_first", server().url("/status/500"), "max_response_time: 10s"),
           "    max_response_time: 60ms\n");
  const json slow = r.one("slow");
  expect_schema(slow);
  EXPECT_FALSE(slow["success"].get<bool>());
  EXPECT_EQ(slow["error"], "slow") << slow;
  EXPECT_EQ(slow["status_code"], 200);  // the response is recorded as it was
  EXPECT_EQ(slow["regex_matched"], nullptr);
  const std::string msg = slow["error_message"];
  EXPECT_EQ(msg.rfind("response took ", 0), 0U) << msg;
  EXPECT_NE(msg.find(" ms, max_response_time is 50 ms"), std::string::npos) << msg;
  EXPECT_TRUE(slow["failed_url"].is_null());
  const json fast = r.one("fast_enough");
  EXPECT_TRUE(fast["success"].get<bool>()) << fast;
  EXPECT_EQ(r.one("inherits")["error"], "slow");  // the plugin-level 60ms
  EXPECT_NE(r.one("inherits")["error_message"].get<std::string>().find("is 60 ms"),
            std::string::npos);
  EXPECT_EQ(r.one("json_first")["error"], "json_invalid");  // "slow" is not JSON
  EXPECT_EQ(r.one("status_first")["error"], "http_status");
}

TEST_F(http_check_http, JsonBodyAssertions) {
  const std::string body =
      R"({"status":"UP","code":200,"ratio":1.5,"ok":true,"none":null,"db":{"latency":"12"},)"
      R"("items":[{"id":"a/1"}],"a/b":"slash","text":"x\"y"})";
  const std::string url = server().url("/json?body=" + query_escape(body));
  const Result r = once(
      target("all_hold", url,
             "json: [{pointer: /status, equals: UP}, {pointer: /db/latency, regex: '^[0-9]+$'}, "
             "{pointer: /code, equals: 200}, {pointer: /ratio, equals: '1.5'}, "
             "{pointer: /ok, equals: 'true'}, {pointer: /none, equals: 'null'}, "
             "{pointer: /items/0/id, equals: a/1}, {pointer: /a~1b, equals: slash}, "
             "{pointer: /text, equals: 'x\"y'}, {pointer: /db}, "
             "{pointer: /db, equals: '{\"latency\":\"12\"}'}]") +
          target("differs", url,
                 "json: [{pointer: /status, equals: UP}, {pointer: /code, equals: 201}]") +
          target("regex_fails", url, "json: [{pointer: /db/latency, regex: '^[a-z]+$'}]") +
          target("missing", url, "json: [{pointer: /db/size}]") +
          target("index_out_of_range", url, "json: [{pointer: /items/3/id}]") +
          target("not_json", server().url("/ok"), "json: [{pointer: /status, equals: UP}]") +
          target("status_first", server().url("/status/500"),
                 "expect_status: [200], json: [{pointer: /status}]") +
          target("regex_first", url, "body_regex: nomatch, json: [{pointer: /nomatch}]") +
          target("inherited", url) + target("replaced", url, "json: [{pointer: /ok}]"),
      "    json: [{pointer: /status, equals: DOWN}]\n");
  const json ok = r.one("all_hold");
  expect_schema(ok);
  EXPECT_TRUE(ok["success"].get<bool>()) << ok;
  const json differs = r.one("differs");
  expect_schema(differs);
  EXPECT_EQ(differs["error"], "json_mismatch");
  EXPECT_EQ(differs["status_code"], 200);
  EXPECT_EQ(differs["error_message"], "JSON /code is 200, expected \"201\"");
  EXPECT_EQ(r.one("regex_fails")["error"], "json_mismatch");
  EXPECT_EQ(r.one("regex_fails")["error_message"],
            "JSON /db/latency is \"12\", which does not match regex '^[a-z]+$'");
  EXPECT_EQ(r.one("missing")["error"], "json_mismatch");
  EXPECT_EQ(r.one("missing")["error_message"], "JSON pointer /db/size not found in the body");
  EXPECT_EQ(r.one("index_out_of_range")["error"], "json_mismatch");
  const json not_json = r.one("not_json");
  EXPECT_EQ(not_json["error"], "json_invalid");
  EXPECT_EQ(not_json["error_message"].get<std::string>().rfind("body is not JSON: ", 0), 0U)
      << not_json;
  EXPECT_EQ(r.one("status_first")["error"], "http_status");
  EXPECT_EQ(r.one("regex_first")["error"], "body_mismatch");
  EXPECT_EQ(r.one("inherited")["error"], "json_mismatch");  // plugin-level: /status is DOWN
  EXPECT_EQ(r.one("inherited")["error_message"], "JSON /status is \"UP\", expected \"DOWN\"");
  EXPECT_TRUE(r.one("replaced")["success"].get<bool>()) << r.one("replaced");
}

TEST(http_check_config, JsonAssertionsCheckedDirectly) {
  auto assertion = [](std::string pointer, std::optional<std::string> equals,
                      const char* regex = nullptr) {
    JsonAssertion a;
    a.pointer = std::move(pointer);
    a.equals = std::move(equals);
    if (regex != nullptr) {
      a.regex = std::make_shared<const Regex>(regex);
    }
    return a;
  };
  EXPECT_FALSE(check_json({}, "not json at all").has_value());  // nothing asked, nothing parsed
  EXPECT_FALSE(check_json({assertion("", "[1,2]")}, " [1, 2] ").has_value());
  EXPECT_FALSE(check_json({assertion("/n", "100.0")}, R"({"n":1e2})").has_value());
  EXPECT_FALSE(check_json({assertion("/s", "caf\u00e9")}, R"({"s":"caf\u00e9"})").has_value());
  const auto empty = check_json({assertion("/a", std::nullopt)}, "");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->first, "json_invalid");
  const auto trailing = check_json({assertion("/a", std::nullopt)}, R"({"a":1} x)");
  ASSERT_TRUE(trailing.has_value());
  EXPECT_EQ(trailing->first, "json_invalid");
  const auto wrong_type = check_json({assertion("/a/b", std::nullopt)}, R"({"a":[1]})");
  ASSERT_TRUE(wrong_type.has_value());
  EXPECT_EQ(wrong_type->first, "json_mismatch");
  EXPECT_NO_THROW(check_json_pointer(""));
  EXPECT_NO_THROW(check_json_pointer("/a~0b/0"));
  EXPECT_THROW(check_json_pointer("status"), std::invalid_argument);
  EXPECT_THROW(check_json_pointer("/a~2"), std::invalid_argument);
}

TEST(http_check_config, ConditionOptionErrorsNameTheTargetAndOption) {
  auto expect_error = [](const std::string& opts, const std::string& needle) {
    const std::string e = validate(opts);
    EXPECT_NE(e.find(needle), std::string::npos) << "options:\n" << opts << "error: " << e;
    EXPECT_EQ(e.rfind("pipeline.yaml:", 0), 0U) << e;  // file:line:column
  };
  const std::string u = "http://h/";
  expect_error("    targets:\n" + target("a", u, "json: [{equals: UP}]"), "pointer");
  expect_error("    targets:\n" + target("a", u, "json: [{pointer: status}]"),
               "'status' is not a JSON pointer");
  expect_error("    targets:\n" + target("a", u, "json: [{pointer: /s, equals: a, regex: b}]"),
               "set equals or regex, not both");
  expect_error("    targets:\n" + target("a", u, "json: [{pointer: /s, regex: '(('}]"),
               "invalid regular expression");
  expect_error("    targets:\n" + target("a", u, "json: [{pointer: /s, equal: UP}]"), "equal");
  expect_error("    targets:\n" + target("a", u, "json: {pointer: /s}"), "json");
  expect_error("    targets:\n" + target("a", u, "max_response_time: 0s"), "max_response_time");
  expect_error("    targets:\n" + target("a", u, "max_response_time: fast"), "max_response_time");
  expect_error("    min_cert_validity: soon\n    targets:\n" + target("a", u), "min_cert_validity");
}

TEST_F(http_check_http, HeadAndPostReachTheServerAsConfigured) {
  const std::size_t before = server().requests().size();
  const Result r =
      once(target("head", server().url("/echo"), "method: HEAD, headers: { X-Probe: head-1 }") +
               target("post", server().url("/echo"),
                      "method: POST, body: '{\"a\":1}', headers: { Content-Type: application/json, "
                      "X-Probe: post-1 }") +
               target("put", server().url("/echo"), "method: PUT, body: 'put-body'") +
               target("basic", server().url("/echo"), "username: alice, password: s3cret") +
               target("bearer", server().url("/echo"), "bearer_token: tok-123"),
           "    user_agent: webmon-test/1\n    headers: { X-Global: g }\n");
  for (const char* n : {"head", "post", "put", "basic", "bearer"}) {
    EXPECT_TRUE(r.one(n)["success"].get<bool>()) << n << ": " << r.one(n);
  }
  EXPECT_EQ(r.one("head")["method"], "HEAD");
  EXPECT_EQ(r.one("head")["body_bytes"], 0);
  const auto seen = server().requests();
  ASSERT_EQ(seen.size(), before + 5);
  std::map<std::string, t::SeenRequest> by_probe;
  for (std::size_t i = before; i < seen.size(); ++i) {
    const auto& req = seen[i];
    auto header = [&](const std::string& k) {
      auto it = req.headers.find(k);
      return it == req.headers.end() ? std::string() : it->second;
    };
    EXPECT_EQ(header("X-Global"), "g");
    EXPECT_EQ(header("User-Agent"), "webmon-test/1");
    if (req.method == "HEAD") {
      EXPECT_EQ(header("X-Probe"), "head-1");
    } else if (req.method == "POST") {
      EXPECT_EQ(header("X-Probe"), "post-1");
      EXPECT_EQ(header("Content-Type"), "application/json");
      EXPECT_EQ(req.body, "{\"a\":1}");
    } else if (req.method == "PUT") {
      EXPECT_EQ(req.body, "put-body");
    } else if (header("Authorization").rfind("Basic ", 0) == 0) {
      EXPECT_EQ(header("Authorization"), "Basic YWxpY2U6czNjcmV0");  // alice:s3cret
    } else {
      EXPECT_EQ(header("Authorization"), "Bearer tok-123");
    }
    by_probe[req.method + header("Authorization").substr(0, 6)] = req;
  }
  EXPECT_EQ(by_probe.size(), 5U);
}

TEST_F(http_check_http, LargeBodyAndMaxBodySize) {
  const Result r =
      once(target("large", server().url("/large?bytes=3145728"), "body_regex: 'END-MARKER$'") +
           target("capped", server().url("/large?bytes=3145728"), "max_body_size: 1MiB"));
  const json large = r.one("large");
  EXPECT_TRUE(large["success"].get<bool>()) << large;
  EXPECT_EQ(large["body_bytes"], 3145728);
  EXPECT_EQ(large["regex_matched"], true);
  const json capped = r.one("capped");
  EXPECT_EQ(capped["error"], "other");
  EXPECT_NE(capped["error_message"].get<std::string>().find("max_body_size"), std::string::npos);
  EXPECT_LE(capped["body_bytes"].get<std::int64_t>(), 1 << 20);
}

TEST_F(http_check_http, LabelsAndAgentName) {
  const Result r = run("    once: true\n    labels: { team: web, env: prod }\n    targets:\n" +
                       target("a", server().url("/ok"), "labels: { env: staging, tier: gold }"));
  const json a = r.one("a");
  EXPECT_EQ(a["labels"], json({{"team", "web"}, {"env", "staging"}, {"tier", "gold"}}));
  EXPECT_TRUE(a["agent"].is_string());
}

TEST_F(http_check_http, RecordsDecodeWithTheWireSchema) {
  const Result r = once(target("ok", server().url("/ok")) + target("bad", server().url("/x")));
  common::JsonDecoder decoder;
  const auto* schema = common::find_schema("http_check");
  ASSERT_NE(schema, nullptr);
  ASSERT_EQ(r.lines.size(), 2U);
  std::set<std::string> ids;
  for (const auto& line : r.lines) {
    sdk::Record rec;
    std::string error;
    ASSERT_TRUE(decoder.decode(line, rec, error)) << error;
    EXPECT_EQ(common::check_record(rec, *schema), std::nullopt) << line;
    ids.insert(rec.id);
  }
  EXPECT_EQ(ids.size(), 2U);
}

// ---------------------------------------------------------------------------------------------
// TLS

class http_check_tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new t::TestPki(dir_->path());
    const long day = 86400;
    good_ = new t::HttpServer(pki_->issue("good", "IP:127.0.0.1,DNS:localhost", -day, 30 * day));
    good_not_after_ = pki_->last_not_after();
    expired_ = new t::HttpServer(pki_->issue("expired", "IP:127.0.0.1", -30 * day, -day));
    wrong_host_ = new t::HttpServer(pki_->issue("wrong", "DNS:other.example", -day, 30 * day));
    self_signed_ = new t::HttpServer(
        pki_->issue("self", "IP:127.0.0.1", -day, 30 * day, /*self_signed=*/true));
    soon_ = new t::HttpServer(pki_->issue("soon", "IP:127.0.0.1", -day, 5 * day));
    soon_not_after_ = pki_->last_not_after();
  }
  static void TearDownTestSuite() {
    delete good_;
    delete expired_;
    delete wrong_host_;
    delete self_signed_;
    delete soon_;
    delete pki_;
    delete dir_;
  }
  static TempDir* dir_;
  static t::TestPki* pki_;
  static t::HttpServer* good_;
  static t::HttpServer* expired_;
  static t::HttpServer* wrong_host_;
  static t::HttpServer* self_signed_;
  static t::HttpServer* soon_;  // a trusted certificate that expires in 5 days
  static long long good_not_after_;
  static long long soon_not_after_;
};
TempDir* http_check_tls::dir_ = nullptr;
t::TestPki* http_check_tls::pki_ = nullptr;
t::HttpServer* http_check_tls::good_ = nullptr;
t::HttpServer* http_check_tls::expired_ = nullptr;
t::HttpServer* http_check_tls::wrong_host_ = nullptr;
t::HttpServer* http_check_tls::self_signed_ = nullptr;
t::HttpServer* http_check_tls::soon_ = nullptr;
long long http_check_tls::good_not_after_ = 0;
long long http_check_tls::soon_not_after_ = 0;

TEST_F(http_check_tls, TrustedCertificateAndItsDetails) {
  const Result r =
      once(target("good", good_->url("/ok"), "ca_file: " + yaml_quote(pki_->ca_file())));
  const json good = r.one("good");
  expect_schema(good);
  EXPECT_TRUE(good["success"].get<bool>()) << good;
  ASSERT_TRUE(good["tls_ms"].is_number_float());
  EXPECT_GT(good["tls_ms"].get<double>(), 0.0);
  EXPECT_NE(good["tls_cert_issuer"].get<std::string>().find("CN=webmon Test CA"), std::string::npos)
      << good["tls_cert_issuer"];
  const std::string not_after = good["tls_cert_not_after"];
  std::tm tm{};
  ASSERT_NE(strptime(not_after.c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr) << not_after;
  EXPECT_NEAR(static_cast<double>(timegm(&tm)), static_cast<double>(good_not_after_), 5.0);
  EXPECT_EQ(good["tls_version"], "TLSv1.3");
}

TEST_F(http_check_tls, BadCertificatesFailWithTls) {
  const std::string ca = "ca_file: " + yaml_quote(pki_->ca_file());
  const Result r = once(target("expired", expired_->url("/ok"), ca) +
                        target("wrong_host", wrong_host_->url("/ok"), ca) +
                        target("untrusted", self_signed_->url("/ok"), ca) +
                        target("system_store", good_->url("/ok")));
  for (const char* n : {"expired", "wrong_host", "untrusted", "system_store"}) {
    const json rec = r.one(n);
    expect_schema(rec);
    EXPECT_EQ(rec["error"], "tls") << n << ": " << rec;
    EXPECT_TRUE(rec["status_code"].is_null()) << n;
  }
  EXPECT_NE(r.one("expired")["error_message"].get<std::string>().find("expired"), std::string::npos)
      << r.one("expired");
  // A failed handshake still reports the certificate it was offered.
  const json expired = r.one("expired");
  ASSERT_TRUE(expired["tls_cert_not_after"].is_string()) << expired;
  EXPECT_LT(expired["tls_cert_not_after"].get<std::string>(), expired["time"].get<std::string>());
  ASSERT_TRUE(r.one("untrusted")["tls_cert_issuer"].is_string());
  EXPECT_NE(r.one("untrusted")["tls_cert_issuer"].get<std::string>().find("CN=self"),
            std::string::npos);
  EXPECT_NE(r.one("wrong_host")["tls_cert_issuer"].get<std::string>().find("CN=webmon Test CA"),
            std::string::npos);
}

TEST_F(http_check_tls, TlsVerifyFalsePasses) {
  const Result r = once(target("expired", expired_->url("/ok"), "tls_verify: false") +
                        target("wrong_host", wrong_host_->url("/ok"), "tls_verify: false") +
                        target("untrusted", self_signed_->url("/ok"), "tls_verify: false"));
  for (const char* n : {"expired", "wrong_host", "untrusted"}) {
    const json rec = r.one(n);
    EXPECT_TRUE(rec["success"].get<bool>()) << n << ": " << rec;
    EXPECT_TRUE(rec["tls_cert_not_after"].is_string()) << n;
  }
}

// An RFC 3339 date without fractions, as cert_expiring messages write it.
std::string utc_text(long long seconds) {
  const auto tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

TEST_F(http_check_tls, MinCertValidityFailsACertificateThatExpiresSoon) {
  const std::string ca = "ca_file: " + yaml_quote(pki_->ca_file());
  const Result r =
      once(target("soon_14d", soon_->url("/ok"), ca + ", min_cert_validity: 14d") +
           target("soon_1d", soon_->url("/ok"), ca + ", min_cert_validity: 1d") +
           target("good_14d", good_->url("/ok"), ca + ", min_cert_validity: 14d") +
           target("expired_unverified", expired_->url("/ok"),
                  "tls_verify: false, min_cert_validity: 1d") +
           target("status_first", soon_->url("/status/503"), ca + ", min_cert_validity: 14d") +
           target("plain_http", "http://127.0.0.1:" + std::to_string(good_->port()) + "/ok",
                  "min_cert_validity: 14d, timeout: 2s"));
  const json soon = r.one("soon_14d");
  expect_schema(soon);
  EXPECT_FALSE(soon["success"].get<bool>());
  EXPECT_EQ(soon["error"], "cert_expiring") << soon;
  EXPECT_EQ(soon["status_code"], 200);  // the response itself is recorded as usual
  const std::string msg = soon["error_message"];
  EXPECT_NE(msg.find("certificate expires in 4 days, on " + utc_text(soon_not_after_)),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("min_cert_validity is 14d"), std::string::npos) << msg;
  EXPECT_TRUE(r.one("soon_1d")["success"].get<bool>()) << r.one("soon_1d");
  EXPECT_TRUE(r.one("good_14d")["success"].get<bool>()) << r.one("good_14d");
  const json expired = r.one("expired_unverified");
  EXPECT_EQ(expired["error"], "cert_expiring") << expired;
  EXPECT_NE(expired["error_message"].get<std::string>().find("certificate expired"),
            std::string::npos)
      << expired;
  // A failed status comes first (README: order of the error classes).
  EXPECT_EQ(r.one("status_first")["error"], "http_status");
  // http:// to a TLS port is a failure of its own, never cert_expiring.
  EXPECT_NE(r.one("plain_http")["error"], "cert_expiring");
}

TEST_F(http_check_tls, ClientCertificateRequiredByTheServer) {
  const long day = 86400;
  t::ServerOptions o;
  o.certificate = pki_->issue("mtls", "IP:127.0.0.1", -day, 30 * day);
  o.client_ca_file = pki_->ca_file();
  t::HttpServer mtls(o);
  const t::CertFiles client =
      pki_->issue("client", "DNS:webmon-client", -day, 30 * day, /*self_signed=*/false,
                  /*client=*/true);
  const t::CertFiles stranger =
      pki_->issue("stranger", "DNS:webmon-client", -day, 30 * day, /*self_signed=*/true,
                  /*client=*/true);
  const std::string ca = "ca_file: " + yaml_quote(pki_->ca_file());
  const auto with = [&](const t::CertFiles& c) {
    return ca + ", cert_file: " + yaml_quote(c.cert) + ", key_file: " + yaml_quote(c.key);
  };
  const Result r = once(target("with_cert", mtls.url("/ok"), with(client)) +
                        target("without_cert", mtls.url("/ok"), ca) +
                        target("untrusted_cert", mtls.url("/ok"), with(stranger)));
  const json ok = r.one("with_cert");
  expect_schema(ok);
  EXPECT_TRUE(ok["success"].get<bool>()) << ok;
  EXPECT_EQ(ok["status_code"], 200);
  for (const char* n : {"without_cert", "untrusted_cert"}) {
    const json rec = r.one(n);
    expect_schema(rec);
    EXPECT_FALSE(rec["success"].get<bool>()) << n;
    EXPECT_EQ(rec["error"], "tls") << n << ": " << rec;
    EXPECT_TRUE(rec["status_code"].is_null()) << n << ": " << rec;
    EXPECT_NE(rec["error_message"].get<std::string>().find("client certificate"), std::string::npos)
        << n << ": " << rec;
  }
  // Only the check with the certificate got through (counted after the answer: wait for it).
  EXPECT_TRUE(wait_until([&] { return mtls.requests_to("/ok") >= 1; }));
  EXPECT_EQ(mtls.requests_to("/ok"), 1);
}

// ---------------------------------------------------------------------------------------------
// Proxy and IP version

TEST(http_check_proxy, HttpAndHttpsThroughAForwardProxy) {
  TempDir dir;
  t::TestPki pki(dir.path());
  t::HttpServer origin;
  t::HttpServer tls_origin(pki.issue("origin", "IP:127.0.0.1", -86400, 86400));
  t::ForwardProxy proxy;
  const std::string via = "proxy: " + yaml_quote(proxy.url());
  const Result r =
      once(target("http", origin.url("/ok"), via + ", body_regex: 'hello webmon'") +
           target("https", tls_origin.url("/ok"), via + ", ca_file: " + yaml_quote(pki.ca_file())) +
           target("dead_proxy", origin.url("/status/204"),
                  "proxy: 'http://127.0.0.1:" + std::to_string(t::closed_port()) + "'"));
  const json http = r.one("http");
  expect_schema(http);
  EXPECT_TRUE(http["success"].get<bool>()) << http;
  EXPECT_EQ(http["status_code"], 200);
  EXPECT_EQ(http["regex_matched"], true);
  const json https = r.one("https");
  EXPECT_TRUE(https["success"].get<bool>()) << https;
  EXPECT_NE(https["tls_cert_issuer"].get<std::string>().find("CN=webmon Test CA"),
            std::string::npos)
      << https;
  const json dead = r.one("dead_proxy");
  EXPECT_FALSE(dead["success"].get<bool>());
  EXPECT_EQ(dead["error"], "connect") << dead;
  // The proxy saw an absolute-form request and a CONNECT; the origins saw the relayed requests.
  const auto lines = proxy.request_lines();
  const std::string get_line = "GET " + origin.url("/ok") + " HTTP/1.1";
  const std::string connect_line =
      "CONNECT 127.0.0.1:" + std::to_string(tls_origin.port()) + " HTTP/1.1";
  EXPECT_EQ(std::count(lines.begin(), lines.end(), get_line), 1) << ::testing::PrintToString(lines);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), connect_line), 1)
      << ::testing::PrintToString(lines);
  EXPECT_EQ(lines.size(), 2U) << ::testing::PrintToString(lines);
  EXPECT_TRUE(wait_until([&] {
    return origin.requests_to("/ok") >= 1 && tls_origin.requests_to("/ok") >= 1;
  }));  // counted after the answer
  EXPECT_EQ(origin.requests_to("/ok"), 1);
  EXPECT_EQ(origin.requests_to("/status/204"), 0);
  EXPECT_EQ(tls_origin.requests_to("/ok"), 1);
}

TEST(http_check_ip_version, SixReachesAnIpv6OnlyServerAndFourDoesNot) {
  t::ServerOptions o;
  o.host = "::1";
  std::unique_ptr<t::HttpServer> v6;
  try {
    v6 = std::make_unique<t::HttpServer>(o);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  const std::string by_name = "http://localhost:" + std::to_string(v6->port()) + "/ok";
  // [::1] has only an IPv6 address; localhost has both, and the server listens on ::1 only.
  const Result r =
      once(target("literal_6", v6->url("/ok"), "ip_version: 6") +
           target("literal_4", v6->url("/ok"), "ip_version: 4") +
           target("name_6", by_name, "ip_version: 6") + target("name_4", by_name, "ip_version: 4") +
           target("name_any", by_name, "ip_version: any"));
  for (const char* n : {"literal_6", "name_6", "name_any"}) {
    const json rec = r.one(n);
    expect_schema(rec);
    EXPECT_TRUE(rec["success"].get<bool>()) << n << ": " << rec;
    EXPECT_EQ(rec["remote_ip"], "::1") << n;
  }
  for (const char* n : {"literal_4", "name_4"}) {
    const json rec = r.one(n);
    expect_schema(rec);
    EXPECT_FALSE(rec["success"].get<bool>()) << n;
    EXPECT_EQ(rec["error"], "connect") << n << ": " << rec;
    EXPECT_TRUE(rec["status_code"].is_null()) << n;
    EXPECT_NE(rec["remote_ip"], "::1") << n;
  }
  // The server counts a request after it has answered: wait for the count.
  EXPECT_TRUE(wait_until([&] { return v6->requests_to("/ok") >= 3; }));
  EXPECT_EQ(v6->requests_to("/ok"), 3);
}

// HTTP/2 needs a server that speaks it: Debian's nginx (installed by scripts/bootstrap for the
// benchmark), started privately on a free port with master_process off; skipped without it.
TEST(http_check_http2, NegotiatedOverTlsWithAnHttp2Server) {
  std::string nginx;
  for (const char* c : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"}) {
    if (::access(c, X_OK) == 0) {
      nginx = c;
      break;
    }
  }
  if (nginx.empty()) {
    GTEST_SKIP() << "nginx not installed (apt-get install nginx-light)";
  }
  TempDir dir;
  t::TestPki pki(dir.path());
  const t::CertFiles cert = pki.issue("h2", "IP:127.0.0.1", -86400, 86400);
  const int port = t::closed_port();
  const std::string& d = dir.path();
  std::string conf =
      "daemon off;\nmaster_process off;\npid " + d + "/nginx.pid;\nerror_log " + d +
      "/error.log warn;\nevents { worker_connections 64; }\nhttp {\n  access_log off;\n";
  for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    conf += "  " + std::string(temp) + "_temp_path " + d + ";\n";
  }
  conf += "  server {\n    listen 127.0.0.1:" + std::to_string(port) + " ssl http2;\n" +
          "    ssl_certificate " + cert.cert + ";\n    ssl_certificate_key " + cert.key + ";\n" +
          "    location / { default_type text/plain; return 200 \"h2 ok\\n\"; }\n  }\n}\n";
  const std::string conf_path = dir.write("nginx.conf", conf);
  webmon::testing::Child server({nginx, "-p", d, "-c", conf_path, "-e", d + "/error.log"},
                                d + "/nginx.out", d + "/nginx.err");
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = t::port_open(port);
    if (!up) {
      std::this_thread::sleep_for(25ms);
    }
  }
  ASSERT_TRUE(up) << webmon::testing::read_file(d + "/error.log")
                  << webmon::testing::read_file(d + "/nginx.err");
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";
  const Result r =
      once(target("h2", url, "ca_file: " + yaml_quote(pki.ca_file()) + ", body_regex: 'h2 ok'"));
  const json h2 = r.one("h2");
  expect_schema(h2);
  EXPECT_TRUE(h2["success"].get<bool>()) << h2;
  EXPECT_EQ(h2["http_version"], "2") << h2;
  EXPECT_EQ(h2["status_code"], 200);
  EXPECT_EQ(h2["regex_matched"], true);
  EXPECT_GT(h2["tls_ms"].get<double>(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Misbehaving targets

TEST(http_check_bad_targets, GarbageResetAndEndlessBodyFailWithoutStallingOthers) {
  t::HttpServer http;
  t::RawServer garbage(&t::RawServer::garbage);
  t::RawServer reset(&t::RawServer::reset);
  // The good target keeps its schedule (nine checks) while the others fail, each at least once.
  const Result r = run_until(
      "    interval: 200ms\n    timeout: 3s\n    targets:\n" + target("garbage", garbage.url("/")) +
          target("reset", reset.url("/")) +
          // identity: cpp-httplib would otherwise gzip the endless stream of 'x' into a trickle
          target("endless", http.url("/endless"),
                 "max_body_size: 4MiB, accept_encoding: identity") +
          target("endless_timeout", http.url("/endless?pace_ms=10"),
                 "max_body_size: 1GiB, timeout: 500ms, accept_encoding: identity") +
          target("good", http.url("/ok")),
      [](const std::vector<json>& recs) {
        return count_of(recs, "good") >= 9 && count_of(recs, "garbage") >= 1 &&
               count_of(recs, "reset") >= 1 && count_of(recs, "endless") >= 1 &&
               count_of(recs, "endless_timeout") >= 1;
      });
  const auto good = r.of("good");
  EXPECT_GE(good.size(), 9U);
  for (const auto& g : good) {
    EXPECT_TRUE(g["success"].get<bool>()) << g;
  }
  for (const char* n : {"garbage", "reset", "endless", "endless_timeout"}) {
    const auto recs = r.of(n);
    ASSERT_FALSE(recs.empty()) << n;
    for (const auto& rec : recs) {
      expect_schema(rec);
      EXPECT_FALSE(rec["success"].get<bool>()) << n;
    }
  }
  EXPECT_EQ(r.of("garbage")[0]["error"], "other") << r.of("garbage")[0];
  EXPECT_EQ(r.of("reset")[0]["error"], "other") << r.of("reset")[0];
  EXPECT_EQ(r.of("endless")[0]["error"], "other") << r.of("endless")[0];
  EXPECT_EQ(r.of("endless_timeout")[0]["error"], "timeout") << r.of("endless_timeout")[0];
  EXPECT_NE(r.of("endless")[0]["error_message"].get<std::string>().find("max_body_size"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Scheduling

TEST(http_check_schedule, ThousandTargetsAllCheckedOnSchedule) {
  // A raw server with a long listen backlog: cpp-httplib's backlog of 5 drops SYNs at this rate.
  t::RawServer server(&t::RawServer::ok_close);
  std::string targets;
  for (int i = 0; i < 1000; ++i) {
    targets += target("t" + std::to_string(i), server.url("/" + std::to_string(i)));
  }
  // Until every target has had three checks.
  const Result r = run_until("    interval: 1s\n    timeout: 5s\n    targets:\n" + targets,
                             [](const std::vector<json>& recs) {
                               std::map<std::string, int> n;
                               for (const auto& rec : recs) {
                                 ++n[rec["target"].get<std::string>()];
                               }
                               return n.size() == 1000 &&
                                      std::all_of(n.begin(), n.end(),
                                                  [](const auto& kv) { return kv.second >= 3; });
                             });
  std::map<std::string, std::vector<json>> by_target;
  for (const auto& rec : r.records) {
    by_target[rec["target"]].push_back(rec);
  }
  ASSERT_EQ(by_target.size(), 1000U);
  std::vector<double> lateness;
  std::vector<int> buckets(10, 0);
  for (const auto& [name, recs] : by_target) {
    // Slots at offset, offset + 1 s, ...: on an exact 1 s grid (a slot may be skipped when a
    // check overran it, e.g. a dropped SYN on a loaded machine, so gaps are whole seconds).
    EXPECT_GE(recs.size(), 3U) << name;
    std::vector<std::int64_t> times;
    for (const auto& rec : recs) {
      EXPECT_TRUE(rec["success"].get<bool>()) << rec;
      lateness.push_back(rec["lateness_ms"].get<double>());
      std::tm tm{};
      const std::string ts = rec["time"];
      strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
      times.push_back(static_cast<std::int64_t>(timegm(&tm)) * 1'000'000 +
                      std::stoll(ts.substr(20, 6)));
    }
    std::sort(times.begin(), times.end());
    for (std::size_t i = 1; i < times.size(); ++i) {
      const std::int64_t gap = times[i] - times[i - 1];
      const std::int64_t off_grid = std::min(gap % 1'000'000, 1'000'000 - gap % 1'000'000);
      EXPECT_GE(gap, 999'998) << name;
      EXPECT_LE(off_grid, 2) << name << ": scheduled times must stay on the 1 s grid";
    }
    ++buckets[static_cast<std::size_t>((times[0] / 100'000) % 10)];
  }
  // Starts are spread over the interval, not bunched (the offsets are hashes of the names).
  for (int b : buckets) {
    EXPECT_GT(b, 40);
  }
  std::sort(lateness.begin(), lateness.end());
  ASSERT_FALSE(lateness.empty());
  EXPECT_GE(lateness.front(), 0.0);
}

TEST(http_check_schedule, SlowTargetNeverOverlapsItself) {
  t::HttpServer http;
  const Result r =
      run_until("    interval: 100ms\n    timeout: 5s\n    targets:\n" +
                    target("slow", http.url("/slow?ms=450")) + target("fast", http.url("/ok")),
                [](const std::vector<json>& recs) {
                  return count_of(recs, "slow") >= 3 && count_of(recs, "fast") >= 15;
                });
  EXPECT_EQ(http.max_concurrent_slow(), 1);
  // Each slow check (450 ms) overran four 100 ms slots, which were skipped, not queued.
  EXPECT_GE(r.run.counter("checks", "checks_skipped_overlap"), 3U * 4U);
}

class http_check_threads : public ::testing::TestWithParam<int> {};

TEST_P(http_check_threads, ConcurrencyCapIsRespected) {
  t::HttpServer http;
  std::string targets;
  for (int i = 0; i < 12; ++i) {
    targets += target("s" + std::to_string(i), http.url("/slow?ms=200"));
  }
  const Result r =
      once(targets, "    max_concurrency: 4\n    threads: " + std::to_string(GetParam()) + "\n");
  EXPECT_EQ(r.records.size(), 12U);
  EXPECT_LE(http.max_concurrent_slow(), 4);
  EXPECT_GE(http.max_concurrent_slow(), 2);
  for (const auto& rec : r.records) {
    EXPECT_TRUE(rec["success"].get<bool>()) << rec;
    EXPECT_GE(rec["lateness_ms"].get<double>(), 0.0) << rec;
  }
}

TEST_P(http_check_threads, EveryTargetCheckedOnItsGridOnce) {
  t::RawServer server(&t::RawServer::ok_close);
  std::string targets;
  for (int i = 0; i < 100; ++i) {
    targets += target("t" + std::to_string(i), server.url("/" + std::to_string(i)));
  }
  const Result r = run_until("    interval: 500ms\n    threads: " + std::to_string(GetParam()) +
                                 "\n    targets:\n" + targets,
                             [](const std::vector<json>& recs) {
                               std::map<std::string, int> n;
                               for (const auto& rec : recs) {
                                 ++n[rec["target"].get<std::string>()];
                               }
                               return n.size() == 100 &&
                                      std::all_of(n.begin(), n.end(),
                                                  [](const auto& kv) { return kv.second >= 2; });
                             });
  std::map<std::string, std::set<std::string>> times;
  for (const auto& rec : r.records) {
    EXPECT_TRUE(rec["success"].get<bool>()) << rec;
    EXPECT_TRUE(times[rec["target"]].insert(rec["time"].get<std::string>()).second)
        << "a slot checked twice: " << rec;
  }
  EXPECT_EQ(times.size(), 100U);
  for (const auto& [name, slots] : times) {
    EXPECT_GE(slots.size(), 2U) << name;
  }
  // One connection per check (checks in flight at the stop have no record).
  EXPECT_GE(static_cast<std::size_t>(server.accepted()), r.records.size());
  EXPECT_LE(static_cast<std::size_t>(server.accepted()),
            r.records.size() + r.run.counter("checks", "checks_aborted"));
}

INSTANTIATE_TEST_SUITE_P(loops, http_check_threads, ::testing::Values(1, 2, 3));

TEST(http_check_config, DnsCacheValidated) {
  EXPECT_NE(validate("    dns_cache: -1s\n    targets:\n" + target("a", "http://127.0.0.1/"))
                .find("dns_cache"),
            std::string::npos);
  EXPECT_EQ(validate("    dns_cache: 30s\n    targets:\n" + target("a", "http://127.0.0.1/")), "");
}

TEST(http_check_schedule, DnsCacheKeepsNameChecksWorking) {
  t::HttpServer http;
  const std::string by_name = "http://localhost:" + std::to_string(http.port()) + "/ok";
  const Result r = run_until("    interval: 100ms\n    dns_cache: 60s\n    targets:\n" +
                                 target("named", by_name, "ip_version: 4"),
                             [](const std::vector<json>& recs) { return recs.size() >= 3; });
  const auto recs = r.of("named");
  ASSERT_GE(recs.size(), 3U);
  for (const auto& rec : recs) {
    EXPECT_TRUE(rec["success"].get<bool>()) << rec;
    EXPECT_TRUE(rec["dns_ms"].is_number_float()) << rec;
    EXPECT_TRUE(rec["connect_ms"].is_number_float()) << rec;  // still a new connection each time
  }
  EXPECT_TRUE(wait_until([&] { return http.requests_to("/ok") >= static_cast<int>(recs.size()); }));
  EXPECT_LE(static_cast<std::uint64_t>(http.requests_to("/ok")),
            recs.size() + r.run.counter("checks", "checks_aborted"));
}

TEST(http_check_config, ThreadsValidated) {
  EXPECT_NE(validate("    threads: -1\n    targets:\n" + target("a", "http://127.0.0.1/"))
                .find("threads"),
            std::string::npos);
  EXPECT_EQ(validate("    threads: 0\n    targets:\n" + target("a", "http://127.0.0.1/")), "");
  EXPECT_NE(validate("    threads: 8\n    max_concurrency: 4\n    targets:\n" +
                     target("a", "http://127.0.0.1/"))
                .find("threads"),
            std::string::npos);
  EXPECT_EQ(validate("    threads: 2\n    targets:\n" + target("a", "http://127.0.0.1/")), "");
}

TEST(http_check_schedule, FreshConnectionPerCheckUnlessReuseConnections) {
  {
    t::RawServer server(&t::RawServer::keep_alive_ok);
    const Result r = run_until("    interval: 100ms\n    targets:\n" + target("k", server.url("/")),
                               [](const std::vector<json>& recs) { return recs.size() >= 5; });
    const auto recs = r.of("k");
    ASSERT_GE(recs.size(), 5U);
    EXPECT_EQ(server.accepted(), static_cast<int>(recs.size()));
    for (const auto& rec : recs) {
      EXPECT_TRUE(rec["connect_ms"].is_number_float()) << rec;
    }
  }
  {
    t::RawServer server(&t::RawServer::keep_alive_ok);
    const Result r = run_until("    interval: 100ms\n    reuse_connections: true\n    targets:\n" +
                                   target("k", server.url("/")),
                               [](const std::vector<json>& recs) { return recs.size() >= 5; });
    ASSERT_GE(r.of("k").size(), 5U);
    EXPECT_EQ(server.accepted(), 1);
  }
}

TEST(http_check_schedule, StopsWithChecksInFlight) {
  // Stop while the server holds the check's request: the check is abandoned, not recorded.
  t::HttpServer http;
  RunOptions o;
  bool in_flight = false;
  o.during = [&](agent::Runtime& rt) {
    in_flight = wait_until([&] { return http.max_concurrent_slow() >= 1; });
    rt.request_stop();
  };
  const Result r = run("    timeout: 30s\n    interval: 1s\n    targets:\n" +
                           target("slow", http.url("/slow?ms=5000")),
                       o);
  EXPECT_TRUE(in_flight);
  EXPECT_EQ(r.run.counter("checks", "checks_aborted"), 1U);
  EXPECT_TRUE(r.records.empty());
}

// ---------------------------------------------------------------------------------------------
// Phases

// dns + connect + tls + ttfb + transfer (null as 0) is response_time_ms on every record: the
// phases are cut from one set of timestamps per request, so they add up to the microsecond
// each is rounded to (tolerance 0.001 ms for the decimal conversion).
constexpr double kPhaseToleranceMs = 0.001;

void expect_phases_add_up(const json& rec) {
  double sum = 0;
  for (const char* f : {"dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"}) {
    if (!rec[f].is_null()) {
      EXPECT_GE(rec[f].get<double>(), 0.0) << f << ": " << rec;
      sum += rec[f].get<double>();
    }
  }
  EXPECT_NEAR(sum, rec["response_time_ms"].get<double>(), kPhaseToleranceMs) << rec;
}

TEST(http_check_phases, AddUpOnEveryRecordOfEveryErrorClass) {
  TempDir dir;
  t::TestPki pki(dir.path());
  t::HttpServer http;
  t::HttpServer tls_good(pki.issue("good", "IP:127.0.0.1", -86400, 86400));
  t::HttpServer tls_expired(pki.issue("expired", "IP:127.0.0.1", -3 * 86400, -86400));
  t::RawServer garbage(&t::RawServer::garbage);
  t::RawServer reset(&t::RawServer::reset);
  const std::string ca = "ca_file: " + yaml_quote(pki.ca_file());
  const std::string closed = "http://127.0.0.1:" + std::to_string(t::closed_port()) + "/";
  const Result r = once(
      target("ok", http.url("/ok")) + target("head", http.url("/ok"), "method: HEAD") +
      target("http_status", http.url("/status/503")) +
      target("body_mismatch", http.url("/ok"), "body_regex: nope") +
      target("redirects", http.url("/redirect/3")) + target("loop", http.url("/loop")) +
      target("dns", "http://nowhere.invalid/") + target("connect", closed) +
      target("timeout", http.url("/slow?ms=3000"), "timeout: 300ms") +
      target("tls_ok", tls_good.url("/ok"), ca) + target("tls", tls_expired.url("/ok"), ca) +
      target("garbage", garbage.url("/")) + target("reset", reset.url("/")) +
      target("too_large", http.url("/large?bytes=300000"), "max_body_size: 100KiB") +
      target("hop_connect", http.url("/redirect-to?url=" + query_escape(closed))) +
      target("hop_dns", http.url("/redirect-to?url=" + query_escape("http://x.invalid/"))) +
      target("hop_timeout", http.url("/redirect-to?url=" + query_escape(http.url("/slow?ms=3000"))),
             "timeout: 300ms") +
      target("hop_tls", http.url("/redirect-to?url=" + query_escape(tls_expired.url("/ok"))), ca));
  std::set<std::string> classes;
  for (const auto& rec : r.records) {
    expect_schema(rec);
    expect_phases_add_up(rec);
    classes.insert(rec["error"].is_null() ? "success" : rec["error"].get<std::string>());
  }
  EXPECT_EQ(r.records.size(), 18U);
  EXPECT_EQ(classes,
            (std::set<std::string>{"success", "http_status", "body_mismatch", "too_many_redirects",
                                   "dns", "connect", "timeout", "tls", "other"}));
  // A TLS failure: TCP connected, so connect_ms is there; the handshake's time until it
  // failed is tls_ms; no request was sent.
  const json tls = r.one("tls");
  EXPECT_EQ(tls["error"], "tls") << tls;
  ASSERT_TRUE(tls["connect_ms"].is_number_float()) << tls;
  ASSERT_TRUE(tls["tls_ms"].is_number_float()) << tls;
  EXPECT_GT(tls["tls_ms"].get<double>(), 0.0);
  EXPECT_TRUE(tls["ttfb_ms"].is_null()) << tls;
  // A timeout waiting for the response: the wait is ttfb_ms (or, when a loaded machine's test
  // server is slow to accept, connect_ms: the phase the check was in holds the time).
  const json timeout = r.one("timeout");
  EXPECT_EQ(timeout["error"], "timeout");
  const json& waited =
      timeout["ttfb_ms"].is_number_float() ? timeout["ttfb_ms"] : timeout["connect_ms"];
  ASSERT_TRUE(waited.is_number_float()) << timeout;
  EXPECT_GE(waited.get<double>(), 250.0) << timeout;
  EXPECT_TRUE(timeout["transfer_ms"].is_null());
  // A DNS failure is all dns_ms.
  EXPECT_TRUE(r.one("dns")["connect_ms"].is_null());
  // Every phase of a successful HTTPS check.
  for (const char* f : {"dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"}) {
    EXPECT_TRUE(r.one("tls_ok")[f].is_number_float()) << f << ": " << r.one("tls_ok");
  }
}

TEST(http_check_phases, TtfbHoldsTheServersTime) {
  // The server waits 150 ms before it answers: that is in ttfb_ms, not in transfer_ms.
  t::HttpServer http;
  const Result r = once(target("slow", http.url("/slow?ms=150")));
  const json slow = r.one("slow");
  EXPECT_TRUE(slow["success"].get<bool>()) << slow;
  EXPECT_GE(slow["ttfb_ms"].get<double>(), 150.0) << slow;
  EXPECT_LT(slow["transfer_ms"].get<double>(), slow["ttfb_ms"].get<double>()) << slow;
  expect_phases_add_up(slow);
}

// ---------------------------------------------------------------------------------------------
// Redirect hops and the redirect policy

TEST(http_check_redirects, AFailingHopHasNoStatusAndIsNamed) {
  t::HttpServer http;
  const std::string closed = "http://127.0.0.1:" + std::to_string(t::closed_port()) + "/x";
  const std::string slow = http.url("/slow?ms=3000");
  const Result r =
      once(target("connect", http.url("/redirect-to?url=" + query_escape(closed))) +
           target("dns", http.url("/redirect-to?url=" + query_escape("http://a.b.invalid/p"))) +
           target("timeout", http.url("/redirect-to?url=" + query_escape(slow)), "timeout: 400ms") +
           target("chain_ok", http.url("/redirect/2")) +
           target("ftp", http.url("/redirect-to?url=" + query_escape("ftp://127.0.0.1/"))));
  const json connect = r.one("connect");
  EXPECT_EQ(connect["error"], "connect") << connect;
  EXPECT_TRUE(connect["status_code"].is_null()) << connect;
  EXPECT_EQ(connect["failed_url"], closed);
  EXPECT_EQ(connect["redirects"], 1);
  const json dns = r.one("dns");
  EXPECT_EQ(dns["error"], "dns") << dns;
  EXPECT_TRUE(dns["status_code"].is_null());
  EXPECT_EQ(dns["failed_url"], "http://a.b.invalid/p");
  EXPECT_NE(dns["error_message"].get<std::string>().find("RFC 6761"), std::string::npos) << dns;
  const json timeout = r.one("timeout");
  EXPECT_EQ(timeout["error"], "timeout") << timeout;
  EXPECT_TRUE(timeout["status_code"].is_null());
  EXPECT_EQ(timeout["failed_url"], slow);
  EXPECT_GE(timeout["response_time_ms"].get<double>(), 395.0);
  const json ok = r.one("chain_ok");
  EXPECT_TRUE(ok["success"].get<bool>());
  EXPECT_TRUE(ok["failed_url"].is_null());
  const json ftp = r.one("ftp");
  EXPECT_EQ(ftp["error"], "other") << ftp;
  EXPECT_EQ(ftp["failed_url"], "ftp://127.0.0.1/");
  // A loop: the redirect that was not followed any more is named.
  const Result loop = once(target("loop", http.url("/loop"), "max_redirects: 2"));
  EXPECT_EQ(loop.one("loop")["error"], "too_many_redirects");
  EXPECT_EQ(loop.one("loop")["redirects"], 2);
  EXPECT_EQ(loop.one("loop")["status_code"], 302);
  EXPECT_EQ(loop.one("loop")["failed_url"], http.url("/loop"));
}

TEST(http_check_redirects, SameHostAndMethodsAndCredentials) {
  t::HttpServer a;
  t::HttpServer b;
  const std::string to_b = a.url("/redirect-to?url=" + query_escape(b.url("/echo")));
  const std::string to_a = a.url("/redirect-to?url=" + query_escape(a.url("/echo")));
  const std::string by_name = "http://localhost:" + std::to_string(a.port()) + "/redirect-to?url=" +
                              query_escape("http://127.0.0.1:" + std::to_string(a.port()) + "/ok");
  const Result r =
      once(target("same_host_port", to_b, "follow_redirects: same_host") +
           target("same_host_name", by_name, "follow_redirects: same_host, ip_version: 4") +
           target("all", by_name, "ip_version: 4") +
           target("bearer_elsewhere", to_b, "bearer_token: secret-1, headers: { X-Trace: b }") +
           target("bearer_same", to_a, "bearer_token: secret-2") +
           target("post_303", a.url("/redirect-to?status=303&url=" + query_escape(b.url("/echo"))),
                  "method: POST, body: 'x=1'") +
           target("post_307", a.url("/redirect-to?status=307&url=" + query_escape(b.url("/echo"))),
                  "method: POST, body: 'x=2'"));
  // same_host: another port of the same host is followed; another host name is not: the
  // 302 is the final response (accepted by the default expect_status).
  EXPECT_EQ(r.one("same_host_port")["redirects"], 1);
  const json name = r.one("same_host_name");
  EXPECT_EQ(name["redirects"], 0) << name;
  EXPECT_EQ(name["status_code"], 302);
  EXPECT_TRUE(name["success"].get<bool>());
  EXPECT_EQ(r.one("all")["redirects"], 1);
  EXPECT_EQ(r.one("all")["status_code"], 200);
  std::vector<t::SeenRequest> at_b = b.requests();
  std::vector<t::SeenRequest> at_a = a.requests();
  auto header = [](const t::SeenRequest& q, const std::string& k) {
    auto it = q.headers.find(k);
    return it == q.headers.end() ? std::string("<none>") : it->second;
  };
  int bearer_seen = 0;
  for (const auto& q : at_b) {
    EXPECT_EQ(header(q, "Authorization"), "<none>") << "credentials went to another origin";
    if (header(q, "X-Trace") == "b") {
      ++bearer_seen;
    }
  }
  EXPECT_EQ(bearer_seen, 1);
  ASSERT_EQ(at_a.size(), 1U);
  EXPECT_EQ(header(at_a[0], "Authorization"), "Bearer secret-2");
  int get_after_303 = 0;
  int post_after_307 = 0;
  for (const auto& q : at_b) {
    get_after_303 += q.method == "GET" && q.body.empty() ? 1 : 0;
    post_after_307 += q.method == "POST" && q.body == "x=2" ? 1 : 0;
  }
  EXPECT_GE(get_after_303, 1);
  EXPECT_EQ(post_after_307, 1);
}

TEST(http_check_redirects, FromAPublicAddressNotToAnInternalOne) {
  // Everything here is on loopback; `internal_networks` says which addresses count as
  // internal, so a server on 127.0.0.1 stands for a public site and one on 127.0.0.2 for an
  // internal service (Linux routes all of 127.0.0.0/8 to loopback).
  t::ServerOptions o2;
  o2.host = "127.0.0.2";
  std::unique_ptr<t::HttpServer> internal;
  try {
    internal = std::make_unique<t::HttpServer>(o2);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "cannot listen on 127.0.0.2: " << e.what();
  }
  t::HttpServer site;
  const std::string to_internal =
      site.url("/redirect-to?url=" + query_escape(internal->url("/ok")));
  const std::string internal_only = "internal_networks: ['127.0.0.2/32']";
  const Result r = once(target("refused", to_internal, internal_only) +
                        target("default", to_internal) +  // 127.0.0.1 is itself internal by default
                        target("none", to_internal, "internal_networks: none") +
                        target("public_to_public", site.url("/redirect/1"), internal_only));
  const json refused = r.one("refused");
  EXPECT_FALSE(refused["success"].get<bool>());
  EXPECT_EQ(refused["error"], "other") << refused;
  EXPECT_TRUE(refused["status_code"].is_null());
  EXPECT_EQ(refused["failed_url"], internal->url("/ok"));
  EXPECT_NE(refused["error_message"].get<std::string>().find("127.0.0.2, an internal address"),
            std::string::npos)
      << refused;
  EXPECT_TRUE(r.one("default")["success"].get<bool>()) << r.one("default");
  EXPECT_TRUE(r.one("none")["success"].get<bool>()) << r.one("none");
  EXPECT_TRUE(r.one("public_to_public")["success"].get<bool>());
  // default and none reached it, the refused one never did (the server counts a request
  // after it answered, so wait for the count).
  EXPECT_TRUE(wait_until([&] { return internal->requests_to("/ok") >= 2; }));
  EXPECT_EQ(internal->requests_to("/ok"), 2);

  // The address is checked after resolution, not the name: a site on 127.0.0.2 (public here)
  // redirects to "localhost", which resolves to loopback (internal here).
  t::ServerOptions o1;
  o1.host = "127.0.0.2";
  t::HttpServer public_site(o1);
  const std::string to_localhost =
      public_site.url("/redirect-to?url=" +
                      query_escape("http://localhost:" + std::to_string(site.port()) + "/ok"));
  const Result byname = once(target(
      "by_name", to_localhost, "internal_networks: ['127.0.0.1/32', '::1/128'], ip_version: 4"));
  const json rec = byname.one("by_name");
  EXPECT_EQ(rec["error"], "other") << rec;
  EXPECT_NE(rec["error_message"].get<std::string>().find("127.0.0.1, an internal address"),
            std::string::npos)
      << rec;
  EXPECT_EQ(site.requests_to("/ok"), 0);
}

TEST(http_check_config, RedirectPolicyAndEncodingOptionsValidated) {
  auto expect_error = [](const std::string& opts, const std::string& needle) {
    const std::string e = validate(opts);
    EXPECT_NE(e.find(needle), std::string::npos) << "options:\n" << opts << "error: " << e;
  };
  expect_error("    targets:\n" + target("a", "http://h/", "follow_redirects: sometimes"),
               "option 'targets[0].follow_redirects' must be one of 'true', 'false', "
               "'same_host', got 'sometimes'");
  expect_error("    targets:\n" + target("a", "http://h/", "internal_networks: ['10.0.0.0/33']"),
               "option 'internal_networks'");
  expect_error("    targets:\n" + target("a", "http://h/", "internal_networks: [intranet]"),
               "'intranet' is not an address");
  expect_error("    targets:\n" + target("a", "http://h/", "accept_encoding: lzma"),
               "'lzma' is not an encoding this libcurl decodes");
  EXPECT_EQ(validate("    follow_redirects: false\n    targets:\n" +
                     target("a", "http://h/",
                            "follow_redirects: same_host, accept_encoding: "
                            "'gzip, br', internal_networks: [private, "
                            "'fd00::/8', 192.0.2.1]")),
            "");
  const auto nets = parse_networks({"loopback", "192.0.2.0/24"});
  EXPECT_TRUE(address_in(nets, "127.8.9.1"));
  EXPECT_TRUE(address_in(nets, "::1"));
  EXPECT_TRUE(address_in(nets, "::ffff:127.0.0.1"));
  EXPECT_TRUE(address_in(nets, "192.0.2.77"));
  EXPECT_FALSE(address_in(nets, "192.0.3.1"));
  EXPECT_FALSE(address_in(nets, "2001:db8::1"));
  EXPECT_TRUE(parse_networks({"none"}).empty());
}

TEST_F(http_check_http, AcceptEncodingAsConfigured) {
  const std::size_t before = server().requests().size();
  const Result r = once(target("default", server().url("/echo")) +
                        target("identity", server().url("/echo"), "accept_encoding: identity") +
                        target("gzip", server().url("/echo"), "accept_encoding: gzip"));
  ASSERT_EQ(r.records.size(), 3U);
  const auto seen = server().requests();
  ASSERT_EQ(seen.size(), before + 3);
  std::multiset<std::string> values;
  for (std::size_t i = before; i < seen.size(); ++i) {
    auto it = seen[i].headers.find("Accept-Encoding");
    values.insert(it == seen[i].headers.end() ? "<none>" : it->second);
  }
  std::string all;
  for (const auto& e : supported_encodings()) {
    all += (all.empty() ? "" : ", ") + e;
  }
  EXPECT_EQ(values, (std::multiset<std::string>{all, "identity", "gzip"}));
  EXPECT_NE(all.find("gzip"), std::string::npos) << all;
}

TEST(http_check_bad_targets, HugeResponseHeaderSaysSo) {
  t::RawServer huge(&t::RawServer::huge_header);
  const Result r = once(target("huge", huge.url("/")));
  const json rec = r.one("huge");
  expect_schema(rec);
  EXPECT_EQ(rec["error"], "other") << rec;
  EXPECT_NE(rec["error_message"].get<std::string>().find("response header too large"),
            std::string::npos)
      << rec;
  EXPECT_NE(rec["error_message"].get<std::string>().find("102400 bytes"), std::string::npos);
  expect_phases_add_up(rec);
}

// ---------------------------------------------------------------------------------------------
// targets_file reloads

std::string targets_yaml(const std::vector<std::pair<std::string, std::string>>& items,
                         const std::string& more = "") {
  std::string out;
  for (const auto& [name, url] : items) {
    out += "- { name: " + name + ", url: " + yaml_quote(url) + (more.empty() ? "" : ", " + more) +
           " }\n";
  }
  return out;
}

// Replaces a file the way editors do: write a new file, rename it over the old one.
void replace_file(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp);
    out << content;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

std::int64_t micros_of(const std::string& ts) {
  std::tm tm{};
  strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000 + std::stoll(ts.substr(20, 6));
}

TEST(http_check_reload, FileChangeAddsRemovesAndChangesTargets) {
  t::RawServer server(&t::RawServer::ok_close);
  TempDir dir;
  const std::string file = dir.path() + "/targets.yaml";
  replace_file(file, targets_yaml({{"keep", server.url("/keep")},
                                   {"gone", server.url("/gone")},
                                   {"edit", server.url("/edit")}}));
  std::size_t gone_at_reload = 0;
  const Result r = run_until(
      "    interval: 100ms\n    threads: 2\n    targets_file_poll: 50ms\n    targets_file: " +
          yaml_quote(file) + "\n",
      [&](const std::vector<json>& recs) {
        // The reload is applied once `edit` carries its new label; `added` then runs on.
        std::size_t edited = 0;
        for (const auto& rec : recs) {
          edited += rec["target"] == "edit" && rec["labels"].contains("v") ? 1 : 0;
        }
        if (edited > 0 && gone_at_reload == 0) {
          gone_at_reload = count_of(recs, "gone");
        }
        return edited >= 3 && count_of(recs, "added") >= 5;
      },
      [&](const std::string& out) {
        ASSERT_TRUE(wait_until([&] {
          const auto recs = records_in(out);
          return count_of(recs, "gone") >= 2 && count_of(recs, "edit") >= 2;
        }));
        replace_file(
            file, targets_yaml({{"keep", server.url("/keep")}, {"added", server.url("/added")}}) +
                      "- { name: edit, url: " + yaml_quote(server.url("/edit")) +
                      ", labels: { v: '2' } }\n");
      });
  EXPECT_EQ(r.run.counter("checks", "reloads"), 1U);
  EXPECT_EQ(r.run.counter("checks", "reloads_refused"), 0U);
  // Removed: at most the check that was in flight when the change was applied came after.
  EXPECT_LE(count_of(r.records, "gone"), gone_at_reload + 1);
  // Changed and unchanged targets keep their grid; the added one has its own slot on the
  // same grid origin (start + hash(name) mod interval).
  const std::int64_t interval = 100'000;
  auto grid = [&](const std::string& name) {
    std::set<std::int64_t> phases;
    for (const auto& rec : r.of(name)) {
      phases.insert(
          ((micros_of(rec["time"]) - static_cast<std::int64_t>(stable_hash(name) % interval)) %
               interval +
           interval) %
          interval);
    }
    return phases;
  };
  const auto keep = grid("keep");
  ASSERT_EQ(keep.size(), 1U) << "keep's checks are not on one grid";
  EXPECT_EQ(grid("edit"), keep);
  EXPECT_EQ(grid("added"), keep);
  for (const auto& rec : r.records) {
    EXPECT_TRUE(rec["success"].get<bool>()) << rec;
  }
}

TEST(http_check_reload, SighupReloadsAndABadFileIsRefused) {
  // The agent as a process: SIGHUP with polling off, a file that fails validation, then a
  // good one again.
  t::RawServer server(&t::RawServer::ok_close);
  TempDir dir;
  const std::string file = dir.path() + "/targets.yaml";
  const std::string out = dir.path() + "/out.jsonl";
  replace_file(file, targets_yaml({{"first", server.url("/first")}}));
  const std::string pipeline_file = dir.write(
      "p.yaml", pipeline("    interval: 100ms\n    targets_file_poll: 0s\n    targets_file: " +
                             yaml_quote(file) + "\n",
                         out));
  webmon::testing::Child agent({webmon::testing::agent_binary(), "--pipeline", pipeline_file},
                               dir.path() + "/agent.out", dir.path() + "/agent.err");
  const std::string err = dir.path() + "/agent.err";
  ASSERT_TRUE(wait_until([&] { return count_of(records_in(out), "first") >= 2; }))
      << webmon::testing::read_file(err);

  // Unknown key on line 2, column 3: refused with the same message as at start.
  replace_file(file, "- name: second\n  colour: red\n  url: " + yaml_quote(server.url("/")) + "\n");
  const std::string at_start = validate("    targets_file: " + yaml_quote(file) + "\n");
  ASSERT_NE(at_start.find(file + ":2:"), std::string::npos) << at_start;
  const std::string message = at_start.substr(at_start.find(file));  // after the host's prefix
  EXPECT_NE(message.find("unknown option 'colour'"), std::string::npos) << message;
  agent.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return webmon::testing::read_file(err).find("refused") != std::string::npos;
  })) << webmon::testing::read_file(err);
  const std::string log = webmon::testing::read_file(err);
  EXPECT_NE(log.find(message), std::string::npos) << log << "\nexpected: " << message;
  EXPECT_NE(log.find("still checking the previous 1 targets"), std::string::npos) << log;
  const std::size_t first_then = count_of(records_in(out), "first");
  ASSERT_TRUE(wait_until([&] { return count_of(records_in(out), "first") >= first_then + 3; }))
      << "the running set must stay after a refused reload";

  replace_file(file, targets_yaml({{"second", server.url("/second")}}));
  agent.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return count_of(records_in(out), "second") >= 2; }))
      << webmon::testing::read_file(err);
  EXPECT_NE(webmon::testing::read_file(err).find(
                "targets_file reloaded (SIGHUP): 1 targets, 1 added, 1 removed, 0 changed"),
            std::string::npos)
      << webmon::testing::read_file(err);
  agent.signal(SIGTERM);
  EXPECT_EQ(agent.wait(60s), 0);
}

}  // namespace
}  // namespace webmon::plugins::http_check
