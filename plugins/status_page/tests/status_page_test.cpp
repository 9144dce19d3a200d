// Unit tests of the status page's core classes: uptime and bucket math, states, the
// sparkline ring, escaping and credentials, grouping, JSON, snapshots (round trip, damage,
// restart) and the HTTP service (served pages, a port in use).
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "model.hpp"
#include "render.hpp"
#include "service.hpp"
#include "snapshot.hpp"

namespace webmon::plugins::status_page {
namespace {

namespace fs = std::filesystem;

// 2026-12-02T10:30:00Z
constexpr std::int64_t kNow = 1'796'207'400'000'000LL;
constexpr std::int64_t kMinute = 60'000'000LL;

Check check(std::string_view target, std::int64_t time_us, bool ok, double ms = 10) {
  Check c;
  c.target = target;
  c.time_us = time_us;
  c.success = ok;
  c.response_time_ms = ms;
  if (!ok) {
    c.error = "http_status";
    c.error_message = "HTTP 500";
    c.status_code = 500;
  } else {
    c.status_code = 200;
  }
  return c;
}

const TargetView& find(const std::vector<TargetView>& views, std::string_view name) {
  for (const auto& v : views) {
    if (v.name == name) {
      return v;
    }
  }
  throw std::runtime_error("no target " + std::string(name));
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/status_page_test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(Model, UptimeCountsWholeHoursOverOneAndSevenDays) {
  StatusModel m(ModelOptions{});
  // Now: 3 ok + 1 failed in the current hour; 2 hours ago 4 ok; 2 days ago 2 failed;
  // 8 days ago 5 failed (beyond 7 days: not counted anywhere).
  for (int i = 0; i < 3; ++i) {
    m.apply(check("a", kNow - i * kMinute, true));
  }
  m.apply(check("a", kNow - 5 * kMinute, false));
  for (int i = 0; i < 4; ++i) {
    m.apply(check("a", kNow - 2 * kHourMicros + i, true));
  }
  m.apply(check("a", kNow - 2 * kDayMicros, false));
  m.apply(check("a", kNow - 2 * kDayMicros + 1, false));
  for (int i = 0; i < 5; ++i) {
    m.apply(check("a", kNow - 8 * kDayMicros + i, false));
  }
  const auto v = find(m.view(kNow), "a");
  ASSERT_TRUE(v.uptime_24h);
  EXPECT_DOUBLE_EQ(*v.uptime_24h, 100.0 * 7 / 8);
  ASSERT_TRUE(v.uptime_7d);
  EXPECT_DOUBLE_EQ(*v.uptime_7d, 100.0 * 7 / 10);
  // Bar: one mark per hour, oldest first; the current hour is the last.
  ASSERT_EQ(v.bar.size(), 24U);
  ASSERT_TRUE(v.bar[23]);
  EXPECT_DOUBLE_EQ(*v.bar[23], 75.0);
  EXPECT_FALSE(v.bar[22]);
  ASSERT_TRUE(v.bar[21]);
  EXPECT_DOUBLE_EQ(*v.bar[21], 100.0);
}

TEST(Model, NoChecksInWindowMeansNoUptime) {
  StatusModel m(ModelOptions{});
  m.apply(check("a", kNow - 3 * kDayMicros, true));
  const auto v = find(m.view(kNow), "a");
  EXPECT_FALSE(v.uptime_24h);
  ASSERT_TRUE(v.uptime_7d);
  EXPECT_DOUBLE_EQ(*v.uptime_7d, 100.0);
}

TEST(Model, BucketSlotIsReusedAfterSevenDays) {
  StatusModel m(ModelOptions{});
  m.apply(check("a", kNow - 7 * kDayMicros, false));  // same slot as now
  m.apply(check("a", kNow, true));
  // The old check would now land in an overwritten slot: it is not counted.
  m.apply(check("a", kNow - 7 * kDayMicros + 1, false));
  const auto v = find(m.view(kNow), "a");
  EXPECT_DOUBLE_EQ(*v.uptime_7d, 100.0);
}

TEST(Model, OlderCheckDoesNotChangeTheLatestState) {
  StatusModel m(ModelOptions{});
  m.apply(check("a", kNow, true, 12));
  m.apply(check("a", kNow - kMinute, false, 99));
  const auto v = find(m.view(kNow), "a");
  EXPECT_EQ(v.state, State::up);
  EXPECT_EQ(v.last_time_us, kNow);
  EXPECT_DOUBLE_EQ(v.last_ms, 12);
  EXPECT_EQ(v.last_error, "http_status");  // the failure is still the last error
  EXPECT_EQ(v.last_error_time_us, kNow - kMinute);
  EXPECT_DOUBLE_EQ(*v.uptime_24h, 50.0);
}

TEST(Model, StatesUpDownFlappingStale) {
  ModelOptions o;
  o.stale_after_us = 10 * kMinute;
  StatusModel m(o);
  m.apply(check("up", kNow, true));
  m.apply(check("down", kNow - kMinute, true));
  m.apply(check("down", kNow, false));
  for (int i = 0; i < 6; ++i) {
    m.apply(check("flap", kNow - (6 - i) * kMinute, i % 2 == 0));
  }
  m.apply(check("stale", kNow - 11 * kMinute, true));
  const auto views = m.view(kNow);
  EXPECT_EQ(find(views, "up").state, State::up);
  EXPECT_EQ(find(views, "down").state, State::down);
  EXPECT_EQ(find(views, "flap").state, State::flapping);
  EXPECT_EQ(find(views, "stale").state, State::stale);
  // One blip (two changes) is not flapping.
  m.apply(check("blip", kNow - 2 * kMinute, true));
  m.apply(check("blip", kNow - kMinute, false));
  m.apply(check("blip", kNow, true));
  EXPECT_EQ(find(m.view(kNow), "blip").state, State::up);
}

TEST(Model, SparklineKeepsTheLastSamplesInOrder) {
  ModelOptions o;
  o.sample_capacity = 5;
  StatusModel m(o);
  for (int i = 0; i < 12; ++i) {
    m.apply(check("a", kNow - (12 - i) * kMinute, true, i));
  }
  const auto v = find(m.view(kNow), "a");
  ASSERT_EQ(v.samples.size(), 5U);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FLOAT_EQ(v.samples[static_cast<std::size_t>(i)].ms, static_cast<float>(7 + i));
  }
}

TEST(Model, CertificateDaysLeft) {
  StatusModel m(ModelOptions{});
  Check c = check("a", kNow, true);
  c.cert_not_after_us = kNow + 9 * kDayMicros + kHourMicros;
  m.apply(c);
  Check e = check("b", kNow, true);
  e.cert_not_after_us = kNow - kHourMicros;
  m.apply(e);
  const auto views = m.view(kNow);
  EXPECT_EQ(find(views, "a").cert_days_left, 9);
  EXPECT_EQ(find(views, "b").cert_days_left, -1);
  EXPECT_FALSE(find(views, "a").last_error_time_us);
}

TEST(Model, TargetsAreBounded) {
  ModelOptions o;
  o.max_targets = 2;
  StatusModel m(o);
  EXPECT_EQ(m.apply(check("a", kNow, true)), Applied::new_target);
  EXPECT_EQ(m.apply(check("b", kNow, true)), Applied::new_target);
  EXPECT_EQ(m.apply(check("c", kNow, true)), Applied::too_many_targets);
  EXPECT_EQ(m.apply(check("a", kNow, true)), Applied::applied);
  EXPECT_EQ(m.size(), 2U);
}

TEST(Model, LongErrorMessagesAreCut) {
  ModelOptions o;
  o.max_error_chars = 10;
  StatusModel m(o);
  Check c = check("a", kNow, false);
  const std::string long_message(1000, 'x');
  c.error_message = long_message;
  m.apply(c);
  EXPECT_EQ(find(m.view(kNow), "a").last_error_message, "xxxxxxxxxx…");
}

TEST(Credentials, StrippedFromUrlsAndText) {
  EXPECT_EQ(strip_credentials("https://user:secret@example.com/x?y=1"),
            "https://example.com/x?y=1");
  EXPECT_EQ(strip_credentials("http://token@host:8080"), "http://host:8080");
  EXPECT_EQ(strip_credentials("https://example.com/a@b"), "https://example.com/a@b");
  EXPECT_EQ(strip_credentials("failed to connect to https://u:p@h.example/ and http://x@y/"),
            "failed to connect to https://h.example/ and http://y/");
  EXPECT_EQ(strip_credentials("no url"), "no url");
}

TEST(Render, EscapesNamesUrlsAndErrorsAndHidesCredentials) {
  StatusModel m(ModelOptions{});
  Check c = check("<script>alert(1)</script>", kNow, false);
  c.url = "https://admin:hunter2@example.com/?q=<b>&x=\"1\"";
  c.error = "other";
  c.error_message = "bad <img src=x onerror=alert(2)> at https://admin:hunter2@example.com/";
  m.apply(c);
  PageOptions p;
  p.title = "Ops & <Co>";
  const std::string html = render_html(group_targets(m.view(kNow), p), kNow, p);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("hunter2"), std::string::npos);
  EXPECT_EQ(html.find("admin"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("https://example.com/?q=&lt;b&gt;&amp;x=&quot;1&quot;"), std::string::npos);
  EXPECT_NE(html.find("bad &lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(html.find("<title>Ops &amp; &lt;Co&gt;</title>"), std::string::npos);
  const std::string json = render_json(group_targets(m.view(kNow), p), kNow, p);
  EXPECT_EQ(json.find("hunter2"), std::string::npos);
  EXPECT_EQ(json.find("<"), std::string::npos);  // escaped as \u003c
  const auto doc = nlohmann::json::parse(json);
  EXPECT_EQ(doc["groups"][0]["targets"][0]["name"], "<script>alert(1)</script>");
}

TEST(Render, PageHasNoScriptsAndNoExternalReferences) {
  StatusModel m(ModelOptions{});
  for (int i = 0; i < 30; ++i) {
    m.apply(check("a", kNow - (30 - i) * kMinute, i % 7 != 0, 10 + i));
  }
  PageOptions p;
  const std::string html = render_html(group_targets(m.view(kNow), p), kNow, p);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"spark\""), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"bar\""), std::string::npos);
  EXPECT_NE(html.find("<path class=\"f\""), std::string::npos);  // failed checks marked
}

TEST(Render, GroupsFollowTheConfiguredOrder) {
  StatusModel m(ModelOptions{});
  auto add = [&](std::string_view name, std::string_view group) {
    Check c = check(name, kNow, true);
    c.group = group;
    m.apply(c);
  };
  add("z", "web");
  add("y", "api");
  add("x", "db");
  add("w", "");
  add("v", "web");
  PageOptions p;
  p.grouped = true;
  p.groups = {"web", "missing"};
  const auto groups = group_targets(m.view(kNow), p);
  ASSERT_EQ(groups.size(), 4U);
  EXPECT_EQ(groups[0].name, "web");
  ASSERT_EQ(groups[0].targets.size(), 2U);
  EXPECT_EQ(groups[0].targets[0].name, "v");  // by name within a group
  EXPECT_EQ(groups[1].name, "api");
  EXPECT_EQ(groups[2].name, "db");
  EXPECT_EQ(groups[3].name, "Other");
  const std::string html = render_html(groups, kNow, p);
  EXPECT_LT(html.find("<h2>web</h2>"), html.find("<h2>api</h2>"));
  EXPECT_LT(html.find("<h2>db</h2>"), html.find("<h2>Other</h2>"));
}

TEST(Render, JsonHasTheSameDataAsThePage) {
  StatusModel m(ModelOptions{});
  Check c = check("svc", kNow, false, 42.5);
  c.url = "https://svc.example/";
  c.cert_not_after_us = kNow + 3 * kDayMicros;
  m.apply(check("svc", kNow - kMinute, true, 20));
  m.apply(c);
  PageOptions p;
  p.title = "T";
  const auto groups = group_targets(m.view(kNow), p);
  const auto doc = nlohmann::json::parse(render_json(groups, kNow, p));
  EXPECT_EQ(doc["title"], "T");
  const auto& t = doc["groups"][0]["targets"][0];
  EXPECT_EQ(t["name"], "svc");
  EXPECT_EQ(t["url"], "https://svc.example/");
  EXPECT_EQ(t["state"], "down");
  EXPECT_EQ(t["status_code"], 500);
  EXPECT_DOUBLE_EQ(t["response_time_ms"].get<double>(), 42.5);
  EXPECT_DOUBLE_EQ(t["uptime_24h_pct"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(t["uptime_7d_pct"].get<double>(), 50.0);
  EXPECT_EQ(t["last_error"]["error"], "http_status");
  EXPECT_EQ(t["last_error"]["message"], "HTTP 500");
  EXPECT_EQ(t["last_error"]["time_us"], kNow);
  EXPECT_EQ(t["cert_days_left"], 3);
  EXPECT_EQ(t["response_times_ms"].size(), 2U);
  EXPECT_EQ(t["hourly_uptime_pct"].size(), 24U);
  const std::string html = render_html(groups, kNow, p);
  EXPECT_NE(html.find("data-state=\"down\""), std::string::npos);
  EXPECT_NE(html.find("<td class=\"uptime-24h\">50.00%</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"cert warn\">3 days</td>"), std::string::npos);
}

TEST(Render, UptimeIsNeverRoundedUpTo100) {
  StatusModel m(ModelOptions{});
  for (int i = 0; i < 100'000; ++i) {
    m.apply(check("a", kNow - i, i != 5));
  }
  PageOptions p;
  const std::string html = render_html(group_targets(m.view(kNow), p), kNow, p);
  EXPECT_NE(html.find("<td class=\"uptime-24h\">99.99%</td>"), std::string::npos);
}

TEST(Render, JsonReplacesInvalidUtf8) {
  std::string out;
  append_json_escaped(out, std::string("ok \xff \xc3\xa9 \x01", 9));
  EXPECT_EQ(out, "ok \\ufffd \xc3\xa9 \\u0001");
}

TEST(Snapshot, RoundTripKeepsEveryTarget) {
  StatusModel a(ModelOptions{});
  for (int i = 0; i < 50; ++i) {
    Check c = check(i % 2 == 0 ? "even" : "odd", kNow - i * 13 * kMinute, i % 5 != 0, i);
    c.url = "https://x.example/";
    c.group = "g";
    c.cert_not_after_us = kNow + 30 * kDayMicros;
    a.apply(c);
  }
  StatusModel b(ModelOptions{});
  EXPECT_EQ(decode_snapshot(encode_snapshot(a), b), 2U);
  for (const char* name : {"even", "odd"}) {
    const auto va = find(a.view(kNow), name);
    const auto vb = find(b.view(kNow), name);
    EXPECT_EQ(va.uptime_24h, vb.uptime_24h);
    EXPECT_EQ(va.uptime_7d, vb.uptime_7d);
    EXPECT_EQ(va.bar, vb.bar);
    ASSERT_EQ(va.samples.size(), vb.samples.size());
    for (std::size_t i = 0; i < va.samples.size(); ++i) {
      EXPECT_EQ(va.samples[i].ms, vb.samples[i].ms);
      EXPECT_EQ(va.samples[i].ok, vb.samples[i].ok);
    }
    EXPECT_EQ(va.last_error, vb.last_error);
    EXPECT_EQ(va.last_error_message, vb.last_error_message);
    EXPECT_EQ(va.last_error_time_us, vb.last_error_time_us);
    EXPECT_EQ(va.cert_days_left, vb.cert_days_left);
    EXPECT_EQ(va.url, vb.url);
    EXPECT_EQ(va.group, vb.group);
    EXPECT_EQ(va.state, vb.state);
  }
}

TEST(Snapshot, DamagedDataIsRefusedAndChangesNothing) {
  StatusModel a(ModelOptions{});
  a.apply(check("a", kNow, true));
  a.apply(check("b", kNow, false));
  const std::string good = encode_snapshot(a);
  StatusModel b(ModelOptions{});
  EXPECT_THROW(decode_snapshot(good.substr(0, good.size() - 3), b), SnapshotError);
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x40);
  EXPECT_THROW(decode_snapshot(flipped, b), SnapshotError);
  EXPECT_THROW(decode_snapshot("hello", b), SnapshotError);
  EXPECT_EQ(b.size(), 0U);
}

TEST(Snapshot, SmallerSampleCapacityKeepsTheNewest) {
  StatusModel a(ModelOptions{});
  for (int i = 0; i < 60; ++i) {
    a.apply(check("a", kNow - (60 - i) * kMinute, true, i));
  }
  ModelOptions small;
  small.sample_capacity = 3;
  StatusModel b(small);
  decode_snapshot(encode_snapshot(a), b);
  const auto v = find(b.view(kNow), "a");
  ASSERT_EQ(v.samples.size(), 3U);
  EXPECT_FLOAT_EQ(v.samples[0].ms, 57);
  EXPECT_FLOAT_EQ(v.samples[2].ms, 59);
}

TEST(Snapshot, WrittenAtomically) {
  TempDir dir;
  const std::string path = dir.file("state.bin");
  write_file_atomically(path, "first");
  write_file_atomically(path, "second");
  std::string data;
  ASSERT_TRUE(read_file(path, data));
  EXPECT_EQ(data, "second");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(read_file(dir.file("missing"), data));
  EXPECT_THROW(write_file_atomically(dir.file("no/such/dir/state.bin"), "x"), SnapshotError);
}

ServiceOptions service_options(const std::string& state_file = "") {
  ServiceOptions o;
  o.listen = ListenAddress{"127.0.0.1", 0};
  o.state_file = state_file;
  return o;
}

auto quiet_logger(std::vector<std::string>* errors = nullptr) {
  return [errors](bool is_error, const std::string& m) {
    if (is_error && errors != nullptr) {
      errors->push_back(m);
    }
  };
}

TEST(Service, ServesThePageAndJsonOverHttp) {
  StatusService s(service_options(), quiet_logger(), [] { return kNow; });
  s.start();
  ASSERT_GT(s.port(), 0);
  s.apply({check("web", kNow, true, 12), check("<db>", kNow, false, 3)});
  httplib::Client client("127.0.0.1", s.port());
  const auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"),
            std::string::npos);
  EXPECT_NE(page->body.find("data-target=\"web\" data-state=\"up\""), std::string::npos);
  EXPECT_NE(page->body.find("data-target=\"&lt;db&gt;\" data-state=\"down\""), std::string::npos);
  const auto json = client.Get("/status.json");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 200);
  const auto doc = nlohmann::json::parse(json->body);
  EXPECT_EQ(doc["groups"][0]["targets"].size(), 2U);
  const auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  s.stop();
}

TEST(Service, PortInUseRefusesTheStartNamingTheOption) {
  StatusService first(service_options(), quiet_logger());
  first.start();
  ServiceOptions o = service_options();
  o.listen.port = first.port();
  StatusService second(o, quiet_logger());
  try {
    second.start();
    FAIL() << "the second service started on a port in use";
  } catch (const StartError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("option 'listen'"), std::string::npos) << what;
    EXPECT_NE(what.find("127.0.0.1:" + std::to_string(first.port())), std::string::npos) << what;
    EXPECT_NE(what.find("Address already in use"), std::string::npos) << what;
  }
}

TEST(Service, UnresolvableHostRefusesTheStart) {
  ServiceOptions o = service_options();
  o.listen.host = "no-such-host.invalid";
  o.listen.port = 0;
  StatusService s(o, quiet_logger());
  try {
    s.start();
    FAIL() << "started on an unresolvable host";
  } catch (const StartError& e) {
    EXPECT_NE(std::string(e.what()).find("option 'listen'"), std::string::npos) << e.what();
  }
}

TEST(Service, ListenAddressParsing) {
  std::string error;
  auto a = parse_listen("127.0.0.1:8080", error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  a = parse_listen("[::1]:0", error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  for (const char* bad : {"8080", ":8080", "host:", "host:http", "host:70000", "::1:80", "[::1]",
                          "[::1]80", "host:-1"}) {
    EXPECT_FALSE(parse_listen(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(Service, HistorySurvivesARestart) {
  TempDir dir;
  const std::string state = dir.file("status.snapshot");
  std::optional<double> uptime_before;
  {
    StatusService s(service_options(state), quiet_logger(), [] { return kNow; });
    s.start();
    s.apply({check("a", kNow - 3 * kHourMicros, false), check("a", kNow - kHourMicros, true),
             check("a", kNow, true)});
    s.stop();  // writes the snapshot
  }
  ASSERT_TRUE(fs::exists(state));
  StatusService s(service_options(state), quiet_logger(), [] { return kNow; });
  s.start();
  EXPECT_EQ(s.targets(), 1U);
  const auto doc = nlohmann::json::parse(s.json());
  const auto& t = doc["groups"][0]["targets"][0];
  EXPECT_EQ(t["name"], "a");
  EXPECT_NEAR(t["uptime_24h_pct"].get<double>(), 200.0 / 3, 1e-3);
  EXPECT_EQ(t["last_error"]["time_us"], kNow - 3 * kHourMicros);
  EXPECT_EQ(t["response_times_ms"].size(), 3U);
}

TEST(Service, UnwritableStateFileRefusesTheStart) {
  TempDir dir;
  StatusService s(service_options(dir.file("missing/dir/status.snapshot")), quiet_logger());
  try {
    s.start();
    FAIL() << "started with a state file in a missing directory";
  } catch (const StartError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("option 'state_file': cannot create"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  }
}

TEST(Service, DamagedSnapshotIsMovedAsideAndLogged) {
  TempDir dir;
  const std::string state = dir.file("status.snapshot");
  { std::ofstream(state) << "garbage"; }
  std::vector<std::string> errors;
  StatusService s(service_options(state), quiet_logger(&errors));
  s.start();
  EXPECT_EQ(s.targets(), 0U);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find("option 'state_file'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(state), std::string::npos) << errors[0];
  EXPECT_TRUE(fs::exists(state + ".bad"));
  s.apply({check("a", kNow, true)});
  s.stop();
  StatusModel m(ModelOptions{});
  std::string data;
  ASSERT_TRUE(read_file(state, data));
  EXPECT_EQ(decode_snapshot(data, m), 1U);
}

}  // namespace
}  // namespace webmon::plugins::status_page
