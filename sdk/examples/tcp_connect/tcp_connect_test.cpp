// Unit tests of the tcp_connect example with the SDK's test kit (no agent): real connections
// to a listening socket on 127.0.0.1 on the schedule's grid, a refused connection, and option
// errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace sdk = webmon::sdk;
namespace wt = webmon::sdk::testing;

/// A TCP socket bound to 127.0.0.1 on a free port; listening or not.
class LocalPort {
 public:
  explicit LocalPort(bool listening) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    if (listening) {
      EXPECT_EQ(listen(fd_, 64), 0);
    }
  }
  ~LocalPort() { close(fd_); }
  LocalPort(const LocalPort&) = delete;
  LocalPort& operator=(const LocalPort&) = delete;
  [[nodiscard]] std::string port() const { return std::to_string(port_); }

 private:
  int fd_;
  int port_ = 0;
};

std::vector<sdk::Record> run(const std::string& port, std::size_t n, wt::FakeContext& ctx) {
  const auto config = wt::config({{"host", "127.0.0.1"}, {"port", port}, {"interval", "10ms"}});
  auto src = wt::make_source(webmon_plugin_entry(), config, ctx);
  EXPECT_TRUE(src->start(ctx, ctx));
  const sdk::Status s = wt::run_source(*src, ctx, [&] { return ctx.records().size() >= n; });
  EXPECT_TRUE(s) << s.message();
  return ctx.records();
}

TEST(TcpConnect, RecordsASuccessfulConnectOnEveryInterval) {
  const LocalPort server(true);
  wt::FakeContext ctx;
  const auto records = run(server.port(), 3, ctx);
  ASSERT_GE(records.size(), 3U);
  for (const auto& r : records) {
    EXPECT_EQ(r.kind, "tcp_connect");
    EXPECT_EQ(r.id.size(), 36U);
    EXPECT_GT(r.time.micros, 0);
    EXPECT_EQ(*r.get<std::string>("target"), "127.0.0.1:" + server.port());
    EXPECT_EQ(*r.get<bool>("success"), true);
    ASSERT_NE(r.get<double>("connect_ms"), nullptr);
    EXPECT_GE(*r.get<double>("connect_ms"), 0.0);
    EXPECT_EQ(sdk::type_of(*r.find("error")), sdk::ValueType::null);
    EXPECT_EQ(sdk::type_of(*r.find("error_message")), sdk::ValueType::null);
  }
  EXPECT_NE(records[0].id, records[1].id);
  // `time` is the scheduled slot: consecutive attempts are whole intervals (10 ms) apart.
  for (std::size_t i = 1; i < records.size(); ++i) {
    const std::int64_t gap = records[i].time.micros - records[i - 1].time.micros;
    EXPECT_GT(gap, 0);
    EXPECT_EQ(gap % 10'000, 0) << gap << " µs";
  }
}

TEST(TcpConnect, RecordsWhyAConnectFailed) {
  const LocalPort closed(false);  // bound, not listening: the kernel refuses connections
  wt::FakeContext ctx;
  const auto records = run(closed.port(), 1, ctx);
  ASSERT_GE(records.size(), 1U);
  EXPECT_EQ(*records[0].get<bool>("success"), false);
  EXPECT_EQ(*records[0].get<std::string>("error"), "connect");
  EXPECT_EQ(*records[0].get<std::string>("error_message"), "Connection refused");
}

TEST(TcpConnect, DeclaresItsKindWithTypedFields) {
  const sdk::PluginDescriptor* d = webmon_plugin_entry();
  ASSERT_EQ(d->emit_count, 1U);
  EXPECT_STREQ(d->emits[0].name, "tcp_connect");
  ASSERT_EQ(d->emits[0].field_count, 5U);
  // The fields every check starts with (sdk::check_fields), then its own.
  const char* names[] = {"target", "success", "error", "error_message", "connect_ms"};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_STREQ(d->emits[0].fields[i].name, names[i]);
  }
  EXPECT_EQ(d->emits[0].fields[1].type, sdk::FieldType::boolean);
  EXPECT_TRUE(d->emits[0].fields[2].nullable);
  EXPECT_STREQ(d->emits[0].key_field, "target");
  EXPECT_EQ(d->emits[0].fields[4].type, sdk::FieldType::float64);
  EXPECT_STREQ(d->emits[0].fields[4].unit, "ms");
}

TEST(TcpConnect, RefusesBadOptionsNamingThem) {
  wt::FakeContext ctx;
  auto error = [&](std::initializer_list<std::pair<std::string, std::string>> c) {
    try {
      (void)wt::make_source(webmon_plugin_entry(), wt::config(c), ctx);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error({{"host", "a"}, {"port", "70000"}}),
            "test.yaml:3:3: option 'port' must be at most 65535, got 70000");
  EXPECT_EQ(error({{"host", "a"}, {"port", "0"}}),
            "test.yaml:3:3: option 'port' must be at least 1, got 0");
  EXPECT_EQ(error({{"host", "a"}, {"port", "80"}, {"interval", "1ms"}}),
            "test.yaml:4:3: option 'interval' must be at least 10ms, got 1ms");
  EXPECT_EQ(error({{"port", "80"}}), "test.yaml:1:1: missing required option 'host'");
}

}  // namespace
