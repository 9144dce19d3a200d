// Plugin refusals: every broken shared object is refused with a one-line reason naming the
// file, before any of its code other than the entry point runs.
#include "plugin_loader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <filesystem>

#include "pipeline_runner.hpp"

namespace webmon::agent {
namespace {

const std::string kBroken = WEBMON_TEST_BROKEN_PLUGIN_DIR;

std::string refusal(const std::string& path) {
  try {
    (void)load_plugin_file(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

TEST(PluginLoader, LoadsBuiltInPlugin) {
  const LoadedPlugin p = load_plugin_file(testing::plugin_dir() + "/generator.so");
  EXPECT_STREQ(p.descriptor->name, "generator");
  EXPECT_EQ(p.descriptor->kind, sdk::PluginKind::source);
  EXPECT_EQ(p.descriptor->abi_major, sdk::kAbiMajor);
  EXPECT_STREQ(p.descriptor->build_key, sdk::kBuildKey);
  EXPECT_GT(p.descriptor->option_count, 0U);
}

TEST(PluginLoader, RefusesFileThatIsNotASharedObject) {
  testing::TempDir dir;
  const std::string path = dir.write("fake.so", "this is text, not ELF\n");
  EXPECT_EQ(refusal(path), path + ": not a shared object (no ELF header)");
}

TEST(PluginLoader, RefusesTruncatedElf) {
  testing::TempDir dir;
  const std::string path = dir.write("trunc.so", std::string("\x7f"
                                                             "ELF\x02\x01\x01",
                                                             7));
  const std::string msg = refusal(path);
  EXPECT_EQ(msg.rfind(path + ": not a loadable shared object (", 0), 0U) << msg;
}

TEST(PluginLoader, RefusesMissingEntryPoint) {
  const std::string path = kBroken + "/no_entry.so";
  EXPECT_EQ(refusal(path),
            path +
                ": not a webmon plugin (no 'webmon_plugin_entry' entry point; plugins export "
                "one with WEBMON_PLUGIN_SOURCE/TRANSFORM/SINK)");
}

TEST(PluginLoader, RefusesAbiMajorMismatch) {
  const std::string path = kBroken + "/abi_mismatch.so";
  EXPECT_EQ(refusal(path), path + ": built for webmon SDK ABI 99.0, but this agent provides ABI " +
                               std::to_string(sdk::kAbiMajor) + "." +
                               std::to_string(sdk::kAbiMinor) +
                               " (rebuild the plugin against this agent's SDK)");
}

TEST(PluginLoader, RefusesBuildKeyMismatch) {
  const std::string path = kBroken + "/build_key_mismatch.so";
  EXPECT_EQ(refusal(path),
            path + ": built with C++ build key 'libc++-ptr4', but this agent's is '" +
                sdk::kBuildKey + "' (standard library or its ABI differs; rebuild the plugin)");
}

// An invalid kind declaration refuses the plugin at load, naming the file, the kind and the
// field (the plugin's constructor aborts: it never runs).
TEST(PluginLoader, RefusesAnInvalidKindDeclarationNamingTheField) {
  const std::string twice = kBroken + "/bad_kind_twice.so";
  EXPECT_EQ(refusal(twice), twice +
                                ": plugin 'bad_kind' declares an invalid record kind: kind "
                                "'bad_probe', field 3 'target': declared twice");
  const std::string reserved = kBroken + "/bad_kind_reserved.so";
  EXPECT_EQ(refusal(reserved),
            reserved +
                ": plugin 'bad_kind' declares an invalid record kind: kind 'bad_probe', field 2 "
                "'kind_hash': 'kind_hash' is reserved for the wire format's envelope");
  const std::string identifier = kBroken + "/bad_kind_identifier.so";
  EXPECT_EQ(refusal(identifier),
            identifier +
                ": plugin 'bad_kind' declares an invalid record kind: kind 'bad_probe', field 2 "
                "'Connect-Time': not a valid field name (use [a-z][a-z0-9_]*, at most 63 "
                "characters)");
}

TEST(PluginLoader, RefusesPluginsOfThePre10SdkWithoutLoadingThem) {
  // The file's constructor aborts: reaching the message proves it was never loaded.
  const std::string path = kBroken + "/pre_1_0.so";
  EXPECT_EQ(refusal(path), path +
                               ": not a webmon plugin (no 'webmon_plugin_abi_stamp' ABI "
                               "stamp: built against a webmon SDK older than 1.0; rebuild it)");
}

TEST(PluginLoader, RefusesFilesOthersCanWrite) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/generator.so";
  std::filesystem::copy_file(testing::plugin_dir() + "/generator.so", path);
  std::filesystem::permissions(path, std::filesystem::perms::others_write,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(refusal(path), path + ": refused: plugin file " + path +
                               " is writable by group or others (chmod go-w it)");
  std::filesystem::permissions(path, std::filesystem::perms::others_write,
                               std::filesystem::perm_options::remove);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::group_write,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(refusal(path), path + ": refused: directory " + dir.path() +
                               " is writable by group or others (chmod go-w it)");
}

TEST(PluginLoader, PluginIsANameNeverAPath) {
  for (const std::string bad : {"/tmp/evil", "../../x", "./generator"}) {
    const std::string msg = testing::validate_pipeline("sources:\n  gen:\n    plugin: '" + bad +
                                                       "'\nsinks:\n  out:\n    plugin: blackhole\n"
                                                       "    inputs: [gen]\n");
    EXPECT_NE(msg.find("pipeline.yaml:3:13: source 'gen': '" + bad +
                       "' is not a plugin name: 'plugin:' takes a name such as http_check, "
                       "never a path"),
              std::string::npos)
        << msg;
  }
}

TEST(PluginLoader, RefusesMissingFile) {
  EXPECT_EQ(refusal("/nonexistent/x.so"), "/nonexistent/x.so: no such file");
}

TEST(PluginLoader, PipelineNamesTheRefusedPlugin) {
  const std::string msg = testing::validate_pipeline(
      "sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n    plugin: abi_mismatch\n"
      "    inputs: [gen]\n",
      {kBroken});
  EXPECT_EQ(msg, "pipeline.yaml:6:13: sink 'out': " + kBroken +
                     "/abi_mismatch.so: built for webmon SDK ABI 99.0, but this agent provides "
                     "ABI " +
                     std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor) +
                     " (rebuild the plugin against this agent's SDK)");
}

TEST(PluginLoader, SearchPathOrderFirstMatchWins) {
  ::setenv("WEBMON_PLUGIN_PATH", "/env/a:/env/b", 1);
  const auto path = plugin_search_path({"/cli"}, {"/conf"});
  ::unsetenv("WEBMON_PLUGIN_PATH");
  ASSERT_EQ(path.size(), 5U);
  EXPECT_EQ(path[0], "/cli");
  EXPECT_EQ(path[1], "/conf");
  EXPECT_EQ(path[2], "/env/a");
  EXPECT_EQ(path[3], "/env/b");
  EXPECT_EQ(path[4], builtin_plugin_dir());
}

TEST(PluginLoader, DiscoverReportsRefusals) {
  std::vector<std::string> errors;
  const auto found = discover_plugins({kBroken, testing::plugin_dir()}, errors);
  std::vector<std::string> names;
  for (const auto& p : found) {
    names.emplace_back(p.descriptor->name);
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "generator"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "throwing"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "abi_mismatch"), names.end());
  // abi_mismatch, build_key_mismatch, no_entry, pre_1_0 and the three bad_kind_*
  EXPECT_EQ(errors.size(), 7U);
}

TEST(PluginLoader, ExceptionsInPluginsNeverReachTheHost) {
  // Thrown from the constructor: a configuration error naming the component.
  EXPECT_EQ(testing::validate_pipeline("sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n"
                                       "    plugin: throwing\n    inputs: [gen]\n"
                                       "    throw_in: constructor\n",
                                       {kBroken}),
            "pipeline.yaml:6:5: sink 'out' (throwing): thrown from the constructor");
  // Thrown from on_start: the run fails with exit code 1.
  testing::RunOptions opts;
  opts.plugin_dirs = {kBroken};
  auto start = testing::run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 10\nsinks:\n  out:\n"
      "    plugin: throwing\n    inputs: [gen]\n    throw_in: start\n",
      opts);
  EXPECT_EQ(start.exit_code, 1);
  // Thrown from on_write: every batch counts as an error, the source sees 'retryable'.
  auto write = testing::run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 10\n    batch_size: 5\nsinks:\n"
      "  out:\n    plugin: throwing\n    inputs: [gen]\n    retry: { max_retries: 0 }\n",
      opts);
  EXPECT_EQ(write.exit_code, 0);
  EXPECT_EQ(write.counter("gen", "acked_retryable"), 2U);
  EXPECT_EQ(write.counter("out", "errors"), 10U);  // records not delivered
}

}  // namespace
}  // namespace webmon::agent
