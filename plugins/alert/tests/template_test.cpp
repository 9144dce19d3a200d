// The notifying sinks' templates and summaries (notify_common): placeholders, JSON escaping,
// errors with the position, the one-line summary of an alert.
#include "webmon/notify/template.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace webmon::notify {
namespace {

sdk::Record alert(const std::string& state) {
  sdk::Record r;
  r.kind = "alert";
  r.id = "0190a0b0-0000-7000-8000-000000000001";
  r.time = sdk::Timestamp{1'800'000'060'000'000};
  r.add("target", std::string("shop \"eu\""));
  r.add("check_kind", std::string("http_check"));
  r.add("state", state);
  r.add("incident_id", std::string("inc-1"));
  r.add("since", sdk::Timestamp{1'800'000'000'000'000});
  r.add("duration_ms", std::int64_t{60'000});
  r.add("consecutive_failures", std::int64_t{3});
  r.add("locations_failing", std::int64_t{2});
  r.add("last_error", std::string("http_status"));
  r.add("last_error_message", std::string("HTTP 503\nService Unavailable"));
  r.add("last_status_code", std::int64_t{503});
  r.labels["team"] = "web";
  return r;
}

const sdk::ConfigNode kWhere("x", {"pipeline.yaml", 7, 20});

TEST(Template, JsonEscapingKeepsTheBodyValidJson) {
  const Template t(R"({"text": "{{summary}}", "t": "{{target}}", "team": "{{labels.team}}",
                   "code": {{last_status_code}}, "alert": {{record}}})",
                   Escape::json, kWhere);
  const auto body = nlohmann::json::parse(t.render(alert("firing")));
  EXPECT_EQ(body["t"], "shop \"eu\"");
  EXPECT_EQ(body["team"], "web");
  EXPECT_EQ(body["code"], 503);
  EXPECT_EQ(body["alert"]["incident_id"], "inc-1");
  EXPECT_EQ(body["alert"]["since"], "2027-01-15T08:00:00.000000Z");
  EXPECT_EQ(body["text"],
            "[FIRING] shop \"eu\" (http_check): 3 consecutive failed checks from 2 locations, "
            "http_status 503: HTTP 503\nService Unavailable (down for 1m 0s)");
}

TEST(Template, AbsentValuesAreEmptyAndFieldPrefixReadsAnyField) {
  sdk::Record r = alert("resolved");
  r.add("custom", std::string("x"));
  const Template t("[{{field.custom}}][{{field.nothing}}][{{labels.none}}] {{summary}}",
                   Escape::none, kWhere);
  EXPECT_EQ(t.render(r), "[x][][] [RESOLVED] shop \"eu\" (http_check) after 1m 0s");
}

TEST(Template, UnknownPlaceholderIsAnErrorWithThePosition) {
  try {
    Template("{{summary}} {{nope}}", Escape::json, kWhere);
    FAIL() << "accepted";
  } catch (const sdk::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("pipeline.yaml:7:20: template: unknown placeholder "
                                          "'{{nope}}'",
                                          0),
              0U)
        << e.what();
  }
  EXPECT_THROW(Template("{{summary", Escape::json, kWhere), sdk::ConfigError);
  EXPECT_THROW(Template("{{}}", Escape::json, kWhere), sdk::ConfigError);
}

}  // namespace
}  // namespace webmon::notify
