// Unit tests of the file sink with the SDK's test kit (built through the plugin's own factory):
// records written as JSON lines, append versus truncate, and bad options named with file:line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace sdk = webmon::sdk;
namespace wt = webmon::sdk::testing;

std::string error_of(std::initializer_list<std::pair<std::string, std::string>> c) {
  return wt::config_error(webmon_plugin_entry(), wt::config(c));
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Writes `n` records named t0, t1, … with a sink configured by `c`; returns how many Acks
/// were `delivered`.
int write_records(std::initializer_list<std::pair<std::string, std::string>> c, int n) {
  wt::FakeContext ctx;
  auto sink = wt::make_sink(webmon_plugin_entry(), wt::config(c), ctx);
  EXPECT_TRUE(sink->start(ctx));
  sdk::Batch batch;
  for (int i = 0; i < n; ++i) {
    sdk::Record r = sdk::make_record("probe");
    r.fields = {{"target", "t" + std::to_string(i)}, {"success", true}};
    batch.records.push_back(std::move(r));
  }
  wt::AckLog acks;
  EXPECT_TRUE(sink->write(batch, acks.make()));
  EXPECT_TRUE(acks.wait_total(1));
  EXPECT_TRUE(sink->flush(std::chrono::seconds(5)));
  return acks.count(sdk::AckStatus::delivered);
}

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("webmon-file-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "out.jsonl").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(FileSinkTest, WritesOneJsonLinePerRecordAndAppendsByDefault) {
  EXPECT_EQ(write_records({{"path", path_}}, 2), 1);
  EXPECT_EQ(write_records({{"path", path_}}, 1), 1);
  const std::string text = read_all(path_);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_NE(text.find("\"kind\":\"probe\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"target\":\"t1\""), std::string::npos) << text;
}

TEST_F(FileSinkTest, AppendFalseTruncatesAtStart) {
  EXPECT_EQ(write_records({{"path", path_}}, 2), 1);
  EXPECT_EQ(write_records({{"path", path_}, {"append", "false"}, {"fsync", "true"}}, 1), 1);
  const std::string text = read_all(path_);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

TEST(FileSinkOptions, RefusesBadValuesNamingThem) {
  EXPECT_EQ(error_of({{"path", ""}}),
            "test.yaml:2:3: option 'path' must not be empty (use - for standard output)");
  EXPECT_EQ(error_of({{"path", "-"}, {"append", "maybe"}}),
            "test.yaml:3:3: expected true or false, got 'maybe'");
  EXPECT_EQ(error_of({{"append", "true"}}), "test.yaml:1:1: missing required option 'path'");
}

}  // namespace
