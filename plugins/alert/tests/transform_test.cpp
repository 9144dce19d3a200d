// The alert plugin as the agent loads it (dlopen of alert.so) with the SDK's FakeContext:
// alert records and their fields, pass_through, label and per-target overrides, the state
// file across a restart, and configuration errors with file:line:column.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "webmon/sdk/sdk.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::plugins::alert {
namespace {

namespace st = sdk::testing;

const sdk::PluginDescriptor& descriptor() {
  static const sdk::PluginDescriptor* d = [] {
    void* h = ::dlopen(WEBMON_ALERT_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(h, nullptr) << ::dlerror();
    auto entry = reinterpret_cast<sdk::PluginEntry>(::dlsym(h, WEBMON_PLUGIN_ENTRY_NAME));
    return entry();
  }();
  return *d;
}

struct Deleter {
  void operator()(sdk::Transform* t) const { delete t; }
};
using TransformPtr = std::unique_ptr<sdk::Transform, Deleter>;

TransformPtr make(const sdk::ConfigNode& config, st::FakeContext& ctx,
                  std::string* error = nullptr) {
  sdk::Status status;
  sdk::Transform* t = descriptor().create_transform(config, ctx, status);
  if (error != nullptr) {
    *error = status.message();
  }
  return TransformPtr(t);
}

class TempPath {
 public:
  TempPath() {
    static int n = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("alert-transform-" + std::to_string(::getpid()) + "-" + std::to_string(++n)))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempPath() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

sdk::Record check(bool ok, std::int64_t minute, const std::string& target = "shop",
                  const std::string& agent = "eu") {
  sdk::Record r;
  r.kind = "http_check";
  r.id = "id-" + std::to_string(minute) + target + agent;
  r.time = sdk::Timestamp{1'800'000'000'000'000 + minute * 60'000'000};
  r.add("target", target);
  r.add("agent", agent);
  r.add("success", ok);
  r.add("status_code", ok ? sdk::Value(std::int64_t{200}) : sdk::Value(std::int64_t{503}));
  r.add("error", ok ? sdk::Value() : sdk::Value(std::string("http_status")));
  r.add("error_message", ok ? sdk::Value() : sdk::Value(std::string("HTTP 503")));
  r.labels["team"] = "web";
  return r;
}

std::vector<sdk::Record> alerts_of(const std::vector<sdk::Record>& records) {
  std::vector<sdk::Record> out;
  for (const auto& r : records) {
    if (r.kind == "alert") {
      out.push_back(r);
    }
  }
  return out;
}

TEST(Transform, DeclaresRequiredFieldsAndTheAlertKind) {
  const auto& d = descriptor();
  ASSERT_EQ(d.requires_count, 2U);
  EXPECT_STREQ(d.requires_fields[0].name, "success");
  EXPECT_EQ(d.requires_fields[0].type, sdk::FieldType::boolean);
  EXPECT_STREQ(d.requires_fields[1].name, "target");
  ASSERT_EQ(d.emit_count, 1U);
  EXPECT_STREQ(d.emits[0].name, "alert");
  EXPECT_STREQ(d.emits[0].key_field, "target");
}

TEST(Transform, EmitsAlertRecordsWithEveryField) {
  TempPath dir;
  st::FakeContext ctx("alerts", "central");
  auto t = make(st::config({{"state_file", dir.file("s.json")}}), ctx);
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->start(ctx));
  std::vector<sdk::Record> seen;
  for (int m = 0; m < 3; ++m) {
    auto out = st::run_transform(*t, {check(false, m)});
    seen.insert(seen.end(), out.begin(), out.end());
  }
  ASSERT_EQ(seen.size(), 4U) << "3 checks passed through + 1 alert";
  const auto alerts = alerts_of(seen);
  ASSERT_EQ(alerts.size(), 1U);
  const sdk::Record& a = alerts[0];
  EXPECT_EQ(*a.get<std::string>("target"), "shop");
  EXPECT_EQ(*a.get<std::string>("check_kind"), "http_check");
  EXPECT_EQ(*a.get<std::string>("state"), "firing");
  EXPECT_EQ(a.get<std::string>("incident_id")->size(), 36U);
  EXPECT_EQ(a.get<sdk::Timestamp>("since")->micros, 1'800'000'000'000'000);
  EXPECT_EQ(*a.get<std::int64_t>("duration_ms"), 120'000);
  EXPECT_EQ(*a.get<std::int64_t>("consecutive_failures"), 3);
  EXPECT_EQ(*a.get<std::int64_t>("locations_failing"), 1);
  EXPECT_EQ(*a.get<std::string>("last_error"), "http_status");
  EXPECT_EQ(*a.get<std::string>("last_error_message"), "HTTP 503");
  EXPECT_EQ(*a.get<std::int64_t>("last_status_code"), 503);
  EXPECT_EQ(*a.get<std::string>("agent"), "central");
  EXPECT_EQ(a.labels.at("team"), "web");
  EXPECT_EQ(a.time.micros, 1'800'000'000'000'000 + 2 * 60'000'000);
  EXPECT_EQ(ctx.count("alerts_firing"), 1U);
}

// Without `state_file`, the state lives in the agent's state directory (Context::state_dir(),
// ABI 1.2), which is created when missing, named after the component.
TEST(Transform, StateFileDefaultsToTheAgentsStateDirectory) {
  TempPath dir;
  st::FakeContext ctx("pager", "central");
  ctx.set_state_dir(dir.file("state/nested"));
  auto t = make(sdk::ConfigNode::make_map({"test.yaml", 1, 1}), ctx);
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->start(ctx));
  for (int m = 0; m < 3; ++m) {
    (void)st::run_transform(*t, {check(false, m)});
  }
  const std::string expected = dir.file("state/nested/alert-pager.json");
  ASSERT_TRUE(std::filesystem::exists(expected));
  std::ifstream in(expected);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"shop\""), std::string::npos) << text;
}

TEST(Transform, PassThroughFalseLeavesOnlyAlertsAndOtherKinds) {
  TempPath dir;
  st::FakeContext ctx;
  auto t = make(st::config({{"state_file", dir.file("s.json")},
                            {"pass_through", "false"},
                            {"failure_threshold", "1"}}),
                ctx);
  ASSERT_TRUE(t->start(ctx));
  sdk::Record other;
  other.kind = "note";
  auto out = st::run_transform(*t, {check(true, 0), other, check(false, 1)});
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].kind, "note");
  EXPECT_EQ(out[1].kind, "alert");
}

TEST(Transform, LabelAndPerTargetOverrides) {
  TempPath dir;
  st::FakeContext ctx;
  sdk::ConfigNode cfg = st::config({{"state_file", dir.file("s.json")}});
  sdk::ConfigNode list = sdk::ConfigNode::make_list({"pipeline.yaml", 9, 5});
  sdk::ConfigNode item = sdk::ConfigNode::make_map({"pipeline.yaml", 9, 7});
  item.set("target", sdk::ConfigNode("api"));
  item.set("failure_threshold", sdk::ConfigNode("1"));
  list.push_back(item);
  cfg.set("overrides", list);
  auto t = make(cfg, ctx);
  ASSERT_TRUE(t->start(ctx));
  EXPECT_EQ(alerts_of(st::run_transform(*t, {check(false, 0, "api")})).size(), 1U);
  auto labelled = check(false, 0, "web");
  labelled.labels["alert_failure_threshold"] = "2";
  EXPECT_TRUE(alerts_of(st::run_transform(*t, {labelled})).empty());
  labelled.time.micros += 60'000'000;
  EXPECT_EQ(alerts_of(st::run_transform(*t, {labelled})).size(), 1U);
  auto bad = check(false, 0, "odd");
  bad.labels["alert_failure_threshold"] = "zero";
  st::run_transform(*t, {bad});
  EXPECT_NE(ctx.all_logs().find("alert_failure_threshold='zero'"), std::string::npos);
}

TEST(Transform, RestartKeepsTheIncident) {
  TempPath dir;
  const auto cfg = st::config({{"state_file", dir.file("s.json")}});
  std::string incident;
  {
    st::FakeContext ctx;
    auto t = make(cfg, ctx);
    ASSERT_TRUE(t->start(ctx));
    for (int m = 0; m < 4; ++m) {
      for (auto& a : alerts_of(st::run_transform(*t, {check(false, m)}))) {
        incident = *a.get<std::string>("incident_id");
      }
    }
    // No stop(): the firing decision was saved when it was made (as after a crash).
  }
  ASSERT_FALSE(incident.empty());
  st::FakeContext ctx;
  auto t = make(cfg, ctx);
  ASSERT_TRUE(t->start(ctx));
  std::vector<sdk::Record> alerts;
  for (int m = 4; m < 8; ++m) {
    auto a = alerts_of(st::run_transform(*t, {check(m >= 6, m)}));
    alerts.insert(alerts.end(), a.begin(), a.end());
  }
  ASSERT_EQ(alerts.size(), 1U);
  EXPECT_EQ(*alerts[0].get<std::string>("state"), "resolved");
  EXPECT_EQ(*alerts[0].get<std::string>("incident_id"), incident);
}

TEST(Transform, UnwritableStateFileRefusesTheStartNamingTheOption) {
  st::FakeContext ctx;
  // Under a file, not a directory: unwritable even for root (a missing directory is created).
  auto t = make(st::config({{"state_file", "/dev/null/alert.json"}}), ctx);
  ASSERT_TRUE(t);
  const auto s = t->start(ctx);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("option 'state_file'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("/dev/null/alert.json"), std::string::npos) << s.message();
}

TEST(Transform, SilenceWindowThatDoesNotParseIsAConfigErrorWithPosition) {
  st::FakeContext ctx;
  sdk::ConfigNode cfg = st::config({{"state_file", "/tmp/x.json"}});
  sdk::ConfigNode list = sdk::ConfigNode::make_list({"pipeline.yaml", 12, 5});
  sdk::ConfigNode item = sdk::ConfigNode::make_map({"pipeline.yaml", 12, 7});
  item.set("start", sdk::ConfigNode("2026-12-24T18:00:00Z", {"pipeline.yaml", 12, 14}));
  item.set("end", sdk::ConfigNode("christmas", {"pipeline.yaml", 13, 14}));
  list.push_back(item);
  cfg.set("silences", list);
  std::string error;
  EXPECT_FALSE(make(cfg, ctx, &error));
  EXPECT_EQ(error,
            "pipeline.yaml:13:14: silence 'end': 'christmas' is not an RFC 3339 time; write e.g. "
            "2026-12-24T18:00:00Z");
}

TEST(Transform, ThresholdOfZeroIsRefused) {
  st::FakeContext ctx;
  std::string error;
  EXPECT_FALSE(make(st::config({{"failure_threshold", "0"}}), ctx, &error));
  EXPECT_NE(error.find("option 'failure_threshold' must be at least 1"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace webmon::plugins::alert
