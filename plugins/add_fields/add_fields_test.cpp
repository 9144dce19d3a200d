// Unit tests of the add_fields transform with the SDK's test kit (built through the plugin's
// own factory): labels added, overwrite or keep, and bad options named with file:line.
#include <gtest/gtest.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace sdk = webmon::sdk;
namespace wt = webmon::sdk::testing;

/// A config with `fields: {region: eu-west, team: <team>}` at test.yaml:5 and the scalars `c`.
sdk::ConfigNode config_with_fields(std::initializer_list<std::pair<std::string, std::string>> c,
                                   const std::string& team = "web") {
  sdk::ConfigNode config = wt::config(c);
  sdk::ConfigNode fields = sdk::ConfigNode::make_map({"test.yaml", 5, 3});
  fields.set("region", sdk::ConfigNode("eu-west", {"test.yaml", 6, 13}));
  fields.set(team, sdk::ConfigNode("web", {"test.yaml", 7, 13}));
  config.set("fields", std::move(fields));
  return config;
}

std::vector<sdk::Record> run(const sdk::ConfigNode& config) {
  wt::FakeContext ctx;
  auto t = wt::make_transform(webmon_plugin_entry(), config, ctx);
  EXPECT_TRUE(t->start(ctx));
  sdk::Record r = sdk::make_record("probe");
  r.labels = {{"region", "us-east"}, {"host", "a"}};
  sdk::Status status;
  auto out = wt::run_transform(*t, {std::move(r)}, &status);
  EXPECT_TRUE(status) << status.message();
  return out;
}

TEST(AddFields, AddsLabelsAndOverwritesByDefault) {
  const auto out = run(config_with_fields({}, "team"));
  ASSERT_EQ(out.size(), 1U);
  const sdk::Labels want = {{"region", "eu-west"}, {"team", "web"}, {"host", "a"}};
  EXPECT_EQ(out[0].labels, want);
}

TEST(AddFields, OverwriteFalseKeepsTheRecordsValue) {
  const auto out = run(config_with_fields({{"overwrite", "false"}}, "team"));
  ASSERT_EQ(out.size(), 1U);
  const sdk::Labels want = {{"region", "us-east"}, {"team", "web"}, {"host", "a"}};
  EXPECT_EQ(out[0].labels, want);
}

TEST(AddFields, RefusesBadOptionsNamingThem) {
  auto error = [](const sdk::ConfigNode& config) {
    wt::FakeContext ctx;
    try {
      (void)wt::make_transform(webmon_plugin_entry(), config, ctx);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(config_with_fields({}, "")),
            "test.yaml:5:3: option 'fields': label names must not be empty");
  EXPECT_EQ(error(config_with_fields({{"overwrite", "sometimes"}})),
            "test.yaml:2:3: expected true or false, got 'sometimes'");
  EXPECT_EQ(error(wt::config({{"overwrite", "true"}})),
            "test.yaml:1:1: missing required option 'fields'");
}

}  // namespace
