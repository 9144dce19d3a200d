// Alerting through the real agent (webmon-agent as a child process): http_check checks a
// target served by this test, alert decides, webhook_sink posts to a receiver in this test,
// email_sink sends to a real SMTP server (aiosmtpd) started by the test. Everything on
// 127.0.0.1; waits are on conditions with a deadline that only bounds a hang.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "pipeline_runner.hpp"

namespace webmon {
namespace {

using nlohmann::json;
using testing::Child;
using testing::TempDir;

constexpr auto kDeadline = std::chrono::seconds(60);

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds limit = kDeadline) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

/// The checked targets and the webhook receiver, in one HTTP server.
class Servers {
 public:
  struct Post {
    json body;
    std::string authorization;
    int answered = 0;
    int target_requests = 0;  ///< requests the target had served when this arrived
  };

  Servers() {
    server_.Get(R"(/target/(\w+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      const std::string name = req.matches[1];
      const int n = ++requests_[name];
      bool ok = true;
      auto it = scripts_.find(name);
      if (it != scripts_.end()) {
        ok = it->second(n);
      }
      res.status = ok ? 200 : 503;
      res.set_content(ok ? "up" : "down", "text/plain");
    });
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      Post p;
      p.body = json::parse(req.body, nullptr, false);
      p.authorization = req.get_header_value("Authorization");
      p.target_requests = total_requests();
      const std::size_t i = posts_.size();
      p.answered = i < hook_statuses_.size() ? hook_statuses_[i] : hook_default_;
      res.status = p.answered;
      res.set_content(p.answered == 400 ? "bad payload: field 'text' is missing" : "ok",
                      "text/plain");
      posts_.push_back(std::move(p));
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~Servers() {
    server_.stop();
    thread_.join();
  }
  Servers(const Servers&) = delete;
  Servers& operator=(const Servers&) = delete;

  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  /// script(n) says whether the n-th request (1-based) of target `name` succeeds.
  void script(const std::string& name, std::function<bool(int)> f) {
    std::lock_guard lock(mu_);
    scripts_[name] = std::move(f);
  }
  void hook_answers(std::vector<int> statuses, int then = 200) {
    std::lock_guard lock(mu_);
    hook_statuses_ = std::move(statuses);
    hook_default_ = then;
  }
  std::vector<Post> posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }
  int requests(const std::string& name) {
    std::lock_guard lock(mu_);
    return requests_[name];
  }
  /// Posts whose body is an alert with this state, answered with 2xx when `accepted`.
  std::vector<Post> alerts(const std::string& state, bool accepted_only = true) {
    std::vector<Post> out;
    for (auto& p : posts()) {
      if (p.body.is_object() && p.body.value("kind", "") == "alert" &&
          p.body.value("state", "") == state && (!accepted_only || p.answered / 100 == 2)) {
        out.push_back(p);
      }
    }
    return out;
  }

 private:
  int total_requests() const {
    int n = 0;
    for (const auto& [k, v] : requests_) {
      n += v;
    }
    return n;
  }
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, int> requests_;
  std::map<std::string, std::function<bool(int)>> scripts_;
  std::vector<Post> posts_;
  std::vector<int> hook_statuses_;
  int hook_default_ = 200;
};

/// A pipeline: http_check of the given targets every 50 ms → alert → webhook_sink.
std::string pipeline(Servers& s, const TempDir& dir, const std::vector<std::string>& targets,
                     const std::string& alert_extra = "", const std::string& sink_extra = "") {
  std::string y = "agent:\n  name: alerting-test\nsources:\n";
  for (std::size_t i = 0; i < targets.size(); ++i) {
    y += "  checks" + std::to_string(i) +
         ":\n    plugin: http_check\n    interval: 50ms\n"
         "    timeout: 5s\n    targets:\n      - url: " +
         s.url("/target/" + targets[i]) + "\n        name: " + targets[i] +
         "\n        labels: { site: site" + std::to_string(i) + " }\n";
  }
  std::string inputs;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    inputs += (i == 0 ? "" : ", ") + std::string("checks") + std::to_string(i);
  }
  y += "transforms:\n  alerts:\n    plugin: alert\n    inputs: [" + inputs +
       "]\n"
       "    pass_through: false\n    state_file: " +
       dir.path() + "/alert-state.json\n" + alert_extra;
  y += "sinks:\n  hook:\n    plugin: webhook_sink\n    inputs: [alerts]\n    url: " +
       s.url("/hook") + "\n    retry: { initial_backoff: 50ms, max_backoff: 200ms }\n" +
       "    batch: { linger: 10ms }\n" + sink_extra;
  return y;
}

struct Agent {
  std::unique_ptr<Child> child;
  std::string out;
  std::string err;
  Agent(const TempDir& dir, const std::string& yaml, const std::vector<std::string>& env = {},
        const std::string& tag = "agent") {
    const std::string file = dir.write(tag + ".yaml", yaml);
    out = dir.path() + "/" + tag + ".out";
    err = dir.path() + "/" + tag + ".err";
    child = std::make_unique<Child>(std::vector<std::string>{testing::agent_binary(), "--pipeline",
                                                             file, "--log-level", "debug"},
                                    out, err, env);
  }
  void stop() {
    child->signal(SIGTERM);
    EXPECT_TRUE(child->wait(kDeadline).has_value());
  }
  [[nodiscard]] std::string logs() const {
    return testing::read_file(out) + testing::read_file(err);
  }
};

TEST(AlertPipeline, DownForSixChecksGivesOneFiringAndOneResolved) {
  Servers s;
  TempDir dir;
  // Checks 1-5 up, 6-11 down, then up.
  s.script("shop", [](int n) { return n <= 5 || n >= 12; });
  Agent agent(dir, pipeline(s, dir, {"shop"}));
  ASSERT_TRUE(wait_until([&] { return !s.alerts("resolved").empty(); })) << agent.logs();
  ASSERT_TRUE(wait_until([&] { return s.requests("shop") >= 20; }));
  agent.stop();
  const auto firing = s.alerts("firing");
  const auto resolved = s.alerts("resolved");
  ASSERT_EQ(firing.size(), 1U) << agent.logs();
  ASSERT_EQ(resolved.size(), 1U);
  const json& f = firing[0].body;
  EXPECT_EQ(f["target"], "shop");
  EXPECT_EQ(f["check_kind"], "http_check");
  EXPECT_EQ(f["consecutive_failures"], 3) << "fires at the third failed check";
  EXPECT_EQ(f["last_status_code"], 503);
  EXPECT_EQ(f["last_error"], "http_status");
  EXPECT_EQ(f["agent"], "alerting-test");
  EXPECT_EQ(f["labels"]["site"], "site0");
  EXPECT_GE(firing[0].target_requests, 8) << "not before the third failed check (8th check)";
  const json& r = resolved[0].body;
  EXPECT_EQ(r["incident_id"], f["incident_id"]);
  EXPECT_EQ(r["since"], f["since"]);
  EXPECT_EQ(r["consecutive_failures"], 6) << "the incident's six failed checks";
  EXPECT_GE(resolved[0].target_requests, 13) << "not before the second success (13th check)";
  EXPECT_EQ(s.posts().size(), 2U) << "nothing else was posted";
}

TEST(AlertPipeline, FlappingBelowTheThresholdsSendsNothing) {
  Servers s;
  TempDir dir;
  // 30 checks flapping (never 3 failures in a row), then down for good: the first
  // notification must be the firing of the final outage, at its third failure.
  s.script("flaky", [](int n) { return n > 30 ? false : n % 3 == 0; });
  Agent agent(dir, pipeline(s, dir, {"flaky"}));
  ASSERT_TRUE(wait_until([&] { return !s.posts().empty(); })) << agent.logs();
  agent.stop();
  const auto posts = s.posts();
  ASSERT_EQ(posts.size(), 1U);
  EXPECT_EQ(posts[0].body["state"], "firing");
  EXPECT_EQ(posts[0].body["consecutive_failures"], 3);
  EXPECT_GE(posts[0].target_requests, 33) << "nothing fired while flapping";
}

TEST(AlertPipeline, TwoLocationsWithMinLocationsTwo) {
  Servers s;
  TempDir dir;
  // Location site0 sees "api" fail from its 1st check; site1 only from its 20th.
  s.script("api0", [](int) { return false; });
  s.script("api1", [](int n) { return n < 20; });
  std::string y = pipeline(s, dir, {"api0", "api1"},
                           "    min_locations: 2\n"
                           "    location_label: site\n");
  // Both sources check the same target name "api" (two network paths to one site).
  for (const char* t : {"api0", "api1"}) {
    const std::string from = std::string("name: ") + t;
    y.replace(y.find(from), from.size(), "name: api");
  }
  Agent agent(dir, y);
  ASSERT_TRUE(wait_until([&] { return !s.posts().empty(); })) << agent.logs();
  agent.stop();
  const auto posts = s.posts();
  ASSERT_EQ(posts.size(), 1U);
  EXPECT_EQ(posts[0].body["state"], "firing");
  EXPECT_EQ(posts[0].body["target"], "api");
  EXPECT_EQ(posts[0].body["locations_failing"], 2);
  EXPECT_GE(s.requests("api1"), 22) << "one location alone never fires";
}

TEST(AlertPipeline, RestartMidIncidentSendsNoSecondFiringAndStillTheResolved) {
  Servers s;
  TempDir dir;
  std::atomic<bool> up{false};
  s.script("db", [&](int) { return up.load(); });
  const std::string yaml = pipeline(s, dir, {"db"});
  {
    Agent first(dir, yaml, {}, "first");
    ASSERT_TRUE(wait_until([&] { return !s.alerts("firing").empty(); })) << first.logs();
    first.child->signal(SIGKILL);  // a crash: nothing saved at shutdown
    ASSERT_TRUE(first.child->wait(kDeadline).has_value());
  }
  const int before = s.requests("db");
  Agent second(dir, yaml, {}, "second");
  // Still down for a while after the restart: no second firing.
  ASSERT_TRUE(wait_until([&] { return s.requests("db") >= before + 10; })) << second.logs();
  up = true;
  ASSERT_TRUE(wait_until([&] { return !s.alerts("resolved").empty(); })) << second.logs();
  second.stop();
  const auto firing = s.alerts("firing");
  const auto resolved = s.alerts("resolved");
  ASSERT_EQ(firing.size(), 1U) << second.logs();
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_EQ(resolved[0].body["incident_id"], firing[0].body["incident_id"]);
  EXPECT_GE(resolved[0].body["consecutive_failures"].get<int>(), 13);
}

TEST(AlertPipeline, ReceiverAnswering500ThreeTimesGetsTheAlertOnceItRecovers) {
  Servers s;
  TempDir dir;
  s.hook_answers({500, 500, 500});
  std::atomic<bool> up{false};
  s.script("web", [&](int) { return up.load(); });
  Agent agent(dir, pipeline(s, dir, {"web"}));
  ASSERT_TRUE(wait_until([&] { return !s.alerts("firing").empty(); })) << agent.logs();
  up = true;
  ASSERT_TRUE(wait_until([&] { return !s.alerts("resolved").empty(); })) << agent.logs();
  agent.stop();
  const auto posts = s.posts();
  ASSERT_EQ(posts.size(), 5U) << "4 attempts of the firing, 1 of the resolved";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(posts[i].body["state"], "firing");
    EXPECT_EQ(posts[i].body["id"], posts[0].body["id"]) << "the same record, retried";
  }
  EXPECT_EQ(s.alerts("firing").size(), 1U) << "accepted once";
  EXPECT_EQ(s.alerts("resolved").size(), 1U);
  EXPECT_NE(agent.logs().find("answered HTTP 500"), std::string::npos);
}

TEST(AlertPipeline, ReceiverAnswering400GetsItOnceAndTheReasonIsLogged) {
  Servers s;
  TempDir dir;
  s.hook_answers({}, 400);
  std::atomic<bool> up{false};
  s.script("blog", [&](int) { return up.load(); });
  Agent agent(dir, pipeline(s, dir, {"blog"}));
  ASSERT_TRUE(wait_until([&] { return !s.alerts("firing", false).empty(); })) << agent.logs();
  up = true;
  ASSERT_TRUE(wait_until([&] { return !s.alerts("resolved", false).empty(); })) << agent.logs();
  agent.stop();
  EXPECT_EQ(s.alerts("firing", false).size(), 1U) << "a rejected alert is not retried";
  EXPECT_EQ(s.alerts("resolved", false).size(), 1U);
  EXPECT_NE(agent.logs().find("HTTP 400: bad payload: field 'text' is missing"), std::string::npos)
      << agent.logs();
}

TEST(AlertPipeline, SecretsAreUsedButNeverLogged) {
  Servers s;
  TempDir dir;
  const std::string token = "tok-3f9c1e7a5b2d";
  s.script("pay", [](int) { return false; });
  Agent agent(dir, pipeline(s, dir, {"pay"}, "", "    bearer_token: ${HOOK_TOKEN}\n"),
              {"HOOK_TOKEN=" + token});
  ASSERT_TRUE(wait_until([&] { return !s.alerts("firing").empty(); })) << agent.logs();
  agent.stop();
  EXPECT_EQ(s.alerts("firing")[0].authorization, "Bearer " + token);
  const std::string logs = agent.logs();
  EXPECT_FALSE(logs.empty());
  EXPECT_EQ(logs.find(token), std::string::npos) << "the token appears in the logs";
  // --validate at trace level prints no secret either.
  const std::string file = dir.write("v.yaml", pipeline(s, dir, {"pay"}, "",
                                                        "    bearer_token: ${HOOK_TOKEN}\n"
                                                        "    password: ${HOOK_TOKEN}\n"
                                                        "    username: u\n"));
  const auto v = testing::run_process(
      {testing::agent_binary(), "--validate", "--log-level", "trace", "--pipeline", file},
      kDeadline, {"HOOK_TOKEN=" + token});
  EXPECT_EQ(v.out.find(token), std::string::npos);
  EXPECT_EQ(v.err.find(token), std::string::npos);
}

TEST(AlertPipeline, PagerDutyPresetTriggersAndResolvesWithTheIncidentAsDedupKey) {
  Servers s;
  TempDir dir;
  const std::string key = "R0UTINGKEY0123456789abcdef012345";
  std::atomic<bool> up{false};
  s.script("checkout", [&](int) { return up.load(); });
  Agent agent(dir,
              pipeline(s, dir, {"checkout"}, "",
                       "    preset: pagerduty\n    routing_key: ${PD_KEY}\n"
                       "    severity: error\n"),
              {"PD_KEY=" + key});
  ASSERT_TRUE(wait_until([&] { return !s.posts().empty(); })) << agent.logs();
  up = true;
  ASSERT_TRUE(wait_until([&] { return s.posts().size() >= 2; })) << agent.logs();
  agent.stop();
  const auto posts = s.posts();
  ASSERT_EQ(posts.size(), 2U);
  const json& trigger = posts[0].body;
  const json& resolve = posts[1].body;
  EXPECT_EQ(trigger["routing_key"], key);
  EXPECT_EQ(trigger["event_action"], "trigger");
  EXPECT_EQ(resolve["event_action"], "resolve");
  EXPECT_EQ(trigger["dedup_key"], resolve["dedup_key"]);
  EXPECT_EQ(trigger["dedup_key"], trigger["payload"]["custom_details"]["incident_id"]);
  EXPECT_EQ(trigger["payload"]["source"], "checkout");
  EXPECT_EQ(trigger["payload"]["severity"], "error");
  EXPECT_EQ(trigger["payload"]["summary"].get<std::string>().rfind("[FIRING] checkout", 0), 0U);
  EXPECT_EQ(agent.logs().find(key), std::string::npos) << "the routing key is logged";
}

TEST(AlertPipeline, UnreachableWebhookIsNamedAtStartAndRetried) {
  Servers s;
  TempDir dir;
  s.script("gone", [](int) { return false; });
  // A port nothing listens on: bind one, then close it (connections are refused).
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  std::string y = pipeline(s, dir, {"gone"});
  const std::string from = s.url("/hook");
  y.replace(y.find(from), from.size(), "http://127.0.0.1:" + std::to_string(port) + "/hook");
  // The undeliverable alert would hold the shutdown for the default 30 s.
  y.replace(y.find("agent:\n"), 7, "agent:\n  shutdown_timeout: 1s\n");
  Agent agent(dir, y);
  ASSERT_TRUE(wait_until([&] {
    return agent.logs().find("; the batch will be retried") != std::string::npos;
  })) << agent.logs();
  agent.stop();
  const std::string logs = agent.logs();
  EXPECT_NE(logs.find("option 'url': cannot reach http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << logs;
  EXPECT_NE(logs.find("agent.yaml:"), std::string::npos) << "the position of url";
  EXPECT_GE(s.requests("gone"), 3) << "checks went on";
}

TEST(AlertPipeline, BadWebhookConfigurationNamesThePosition) {
  Servers s;
  TempDir dir;
  std::string y = pipeline(s, dir, {"x"}, "", "    preset: hipchat\n");
  std::string err = testing::validate_pipeline(y);
  EXPECT_NE(err.find("option 'preset' must be one of 'generic', 'slack'"), std::string::npos)
      << err;
  EXPECT_NE(err.find("pipeline.yaml:"), std::string::npos) << err;
  y = pipeline(s, dir, {"x"}, "", "    body_template: '{\"text\": \"{{nope}}\"}'\n");
  err = testing::validate_pipeline(y);
  EXPECT_NE(err.find("unknown placeholder '{{nope}}'"), std::string::npos) << err;
  EXPECT_NE(err.find("pipeline.yaml:"), std::string::npos) << err;
}

TEST(AlertPipeline, ValidateRefusesKindsWithoutSuccess) {
  TempDir dir;
  const std::string y =
      "sources:\n  gen:\n    plugin: generator\n    count: 1\n"
      "transforms:\n  a1:\n    plugin: alert\n    inputs: [gen]\n    state_file: " +
      dir.path() +
      "/a1.json\n    pass_through: false\n"
      "  a2:\n    plugin: alert\n    inputs: [a1]\n    state_file: " +
      dir.path() + "/a2.json\nsinks:\n  out:\n    plugin: blackhole\n    inputs: [a2]\n";
  const std::string err = testing::validate_pipeline(y);
  EXPECT_NE(err.find("alert"), std::string::npos) << err;
  EXPECT_NE(err.find("success"), std::string::npos) << err;
}

TEST(AlertPipeline, EmailReachesARealSmtpServerWellFormed) {
  Servers s;
  TempDir dir;
  const std::string password = "smtp-pw-8d1f0c";
  Child smtp(
      {"/usr/bin/python3", std::string(WEBMON_SOURCE_DIR) + "/plugins/alert/tests/smtp_server.py",
       dir.path(), "alerts", password},
      dir.path() + "/smtp.out", dir.path() + "/smtp.err");
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(dir.path() + "/port"); }))
      << testing::read_file(dir.path() + "/smtp.err");
  const std::string port = testing::read_file(dir.path() + "/port");
  s.script("mailtest", [](int) { return false; });
  std::string y = pipeline(s, dir, {"mailtest"});
  y += "  mail:\n    plugin: email_sink\n    inputs: [alerts]\n    url: smtp://127.0.0.1:" + port +
       "\n    starttls: required\n    ca_file: " + dir.path() + "/smtp.pem\n" +
       "    username: alerts\n    password: ${SMTP_PASSWORD}\n" +
       "    from: webmon@example.test\n    to: [oncall@example.test, 'ops@example.test']\n" +
       "    subject_template: 'webmon: {{summary}}'\n" + "    retry: { initial_backoff: 50ms }\n";
  Agent agent(dir, y, {"SMTP_PASSWORD=" + password});
  const std::string messages = dir.path() + "/messages.jsonl";
  ASSERT_TRUE(wait_until([&] { return !testing::read_file(messages).empty(); }))
      << agent.logs() << testing::read_file(dir.path() + "/smtp.err");
  agent.stop();
  const auto lines = testing::lines(testing::read_file(messages));
  ASSERT_EQ(lines.size(), 1U);
  const json m = json::parse(lines[0]);
  EXPECT_EQ(m["mail_from"], "webmon@example.test");
  EXPECT_EQ(m["rcpt_tos"], json::array({"oncall@example.test", "ops@example.test"}));
  EXPECT_EQ(m["tls"], true) << "STARTTLS";
  EXPECT_EQ(m["authenticated"], true);
  EXPECT_EQ(m["defects"], json::array());
  EXPECT_EQ(m["content_type"], "text/plain");
  EXPECT_EQ(m["headers"]["From"], "webmon@example.test");
  EXPECT_EQ(m["headers"]["To"], "oncall@example.test, ops@example.test");
  EXPECT_EQ(m["headers"]["Subject"].get<std::string>().rfind("webmon: [FIRING] mailtest", 0), 0U)
      << m["headers"]["Subject"];
  EXPECT_TRUE(m["headers"].contains("Date"));
  EXPECT_TRUE(m["headers"].contains("Message-ID"));
  EXPECT_NE(m["body"].get<std::string>().find("consecutive failures: 3"), std::string::npos)
      << m["body"];
  EXPECT_EQ(agent.logs().find(password), std::string::npos) << "the password is logged";
}

}  // namespace
}  // namespace webmon
