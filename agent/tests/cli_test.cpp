// webmon-agent as users run it: flags, exit codes, one-line errors, logs, metrics endpoint.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <regex>
#include <thread>

#include "pipeline_runner.hpp"
#include "webmon/sdk/version.hpp"

namespace webmon::agent {
namespace {

using testing::agent_binary;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
using testing::TempDir;

ProcessResult agent(const std::vector<std::string>& args,
                    const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{agent_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, std::chrono::seconds(60), env);
}

constexpr const char* kPipeline =
    "sources:\n  gen:\n    plugin: generator\n    count: ${WEBMON_T_N:-3}\nsinks:\n  out:\n"
    "    plugin: file\n    inputs: [gen]\n    path: \"-\"\n";

TEST(Cli, Version) {
  const auto r = agent({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  // One version everywhere: the header's (the top CMakeLists reads it from version.hpp).
  const std::string abi =
      std::to_string(WEBMON_SDK_ABI_MAJOR) + "." + std::to_string(WEBMON_SDK_ABI_MINOR);
  EXPECT_EQ(r.out.rfind(std::string("webmon-agent ") + WEBMON_SDK_VERSION + " (plugin SDK " +
                            WEBMON_SDK_VERSION + ", provides SDK ABI " + abi + ", build key ",
                        0),
            0U)
      << r.out;
  EXPECT_EQ(std::string(WEBMON_SDK_VERSION).rfind(abi + ".", 0), 0U)
      << "the release's major.minor is the ABI's";
}

TEST(Cli, HelpListsTheFlags) {
  const auto r = agent({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--pipeline", "--env-file", "--plugin-dir", "--log-level",
                           "--log-format", "--validate", "--list-plugins", "--version"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(Cli, UsageErrorsExit2) {
  auto r = agent({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "webmon-agent: --pipeline FILE is required (see --help)\n");
  r = agent({"--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos);
  r = agent({"--pipeline", "x.yaml", "--log-format", "xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "webmon-agent: --log-format: expected text or json, got 'xml'\n");
  r = agent({"--pipeline", "x.yaml", "--log-level", "loud"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Cli, RunsToCompletionAndExits0) {
  TempDir dir;
  const auto r = agent({"--pipeline", dir.write("p.yaml", kPipeline)}, {"WEBMON_T_N=4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::lines(r.out).size(), 4U);
  EXPECT_NE(r.err.find("stopped cleanly"), std::string::npos);
}

TEST(Cli, ValidateChecksWithoutRunning) {
  TempDir dir;
  const std::string p = dir.write("p.yaml", kPipeline);
  const auto r = agent({"--validate", "--pipeline", p});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, p + ": OK (2 components)\n  source 'gen': plugin generator\n"
                       "  sink 'out': plugin file, inputs gen\n");
}

TEST(Cli, BadConfigurationIsOneLineExit2NothingStarted) {
  TempDir dir;
  const std::string out = dir.path() + "/never";
  const std::string p =
      dir.write("p.yaml",
                "sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n    plugin: file\n"
                "    inputs: [gen]\n    path: " +
                    out + "\n    mode: fast\n");
  const auto r = agent({"--pipeline", p});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "webmon-agent: " + p +
                       ":9:11: sink 'out' (file): unknown option 'mode' (valid options: path "
                       "append fsync)\n");
  EXPECT_TRUE(r.out.empty());
  EXPECT_FALSE(std::ifstream(out).good()) << "the sink must not have started";
}

TEST(Cli, MalformedYamlAndUnreadableFiles) {
  TempDir dir;
  const std::string p = dir.write("p.yaml", "sources: {gen: {plugin: generator}\n");
  auto r = agent({"--pipeline", p});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("webmon-agent: " + p + ":2:1: invalid YAML: ", 0), 0U) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  r = agent({"--pipeline", dir.path() + "/missing.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "webmon-agent: " + dir.path() +
                "/missing.yaml: cannot read the pipeline file (No such file or directory)\n");
  r = agent({"--pipeline", p, "--env-file", dir.path() + "/missing.env"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "webmon-agent: " + dir.path() + "/missing.env: cannot read env file\n");
}

TEST(Cli, EnvFileFeedsSubstitution) {
  TempDir dir;
  const std::string p = dir.write("p.yaml", kPipeline);
  const std::string env = dir.write(".env", "WEBMON_T_N=6\n");
  const auto r = agent({"--pipeline", p, "--env-file", env});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::lines(r.out).size(), 6U);
}

TEST(Cli, ListPluginsShowsKindsAndOptions) {
  const auto r = agent({"--list-plugins"});
  EXPECT_EQ(r.exit_code, 0);
  const std::string abi = "ABI " + std::to_string(WEBMON_SDK_ABI_MAJOR) + "." +
                          std::to_string(WEBMON_SDK_ABI_MINOR) + ")\n";
  EXPECT_NE(r.out.find("\ngenerator (source, version 0.1.0, " + abi), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nfile (sink, version 0.1.0, " + abi), std::string::npos);
  EXPECT_NE(r.out.find("\nadd_fields (transform, version 0.1.0, " + abi), std::string::npos);
  EXPECT_NE(
      r.out.find("    count (int, default 0, min 0): records to emit, then finish; 0 = endless\n"),
      std::string::npos);
  EXPECT_NE(r.out.find("    path (string, required): output file, or - for standard output\n"),
            std::string::npos);
}

TEST(Cli, PluginDirFlagAndEnvironmentVariable) {
  TempDir dir;
  const std::string p =
      dir.write("p.yaml",
                "sources:\n  gen:\n    plugin: generator\n    count: 1\nsinks:\n  out:\n"
                "    plugin: abi_mismatch\n    inputs: [gen]\n");
  const std::string broken = WEBMON_TEST_BROKEN_PLUGIN_DIR;
  auto r = agent({"--pipeline", p, "--plugin-dir", broken});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(broken + "/abi_mismatch.so: built for webmon SDK ABI 99.0"),
            std::string::npos)
      << r.err;
  r = agent({"--pipeline", p}, {"WEBMON_PLUGIN_PATH=" + broken});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(broken + "/abi_mismatch.so: built for webmon SDK ABI 99.0"),
            std::string::npos);
}

TEST(Cli, JsonLogFormatWritesOneObjectPerLine) {
  TempDir dir;
  const auto r = agent({"--pipeline", dir.write("p.yaml", kPipeline), "--log-format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::regex line(
      R"(^\{"time":"[0-9T:.\-]+Z","level":"[a-z]+","component":"[a-z]+","message":".*"\}$)");
  const auto log_lines = testing::lines(r.err);
  ASSERT_GE(log_lines.size(), 3U);
  for (const auto& l : log_lines) {
    EXPECT_TRUE(std::regex_match(l, line)) << l;
  }
}

TEST(Cli, MetricsEndpointAndSigint) {
  TempDir dir;
  const std::string p =
      dir.write("p.yaml",
                "agent:\n  metrics: {listen: \"127.0.0.1:0\"}\nsources:\n  gen:\n"
                "    plugin: generator\n    rate: 1000\nsinks:\n  out:\n    plugin: blackhole\n"
                "    inputs: [gen]\n");
  testing::Child child({agent_binary(), "--pipeline", p}, dir.path() + "/out", dir.path() + "/err");
  int port = -1;
  const std::regex re(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  for (int i = 0; i < 800 && port < 0; ++i) {
    std::smatch m;
    const std::string err = read_file(dir.path() + "/err");
    if (std::regex_search(err, m, re)) {
      port = std::stoi(m[1]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_GT(port, 0) << read_file(dir.path() + "/err");
  // The counter moves once the generator runs; poll until it does (the deadline bounds a hang).
  httplib::Client client("127.0.0.1", port);
  const std::regex sent(
      R"(webmon_component_sent_total\{component="gen",plugin="generator",kind="source"\} (\d+))");
  std::uint64_t seen = 0;
  for (int i = 0; i < 800 && seen == 0; ++i) {
    const auto res = client.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(res->body, m, sent)) << res->body;
    seen = std::stoull(m[1]);
    if (seen == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  EXPECT_GT(seen, 0U);
  child.signal(SIGINT);
  const auto code = child.wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace webmon::agent
