// Unit tests of the field_filter example with the SDK's test kit (no agent).
#include <gtest/gtest.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace sdk = webmon::sdk;
namespace wt = webmon::sdk::testing;

std::vector<sdk::Record> records() {
  std::vector<sdk::Record> out;
  for (int i = 0; i < 6; ++i) {
    sdk::Record r = sdk::make_record("http_check");
    r.add("success", i % 3 != 0);
    r.add("status_code", std::int64_t{i % 3 != 0 ? 200 : 500});
    out.push_back(std::move(r));
  }
  return out;
}

TEST(FieldFilter, DropsMatchingRecords) {
  wt::FakeContext ctx;
  auto t = wt::make_transform(
      webmon_plugin_entry(),
      wt::config({{"field", "success"}, {"equals", "false"}, {"action", "drop"}}), ctx);
  ASSERT_TRUE(t->start(ctx));
  const auto out = wt::run_transform(*t, records());
  ASSERT_EQ(out.size(), 4U);
  for (const auto& r : out) {
    EXPECT_TRUE(*r.get<bool>("success"));
    EXPECT_TRUE(r.labels.empty());
  }
  EXPECT_EQ(ctx.count("matched"), 2U);
}

TEST(FieldFilter, TagsMatchingRecordsByDefault) {
  wt::FakeContext ctx;
  auto t = wt::make_transform(
      webmon_plugin_entry(),
      wt::config({{"field", "status_code"}, {"equals", "500"}, {"label", "server_error"}}), ctx);
  ASSERT_TRUE(t->start(ctx));
  const auto out = wt::run_transform(*t, records());
  ASSERT_EQ(out.size(), 6U);
  int tagged = 0;
  for (const auto& r : out) {
    const bool is500 = *r.get<std::int64_t>("status_code") == 500;
    EXPECT_EQ(r.labels.count("server_error"), is500 ? 1U : 0U);
    tagged += is500 ? 1 : 0;
  }
  EXPECT_EQ(tagged, 2);
  EXPECT_EQ(ctx.count("matched"), 2U);
}

TEST(FieldFilter, RefusesAnUnknownAction) {
  wt::FakeContext ctx;
  try {
    (void)wt::make_transform(
        webmon_plugin_entry(),
        wt::config({{"field", "success"}, {"equals", "false"}, {"action", "explode"}}), ctx);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(),
                 "test.yaml:4:3: option 'action' must be one of 'tag', 'drop', got 'explode'");
  }
}

}  // namespace
