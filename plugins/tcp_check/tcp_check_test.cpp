// tcp_check against real servers on loopback: a TCP echo server, a greeting server, a TLS
// server with a certificate generated here, a closed port, a listener that never accepts
// (timeouts), IPv6 ::1; plus configuration errors, sharding, once and a refusing pipeline.
#include "tcp_check.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "tcp_check_kind.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::plugins::tcp_check {
namespace {

namespace wt = sdk::testing;
using sdk::ConfigNode;

// webmon-agent ignores SIGPIPE (agent/src/main.cpp); so do these tests, whose servers and
// checks write to sockets the other side may have closed (OpenSSL writes without
// MSG_NOSIGNAL).
[[maybe_unused]] const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

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

// A loopback listener on port 0 that hands each accepted connection to `handler` (on its own
// thread, one connection at a time). `accept_connections = false`: listens but never accepts.
class Server {
 public:
  explicit Server(std::function<void(int)> handler, bool v6 = false, bool accept_connections = true)
      : handler_(std::move(handler)) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (accept_connections) {
      thread_ = std::thread([this] { loop(); });
    }
  }
  ~Server() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  [[nodiscard]] int port() const { return port_; }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        handler_(c);
        ::close(c);
      }
    }
  }
  std::function<void(int)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Echoes what arrives until the peer closes (or 2 s of silence).
void echo(int fd) {
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) {
      return;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || ::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
      return;
    }
  }
}

// Writes a greeting and closes.
void greet(int fd) { (void)!::send(fd, "HELLO webmon\n", 13, MSG_NOSIGNAL); }

int closed_port() {
  Server s([](int) {}, false, false);
  return s.port();  // closed when s goes away
}

// A self-signed certificate for CN=webmon-test, SAN localhost and 127.0.0.1, valid 30 days.
struct Cert {
  std::string dir =
      std::filesystem::temp_directory_path() / ("tcp_check_test." + std::to_string(::getpid()));
  std::string cert_path = dir + "/cert.pem";
  std::string key_path = dir + "/key.pem";
  std::int64_t not_after = 0;  // seconds since epoch
  Cert() {
    std::filesystem::create_directories(dir);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("webmon tests"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("webmon-test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(cert, key, EVP_sha256());
    std::tm tm{};
    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    not_after = timegm(&tm);
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~Cert() { std::filesystem::remove_all(dir); }
};

const Cert& cert() {
  static const Cert c;
  return c;
}

// TLS: handshake, then echo one read back.
void tls_echo(int fd) {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_file(c, cert().cert_path.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(c, cert().key_path.c_str(), SSL_FILETYPE_PEM);
    return c;
  }();
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (SSL_accept(ssl) == 1) {
    char buf[1024];
    const int n = SSL_read(ssl, buf, sizeof buf);
    if (n > 0) {
      SSL_write(ssl, buf, n);
    }
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
}

// Runs the source in once mode and returns its records (one per target).
std::vector<sdk::Record> run_once(const std::string& config_yaml, wt::FakeContext& ctx) {
  TcpCheckSource src(yaml("once: true\n" + config_yaml), ctx);
  EXPECT_TRUE(src.start(ctx, ctx).is_ok());
  const sdk::Status st = src.run();  // once: returns when every target was checked
  EXPECT_TRUE(st.is_ok()) << st.message();
  return ctx.records();
}

sdk::Record check_one(const std::string& target_yaml) {
  wt::FakeContext ctx;
  auto records = run_once("targets:\n  - " + target_yaml + "\n", ctx);
  EXPECT_EQ(records.size(), 1U);
  return records.empty() ? sdk::Record{} : records[0];
}

std::string str(const sdk::Record& r, const char* f) {
  const auto* v = r.get<std::string>(f);
  return v != nullptr ? *v : "<null>";
}
bool is_null(const sdk::Record& r, const char* f) {
  const auto* v = r.find(f);
  return v != nullptr && sdk::type_of(*v) == sdk::ValueType::null;
}

// Every record carries the declared fields, in order, with the declared types.
void expect_declared(const sdk::Record& r) {
  EXPECT_EQ(r.kind, "tcp_check");
  std::size_t i = 0;
  for (const auto& f : kTcpCheckFields) {
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

TEST(TcpCheck, EchoReplyMatches) {
  Server s(echo);
  const auto r = check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                           ", send: \"PING 42\\n\", expect: \"^PING \\\\d+\", labels: {team: "
                           "core}}");
  expect_declared(r);
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_TRUE(is_null(r, "error"));
  EXPECT_EQ(str(r, "target"), "127.0.0.1:" + std::to_string(s.port()));
  EXPECT_EQ(*r.get<std::int64_t>("port"), s.port());
  EXPECT_EQ(str(r, "remote_ip"), "127.0.0.1");
  EXPECT_EQ(*r.get<std::int64_t>("bytes_sent"), 8);
  EXPECT_EQ(*r.get<std::int64_t>("bytes_received"), 8);
  EXPECT_EQ(*r.get<bool>("reply_matched"), true);
  EXPECT_NE(r.get<double>("connect_ms"), nullptr);
  EXPECT_NE(r.get<double>("reply_ms"), nullptr);
  EXPECT_TRUE(is_null(r, "tls_ms"));
  EXPECT_GE(*r.get<double>("lateness_ms"), 0.0);
  EXPECT_EQ(r.labels.at("team"), "core");
}

TEST(TcpCheck, ConnectOnlySucceedsWithoutReading) {
  Server s([](int) {});
  const auto r = check_one("{name: db, host: 127.0.0.1, port: " + std::to_string(s.port()) + "}");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "target"), "db");
  EXPECT_TRUE(is_null(r, "reply_matched"));
  EXPECT_EQ(*r.get<std::int64_t>("bytes_received"), 0);
}

TEST(TcpCheck, ReplyMismatchWhenTheServerSaysSomethingElse) {
  Server s(greet);
  const auto r =
      check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) + ", expect: \"^OK\"}");
  EXPECT_EQ(*r.get<bool>("success"), false);
  EXPECT_EQ(str(r, "error"), "reply_mismatch");
  EXPECT_EQ(*r.get<bool>("reply_matched"), false);
  EXPECT_EQ(*r.get<std::int64_t>("bytes_received"), 13);
}

TEST(TcpCheck, ClosedPortIsAConnectError) {
  const int port = closed_port();
  const auto r = check_one("{host: 127.0.0.1, port: " + std::to_string(port) + "}");
  EXPECT_EQ(str(r, "error"), "connect");
  EXPECT_NE(str(r, "error_message").find("refused"), std::string::npos) << str(r, "error_message");
  EXPECT_TRUE(is_null(r, "connect_ms"));
}

TEST(TcpCheck, SilentServerIsATimeout) {
  Server s([](int) {}, false, false);  // listens, never accepts, never answers
  const auto r = check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                           ", timeout: 200ms, send: \"hi\", expect: x}");
  EXPECT_EQ(str(r, "error"), "timeout");
  EXPECT_NE(str(r, "error_message").find("waiting for the reply"), std::string::npos)
      << str(r, "error_message");
  EXPECT_TRUE(is_null(r, "reply_matched"));
}

TEST(TcpCheck, InvalidNameIsADnsError) {
  const auto r = check_one("{host: nothing.invalid, port: 80}");
  EXPECT_EQ(str(r, "error"), "dns");
}

TEST(TcpCheck, LocalhostResolves) {
  Server s([](int) {});
  const auto r =
      check_one("{host: localhost, port: " + std::to_string(s.port()) + ", ip_version: \"4\"}");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "remote_ip"), "127.0.0.1");
  EXPECT_NE(r.get<double>("dns_ms"), nullptr);
}

TEST(TcpCheck, Ipv6Loopback) {
  Server s(echo, true);
  const auto r = check_one("{host: \"::1\", port: " + std::to_string(s.port()) +
                           ", send: ping, expect: ping}");
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "remote_ip"), "::1");
  EXPECT_EQ(str(r, "target"), "[::1]:" + std::to_string(s.port()));
  const auto r4 =
      check_one("{host: \"::1\", port: " + std::to_string(s.port()) + ", ip_version: \"4\"}");
  EXPECT_EQ(str(r4, "error"), "connect");
}

TEST(TcpCheck, TlsVerifiedWithCaFile) {
  Server s(tls_echo);
  const auto r =
      check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                ", tls: true, ca_file: " + cert().cert_path + ", send: hello, expect: hello}");
  expect_declared(r);
  EXPECT_EQ(*r.get<bool>("success"), true) << str(r, "error_message");
  EXPECT_EQ(str(r, "tls_version").rfind("TLSv1.", 0), 0U);
  EXPECT_EQ(str(r, "tls_cert_issuer"), "CN=webmon-test,O=webmon tests");
  ASSERT_NE(r.get<sdk::Timestamp>("tls_cert_not_after"), nullptr);
  EXPECT_EQ(r.get<sdk::Timestamp>("tls_cert_not_after")->micros, cert().not_after * 1'000'000);
  EXPECT_NE(r.get<double>("tls_ms"), nullptr);
}

TEST(TcpCheck, TlsWithServerName) {
  Server s(tls_echo);
  const auto ok =
      check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                ", tls: true, ca_file: " + cert().cert_path + ", server_name: localhost}");
  EXPECT_EQ(*ok.get<bool>("success"), true) << str(ok, "error_message");
  const auto wrong =
      check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                ", tls: true, ca_file: " + cert().cert_path + ", server_name: other.example}");
  EXPECT_EQ(str(wrong, "error"), "tls");
  EXPECT_NE(str(wrong, "error_message").find("verify failed"), std::string::npos)
      << str(wrong, "error_message");
}

TEST(TcpCheck, TlsUntrustedFailsUnlessVerifyIsOff) {
  Server s(tls_echo);
  const auto bad =
      check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) + ", tls: true}");
  EXPECT_EQ(str(bad, "error"), "tls");
  EXPECT_NE(str(bad, "error_message").find("certificate"), std::string::npos)
      << str(bad, "error_message");
  const auto off = check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                             ", tls: true, tls_verify: false}");
  EXPECT_EQ(*off.get<bool>("success"), true) << str(off, "error_message");
  EXPECT_EQ(str(off, "tls_cert_issuer"), "CN=webmon-test,O=webmon tests");
}

// Echoes one read back after holding it 300 ms (a slow server).
void slow_echo(int fd) {
  char buf[1024];
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) {
    return;
  }
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (n > 0) {
    (void)!::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
  }
}

TEST(TcpCheck, MaxResponseTimeFailsASlowReplyWithSlow) {
  Server s(slow_echo);
  const std::string at = "host: 127.0.0.1, port: " + std::to_string(s.port());
  const auto slow = check_one("{" + at + ", send: hi, expect: hi, max_response_time: 50ms}");
  expect_declared(slow);
  EXPECT_EQ(*slow.get<bool>("success"), false);
  EXPECT_EQ(str(slow, "error"), "slow");
  EXPECT_EQ(str(slow, "error_message").rfind("response took ", 0), 0U)
      << str(slow, "error_message");
  EXPECT_NE(str(slow, "error_message").find("max_response_time is 50 ms"), std::string::npos);
  EXPECT_EQ(*slow.get<bool>("reply_matched"), true);  // the reply itself was right
  const auto fine = check_one("{" + at + ", send: hi, expect: hi, max_response_time: 10s}");
  EXPECT_EQ(*fine.get<bool>("success"), true) << str(fine, "error_message");
  // A wrong reply is reported as such, before slowness.
  const auto wrong = check_one("{" + at + ", send: hi, expect: bye, max_response_time: 50ms}");
  EXPECT_EQ(str(wrong, "error"), "reply_mismatch");
}

TEST(TcpCheck, MinCertValidityFailsACertificateThatExpiresSoon) {
  Server s(tls_echo);
  const std::string at = "host: 127.0.0.1, port: " + std::to_string(s.port()) +
                         ", tls: true, ca_file: " + cert().cert_path;
  // The test certificate is valid for 30 days.
  const auto soon = check_one("{" + at + ", min_cert_validity: 60d}");
  expect_declared(soon);
  EXPECT_EQ(*soon.get<bool>("success"), false);
  EXPECT_EQ(str(soon, "error"), "cert_expiring");
  const auto tt = static_cast<std::time_t>(cert().not_after);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  EXPECT_EQ(str(soon, "error_message"), "certificate expires in 29 days, on " + std::string(date) +
                                            "; min_cert_validity is 60d");
  EXPECT_NE(soon.get<sdk::Timestamp>("tls_cert_not_after"), nullptr);
  const auto fine = check_one("{" + at + ", min_cert_validity: 7d}");
  EXPECT_EQ(*fine.get<bool>("success"), true) << str(fine, "error_message");
  // Without TLS there is no certificate to judge.
  Server plain(echo);
  const auto no_tls = check_one("{host: 127.0.0.1, port: " + std::to_string(plain.port()) +
                                ", min_cert_validity: 60d}");
  EXPECT_EQ(*no_tls.get<bool>("success"), true) << str(no_tls, "error_message");
}

TEST(TcpCheck, TlsAgainstAPlainServerIsATlsError) {
  Server s(greet);
  const auto r = check_one("{host: 127.0.0.1, port: " + std::to_string(s.port()) +
                           ", tls: true, tls_verify: false}");
  EXPECT_EQ(str(r, "error"), "tls");
}

TEST(TcpCheck, ManyTargetsRunConcurrently) {
  // 50 silent targets with a 300 ms timeout next to one echo target: the echo target's result
  // is not held up by the others (one loop, non-blocking sockets).
  Server silent([](int) {}, false, false);
  Server s(echo);
  std::string targets = "targets:\n";
  for (int i = 0; i < 50; ++i) {
    targets += "  - {name: silent" + std::to_string(i) +
               ", host: 127.0.0.1, port: " + std::to_string(silent.port()) +
               ", timeout: 300ms, expect: x}\n";
  }
  targets += "  - {name: echo, host: 127.0.0.1, port: " + std::to_string(s.port()) +
             ", send: a, expect: a}\n";
  wt::FakeContext ctx;
  const auto records = run_once(targets, ctx);
  ASSERT_EQ(records.size(), 51U);
  int timeouts = 0;
  for (const auto& r : records) {
    if (str(r, "target") == "echo") {
      EXPECT_EQ(*r.get<bool>("success"), true);
    } else {
      timeouts += str(r, "error") == "timeout" ? 1 : 0;
    }
  }
  EXPECT_EQ(timeouts, 50);
  EXPECT_EQ(ctx.count("checks"), 51U);
  EXPECT_EQ(ctx.count("checks_failed"), 50U);
}

TEST(TcpCheck, RefusedBatchesAreKeptAndEmittedLater) {
  Server s([](int) {});
  wt::FakeContext ctx;
  ctx.set_emit_result(sdk::EmitResult::refused);
  TcpCheckSource src(yaml("interval: 20ms\nflush_interval: 0s\ntargets:\n  - {host: 127.0.0.1, "
                          "port: " +
                          std::to_string(s.port()) + "}\n"),
                     ctx);
  ASSERT_TRUE(src.start(ctx, ctx).is_ok());
  std::atomic<bool> switched{false};
  std::thread flip([&] {
    // Accept again once checks have run while refused (counted by the source).
    while (ctx.count("checks") < 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ctx.set_emit_result(sdk::EmitResult::accepted);
    switched = true;
  });
  const auto st =
      wt::run_source(src, ctx, [&] { return switched.load() && ctx.records().size() >= 3; });
  flip.join();
  EXPECT_TRUE(st.is_ok());
  const auto records = ctx.records();
  ASSERT_GE(records.size(), 3U);  // the ones refused earlier were not lost
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_LT(records[i - 1].time, records[i].time) << "records keep their order";
  }
}

TEST(TcpCheckConfig, ErrorsNameTheTargetItem) {
  try {
    parse_settings(yaml("targets:\n  - {host: a, port: 1}\n  - {host: b, port: 70000}\n"));
    FAIL() << "no error";
  } catch (const sdk::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pipeline.yaml:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("targets[1].port"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("65535"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {host: a, port: 1, expect: \"(\"}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {host: a, port: 1, ip_version: \"5\"}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("targets:\n  - {host: a, port: 1}\n  - {host: a, port: 1}\n")),
               sdk::ConfigError);
  EXPECT_THROW(parse_settings(yaml("interval: 1s\n")), sdk::ConfigError);  // no target
  EXPECT_THROW(parse_settings(yaml("shard: {index: 2, count: 2}\ntargets:\n  - {host: a, port: "
                                   "1}\n")),
               sdk::ConfigError);
}

TEST(TcpCheckConfig, TargetsInheritPluginLevelOptions) {
  const auto s =
      parse_settings(yaml("timeout: 3s\nlabels: {env: prod, team: a}\nsend: x\n"
                          "targets:\n  - {host: a, port: 1, labels: {team: b}}\n"
                          "  - {host: b, port: 2, timeout: 1s, send: y}\n"));
  ASSERT_EQ(s.targets.size(), 2U);
  EXPECT_EQ(s.targets[0].timeout, std::chrono::seconds(3));
  EXPECT_EQ(s.targets[0].labels.at("env"), "prod");
  EXPECT_EQ(s.targets[0].labels.at("team"), "b");
  EXPECT_EQ(s.targets[0].send, "x");
  EXPECT_EQ(s.targets[0].interval, std::chrono::seconds(30));
  EXPECT_EQ(s.targets[1].timeout, std::chrono::seconds(1));
  EXPECT_EQ(s.targets[1].send, "y");
  EXPECT_EQ(s.targets[0].server_name, "a");
}

TEST(TcpCheckConfig, TargetsFileIsReadRelativeToThePipeline) {
  const std::string dir = cert().dir;
  {
    std::ofstream f(dir + "/targets.yaml");
    f << "- {host: a, port: 1}\n- {host: b, port: 2}\n- {host: c, port: 0}\n";
  }
  try {
    parse_settings(yaml("targets_file: targets.yaml\n", dir + "/pipeline.yaml"));
    FAIL() << "no error";
  } catch (const sdk::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("targets.yaml:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("targets_file[2].port"), std::string::npos) << e.what();
  }
  {
    std::ofstream f(dir + "/targets.yaml");
    f << "- {host: a, port: 1}\n- {host: b, port: 2, nope: 1}\n";
  }
  EXPECT_THROW(parse_settings(yaml("targets_file: targets.yaml\n", dir + "/pipeline.yaml")),
               sdk::ConfigError);
  {
    std::ofstream f(dir + "/targets.yaml");
    f << "- {host: a, port: 1}\n- {host: b, port: 2}\n";
  }
  const auto s = parse_settings(yaml("targets_file: targets.yaml\n", dir + "/pipeline.yaml"));
  EXPECT_EQ(s.targets.size(), 2U);
}

TEST(TcpCheckConfig, ShardsPartitionTheTargets) {
  std::string targets = "targets:\n";
  for (int i = 0; i < 40; ++i) {
    targets += "  - {name: t" + std::to_string(i) + ", host: a, port: 1}\n";
  }
  std::set<std::string> seen;
  std::size_t total = 0;
  for (int index = 0; index < 3; ++index) {
    const auto s =
        parse_settings(yaml("shard: {index: " + std::to_string(index) + ", count: 3}\n" + targets));
    EXPECT_EQ(s.targets_total, 40U);
    for (const auto& t : s.targets) {
      seen.insert(t.name);
      EXPECT_TRUE((sdk::Shard{index, 3}).contains(t.name));
    }
    total += s.targets.size();
  }
  EXPECT_EQ(total, 40U);
  EXPECT_EQ(seen.size(), 40U);
}

}  // namespace
}  // namespace webmon::plugins::tcp_check
