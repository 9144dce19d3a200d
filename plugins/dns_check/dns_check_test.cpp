// dns_check against a real DNS server on loopback: Debian's dnsmasq, started by the test on a
// free port with a local authoritative zone (z.test: A, AAAA, CNAME, MX, TXT, NS, SOA), never
// the internet. Also a UDP socket that never answers (timeout), a closed port (connect) and
// configuration errors.
#include "dns_check.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dns_check_kind.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::plugins::dns_check {
namespace {

namespace wt = sdk::testing;
using sdk::ConfigNode;

ConfigNode from_yaml(const YAML::Node& node, const std::string& file) {
  const YAML::Mark m = node.Mark();
  sdk::SourceLocation where{file, m.line + 1, m.column + 1};
  if (node.IsScalar()) {
    return ConfigNode(node.Scalar(), where);
  }
  if (node.IsSequence()) {
    ConfigNode n = ConfigNode::make_list(where);
    for (const auto& item : node) {
      n.push_back(from_yaml(item, file));
    }
    return n;
  }
  if (node.IsMap()) {
    ConfigNode n = ConfigNode::make_map(where);
    for (const auto& kv : node) {
      n.set(kv.first.as<std::string>(), from_yaml(kv.second, file));
    }
    return n;
  }
  ConfigNode n;
  n.set_where(where);
  return n;
}

ConfigNode yaml(const std::string& text, const std::string& file = "pipeline.yaml") {
  return from_yaml(YAML::Load(text), file);
}

// A bound UDP socket on 127.0.0.1 (port 0); it never answers.
struct UdpSocket {
  int fd = -1;
  int port = 0;
  UdpSocket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), len);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~UdpSocket() { ::close(fd); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
};

// dnsmasq serving the zone z.test authoritatively on 127.0.0.1:<port>.
class Dnsmasq {
 public:
  Dnsmasq() { launch(); }

  // Starts dnsmasq on a port that was free a moment ago. Another process can take the port (its
  // UDP or TCP side) before dnsmasq binds it: then dnsmasq exits and ready() launches it again.
  void launch() {
    {
      UdpSocket probe;  // a free port (released just before dnsmasq binds it)
      port_ = probe.port;
    }
    std::vector<std::string> args = {WEBMON_DNSMASQ,
                                     "--keep-in-foreground",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--conf-file=/dev/null",
                                     "--pid-file=",
                                     "--user=" + std::string(::getpwuid(::getuid())->pw_name),
                                     "--group=" + std::string(::getgrgid(::getgid())->gr_name),
                                     "--port=" + std::to_string(port_),
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--auth-zone=z.test",
                                     "--auth-server=ns.z.test,lo",
                                     "--host-record=a.z.test,10.0.0.1",
                                     "--host-record=a.z.test,10.0.0.2",
                                     "--host-record=h.z.test,10.0.0.7,fd00::7",
                                     "--host-record=mail.z.test,10.0.0.3",
                                     "--txt-record=t.z.test,v=spf1 -all",
                                     "--mx-host=z.test,mail.z.test,10",
                                     "--cname=c.z.test,h.z.test"};
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Dnsmasq() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;
  [[nodiscard]] std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Waits until dnsmasq answers, launching it again on another port when it could not bind
  /// (up to 5 times; the deadline only bounds a hang).
  bool ready() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (answers()) {
        return true;
      }
      if (pid_ > 0) {
        return false;  // running but silent
      }
      launch();
    }
    return false;
  }

  bool answers() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    const auto query = build_query(42, "a.z.test", RecordType::a, false);
    while (std::chrono::steady_clock::now() < deadline) {
      UdpSocket s;
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(port_));
      timeval tv{0, 200'000};
      ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::sendto(s.fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      std::uint8_t buf[512];
      if (::recv(s.fd, buf, sizeof buf, 0) > 0) {
        return true;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // dnsmasq exited
      }
    }
    return false;
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

Dnsmasq& dns() {
  static Dnsmasq d;
  static const bool ok = d.ready();
  EXPECT_TRUE(ok) << "dnsmasq (" WEBMON_DNSMASQ ") did not answer; scripts/bootstrap installs it";
  return d;
}

std::vector<sdk::Record> run_once(const std::string& config_yaml, wt::FakeContext& ctx) {
  DnsCheckSource src(yaml("once: true\n" + config_yaml), ctx);
  EXPECT_TRUE(src.start(ctx, ctx).is_ok());
  const sdk::Status st = src.run();
  EXPECT_TRUE(st.is_ok()) << st.message();
  return ctx.records();
}

sdk::Record check_one(const std::string& target_yaml) {
  wt::FakeContext ctx;
  auto records = run_once("targets:\n  - " + target_yaml + "\n", ctx);
  EXPECT_EQ(records.size(), 1U);
  return records.empty() ? sdk::Record{} : records[0];
}

sdk::Record ask(const std::string& target_yaml) {
  return check_one("{server: \"" + dns().server() + "\", " + target_yaml + "}");
}

std::string str(const sdk::Record& r, const char* f) {
  const auto* v = r.get<std::string>(f);
  return v != nullptr ? *v : "<null>";
}
bool is_null(const sdk::Record& r, const char* f) {
  const auto* v = r.find(f);
  return v != nullptr && sdk::type_of(*v) == sdk::ValueType::null;
}

void expect_declared(const sdk::Record& r) {
  EXPECT_EQ(r.kind, "dns_check");
  std::size_t i = 0;
  for (const auto& f : kDnsCheckFields) {
    if (f.type == sdk::FieldType::string_map) {
      continue;
    }
    ASSERT_LT(i, r.fields.size());
    EXPECT_EQ(r.fields[i].name, f.name);
    const auto t = sdk::type_of(r.fields[i].value);
    EXPECT_TRUE(t == sdk::value_type_of(f.type) || (f.nullable && t == sdk::ValueType::null))
        << f.name;
    ++i;
  }
  EXPECT_EQ(i, r.fields.size());
}

TEST(DnsCheck, ARecordsExactAnswers) {
  const auto r = ask("query: a.z.test, expect: [10.0.0.2, 10.0.0.1], labels: {zone: test}");
  expect_declared(r);
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "target"), "a.z.test/A");
  EXPECT_EQ(str(r, "rcode"), "NOERROR");
  EXPECT_EQ(*r.get<std::int64_t>("answer_count"), 2);
  EXPECT_EQ(str(r, "answers"), "10.0.0.1, 10.0.0.2");
  EXPECT_EQ(*r.get<bool>("authoritative"), true);
  EXPECT_EQ(*r.get<bool>("truncated"), false);
  EXPECT_NE(r.get<double>("query_time_ms"), nullptr);
  EXPECT_NE(r.get<std::int64_t>("min_ttl"), nullptr);
  EXPECT_EQ(str(r, "server"), dns().server());
  EXPECT_EQ(r.labels.at("zone"), "test");
}

TEST(DnsCheck, EveryRecordType) {
  auto r = ask("query: h.z.test, type: AAAA, expect: [\"fd00::7\"]");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  r = ask("query: c.z.test, type: CNAME, expect: [h.z.test.]");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "answers"), "h.z.test");
  r = ask("query: c.z.test, type: A, expect: [10.0.0.7]");  // through the CNAME
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(*r.get<std::int64_t>("answer_count"), 1);
  r = ask("query: z.test, type: MX, expect: [\"10 mail.z.test\"]");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  r = ask("query: t.z.test, type: TXT, expect_regex: \"^v=spf1 \"");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "answers"), "v=spf1 -all");
  r = ask("query: z.test, type: NS, expect: [ns.z.test]");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  r = ask("query: z.test, type: SOA, expect_regex: \"^ns\\\\.z\\\\.test \"");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message") << str(r, "answers");
}

TEST(DnsCheck, MissingExpectedAnswerIsAMismatch) {
  auto r = ask("query: a.z.test, expect: [10.0.0.9]");
  EXPECT_EQ(*r.get<bool>("success"), false);
  EXPECT_EQ(str(r, "error"), "answer_mismatch");
  EXPECT_NE(str(r, "error_message").find("10.0.0.9"), std::string::npos);
  EXPECT_EQ(str(r, "answers"), "10.0.0.1, 10.0.0.2");  // what came back is still recorded
  r = ask("query: a.z.test, expect_regex: \"^192\\\\.\"");
  EXPECT_EQ(str(r, "error"), "answer_mismatch");
  r = ask("query: a.z.test, type: MX");  // no MX records: fewer than min_answers (1)
  EXPECT_EQ(str(r, "error"), "answer_mismatch");
  EXPECT_EQ(*r.get<std::int64_t>("answer_count"), 0);
}

TEST(DnsCheck, Rcodes) {
  auto r = ask("query: nx.z.test");
  EXPECT_EQ(str(r, "error"), "rcode");
  EXPECT_EQ(str(r, "rcode"), "NXDOMAIN");
  r = ask("query: nx.z.test, expect_rcode: NXDOMAIN");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  r = ask("query: elsewhere.example");  // outside the zone: dnsmasq refuses
  EXPECT_EQ(str(r, "error"), "rcode");
  EXPECT_EQ(str(r, "rcode"), "REFUSED");
}

TEST(DnsCheck, SilentServerIsATimeout) {
  UdpSocket silent;
  const auto r = check_one("{query: a.z.test, timeout: 200ms, server: \"127.0.0.1:" +
                           std::to_string(silent.port) + "\"}");
  expect_declared(r);
  EXPECT_EQ(str(r, "error"), "timeout");
  EXPECT_TRUE(is_null(r, "rcode"));
  EXPECT_TRUE(is_null(r, "query_time_ms"));
}

// A UDP relay in front of dnsmasq that holds each query 300 ms before passing it on (a slow
// server).
class SlowRelay {
 public:
  SlowRelay() : thread_([this] { loop(); }) {}
  ~SlowRelay() {
    stop_ = true;
    thread_.join();
  }
  SlowRelay(const SlowRelay&) = delete;
  SlowRelay& operator=(const SlowRelay&) = delete;
  [[nodiscard]] std::string server() const { return "127.0.0.1:" + std::to_string(front_.port); }

 private:
  void loop() {
    sockaddr_in upstream{};
    upstream.sin_family = AF_INET;
    upstream.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::string up = dns().server();
    upstream.sin_port = htons(static_cast<std::uint16_t>(std::stoi(up.substr(up.rfind(':') + 1))));
    char buf[4096];
    while (!stop_) {
      pollfd p{front_.fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      sockaddr_storage client{};
      socklen_t client_len = sizeof client;
      const ssize_t n = ::recvfrom(front_.fd, buf, sizeof buf, 0,
                                   reinterpret_cast<sockaddr*>(&client), &client_len);
      if (n <= 0) {
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ::sendto(back_.fd, buf, static_cast<std::size_t>(n), 0,
               reinterpret_cast<sockaddr*>(&upstream), sizeof upstream);
      pollfd q{back_.fd, POLLIN, 0};
      if (::poll(&q, 1, 5000) <= 0) {
        continue;
      }
      const ssize_t m = ::recv(back_.fd, buf, sizeof buf, 0);
      if (m > 0) {
        ::sendto(front_.fd, buf, static_cast<std::size_t>(m), 0,
                 reinterpret_cast<sockaddr*>(&client), client_len);
      }
    }
  }
  UdpSocket front_;  // where dns_check asks
  UdpSocket back_;   // where the relay asks dnsmasq from
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts after the sockets exist
};

TEST(DnsCheck, MaxResponseTimeFailsASlowReplyWithSlow) {
  SlowRelay relay;
  const auto slow =
      check_one("{query: a.z.test, server: \"" + relay.server() + "\", max_response_time: 50ms}");
  expect_declared(slow);
  EXPECT_EQ(*slow.get<bool>("success"), false);
  EXPECT_EQ(str(slow, "error"), "slow") << str(slow, "error_message");
  EXPECT_EQ(str(slow, "error_message").rfind("query took ", 0), 0U) << str(slow, "error_message");
  EXPECT_NE(str(slow, "error_message").find("max_response_time is 50 ms"), std::string::npos);
  EXPECT_EQ(str(slow, "answers"), "10.0.0.1, 10.0.0.2");  // the reply is still recorded
  EXPECT_NE(slow.get<double>("query_time_ms"), nullptr);
  const auto fine = ask("query: a.z.test, max_response_time: 10s");
  EXPECT_EQ(*fine.get<bool>("success"), true) << str(fine, "error_message");
  // A wrong answer is reported as such, before slowness.
  const auto wrong = check_one("{query: a.z.test, expect: [10.0.0.9], server: \"" + relay.server() +
                               "\", max_response_time: 50ms}");
  EXPECT_EQ(str(wrong, "error"), "answer_mismatch");
}

TEST(DnsCheck, ClosedPortIsAConnectError) {
  int port = 0;
  {
    UdpSocket s;
    port = s.port;
  }
  const auto r = check_one(
      "{query: a.z.test, timeout: 5s, server: \"127.0.0.1:" + std::to_string(port) + "\"}");
  EXPECT_EQ(str(r, "error"), "connect");
}

TEST(DnsCheck, ManyTargetsAtOnce) {
  std::string targets = "targets:\n";
  for (int i = 0; i < 30; ++i) {
    targets += "  - {name: q" + std::to_string(i) + ", query: a.z.test, server: \"" +
               dns().server() + "\"}\n";
  }
  wt::FakeContext ctx;
  const auto records = run_once(targets, ctx);
  ASSERT_EQ(records.size(), 30U);
  for (const auto& r : records) {
    EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  }
  EXPECT_EQ(ctx.count("checks"), 30U);
}

TEST(DnsCheck, RunsOnItsIntervalUntilStopped) {
  wt::FakeContext ctx;
  DnsCheckSource src(yaml("interval: 20ms\nflush_interval: 0s\ntargets:\n  - {query: a.z.test, "
                          "server: \"" +
                          dns().server() + "\"}\n"),
                     ctx);
  ASSERT_TRUE(src.start(ctx, ctx).is_ok());
  const auto st = wt::run_source(src, ctx, [&] { return ctx.records().size() >= 3; });
  EXPECT_TRUE(st.is_ok());
  const auto records = ctx.records();
  ASSERT_GE(records.size(), 3U);
  // On the grid: consecutive checks are a whole number of intervals apart.
  for (std::size_t i = 1; i < records.size(); ++i) {
    const auto gap = records[i].time.micros - records[i - 1].time.micros;
    EXPECT_GT(gap, 0);
    EXPECT_EQ(gap % 20'000, 0) << gap;
  }
}

TEST(DnsCheckConfig, Errors) {
  try {
    parse_settings(yaml("targets:\n  - {query: a.test}\n  - {query: b.test, type: SRV}\n"));
    FAIL() << "no error";
  } catch (const sdk::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pipeline.yaml:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("targets[1].type"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {query: \"a..b\"}\n")), sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {query: a, server: dns.example}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {query: a, server: \"1.2.3.4:0\"}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {query: a, expect_regex: \"(\"}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {query: a}\n  - {query: a}\n")),
               sdk::ConfigError);
}

TEST(DnsCheckConfig, ServersAndDefaults) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string text;
  EXPECT_TRUE(parse_server("127.0.0.1:5353", ss, len, text));
  EXPECT_EQ(text, "127.0.0.1:5353");
  EXPECT_TRUE(parse_server("::1", ss, len, text));
  EXPECT_EQ(text, "[::1]:53");
  EXPECT_TRUE(parse_server("[::1]:5353", ss, len, text));
  EXPECT_EQ(text, "[::1]:5353");
  EXPECT_FALSE(parse_server("localhost", ss, len, text));
  const std::string dir =
      std::filesystem::temp_directory_path() / ("dns_check_test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/resolv.conf");
    f << "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
  }
  EXPECT_EQ(system_nameserver(dir + "/resolv.conf"), "192.0.2.53");
  {
    std::ofstream f(dir + "/targets.yaml");
    f << "- {query: a.test, type: MX}\n- {query: b.test, min_answers: -1}\n";
  }
  try {
    parse_settings(yaml("targets_file: targets.yaml\n", dir + "/pipeline.yaml"));
    FAIL() << "no error";
  } catch (const sdk::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("targets_file[1].min_answers"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
  const auto s =
      parse_settings(yaml("timeout: 2s\nserver: \"10.0.0.53\"\ntargets:\n"
                          "  - {query: a.test, expect_rcode: NXDOMAIN}\n"
                          "  - {query: b.test, type: AAAA, server: \"[::1]:53\"}\n"));
  ASSERT_EQ(s.targets.size(), 2U);
  EXPECT_EQ(s.targets[0].server_text, "10.0.0.53:53");
  EXPECT_EQ(s.targets[0].min_answers, 0U);
  EXPECT_EQ(s.targets[0].timeout, std::chrono::seconds(2));
  EXPECT_EQ(s.targets[1].type, RecordType::aaaa);
  EXPECT_EQ(s.targets[1].min_answers, 1U);
  EXPECT_EQ(s.targets[1].server_text, "[::1]:53");
}

}  // namespace
}  // namespace webmon::plugins::dns_check
