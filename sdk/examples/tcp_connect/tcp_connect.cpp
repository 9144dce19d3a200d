// tcp_connect: an example source plugin, a complete TCP check. On the shared check schedule
// (sdk::CheckSource: a slot every `interval`, spread, no overlap) it connects to host:port and
// emits one `tcp_connect` record per attempt: whether the connection was established, how long
// connect() took, and why it failed. The options are declared once (defaults, bounds and a
// binding to the Options struct: load_options() fills and checks it); the record kind is
// declared with typed fields. An attempt never outlasts the interval: it is also the timeout.
#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <webmon/sdk/sdk.hpp>

namespace sdk = webmon::sdk;

struct Options {
  std::string host;
  int port = 0;
  std::chrono::milliseconds interval{};
};
constexpr sdk::OptionSpec kOptions[] = {
    sdk::option<&Options::host>("host", "host name or address", {.required = true}),
    sdk::option<&Options::port>("port", "TCP port", {.required = true, .min = "1", .max = "65535"}),
    sdk::option<&Options::interval>("interval", "time between attempts, and the connect timeout",
                                    {.default_value = "10s", .min = "10ms", .max = "1h"})};
// target, success, error (class) and error_message come first (what alert and status_page read).
constexpr auto kFields = sdk::check_fields(
    {{"connect_ms", sdk::FieldType::float64, false, "ms", "time connect() took"}});
constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("tcp_connect", 1, kFields, "target", "one TCP connection attempt")};

class TcpConnect final : public sdk::CheckSource {
 public:
  TcpConnect(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : CheckSource(kKinds[0]), o_(sdk::load_options<Options>(config, kOptions)) {
    add_target(o_.host + ":" + std::to_string(o_.port), o_.interval);
  }

 protected:
  void check(const Due& /*due*/, sdk::Record& r) override {
    addrinfo* res = nullptr;
    const sdk::Stopwatch watch;
    const int rc = getaddrinfo(o_.host.c_str(), std::to_string(o_.port).c_str(), nullptr, &res);
    std::string error = rc != 0 ? gai_strerror(rc) : "";
    if (rc == 0) {
      const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const timeval limit{o_.interval.count() / 1000, o_.interval.count() % 1000 * 1000};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);  // bounds connect()
      error = connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? "" : strerror(errno);
      close(fd);
      freeaddrinfo(res);
    }
    r.add("success", error.empty());  // r already has kind, id, time (the slot) and target
    r.add("error", error.empty() ? sdk::Value() : sdk::Value(rc != 0 ? "resolve" : "connect"));
    r.add("error_message", error.empty() ? sdk::Value() : error);
    r.add("connect_ms", watch.elapsed_ms());
  }

 private:
  Options o_;
};

WEBMON_PLUGIN_SOURCE(TcpConnect, "tcp_connect", "1.0.0", "Connects to host:port on an interval",
                     kOptions, sdk::emits(kKinds))
