// Every plugin's sample.yaml is a valid pipeline, and every option in its options table is
// documented in its README.md and shown in its sample.yaml (STYLE.md: declare options once).
#include <gtest/gtest.h>

#include <filesystem>

#include "pipeline_runner.hpp"
#include "plugin_loader.hpp"

namespace webmon {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> plugin_folders() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(WEBMON_SOURCE_DIR "/plugins")) {
    if (fs::exists(e.path() / "CMakeLists.txt") &&
        fs::exists(testing::plugin_dir() + "/" + e.path().filename().string() + ".so")) {
      out.push_back(e.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PluginDocs : public ::testing::TestWithParam<std::string> {};

TEST_P(PluginDocs, SampleValidatesAndDocsCoverEveryOption) {
  const std::string dir = std::string(WEBMON_SOURCE_DIR) + "/plugins/" + GetParam();
  const std::string sample = testing::read_file(dir + "/sample.yaml");
  const std::string readme = testing::read_file(dir + "/README.md");
  ASSERT_FALSE(sample.empty()) << dir << "/sample.yaml is missing";
  ASSERT_FALSE(readme.empty()) << dir << "/README.md is missing";
  EXPECT_EQ(testing::validate_pipeline(sample), "") << dir << "/sample.yaml";
  EXPECT_NE(sample.find("plugin: " + GetParam()), std::string::npos);

  const auto plugin = agent::load_plugin_file(testing::plugin_dir() + "/" + GetParam() + ".so");
  auto check = [&](auto&& self, const sdk::OptionSpec* opts, std::size_t n) -> void {
    for (std::size_t i = 0; i < n; ++i) {
      const std::string name = opts[i].name;
      EXPECT_NE(readme.find("`" + name + "`"), std::string::npos)
          << GetParam() << "/README.md does not document option `" << name << "`";
      EXPECT_NE(sample.find(name + ":"), std::string::npos)
          << GetParam() << "/sample.yaml does not show option " << name;
      if (opts[i].children != nullptr) {
        self(self, opts[i].children, opts[i].child_count);
      }
    }
  };
  check(check, plugin.descriptor->options, plugin.descriptor->option_count);
}

INSTANTIATE_TEST_SUITE_P(Plugins, PluginDocs, ::testing::ValuesIn(plugin_folders()),
                         [](const auto& tpi) { return tpi.param; });

}  // namespace
}  // namespace webmon
