// tcp_connect: an example source plugin, a complete TCP check. Every `interval` it connects to
// host:port and emits one `tcp_connect` record: whether the connection was established, how
// long connect() took, and why it failed. The options are declared once (defaults, bounds and a
// binding to the Options struct: load_options() fills and checks it); the record kind is
// declared with typed fields; the timer loop is ctx().wait_for_stop(), so a stop ends it at
// once. An attempt never outlasts the interval: it is also the connect timeout.
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
    {.name = "host", .type = sdk::OptionType::string, .default_value = nullptr, .required = true,
     .description = "host name or address", .assign = sdk::bind<&Options::host>()},
    {.name = "port", .type = sdk::OptionType::integer, .default_value = nullptr, .required = true,
     .description = "TCP port", .min = "1", .max = "65535", .assign = sdk::bind<&Options::port>()},
    {.name = "interval", .type = sdk::OptionType::duration, .default_value = "10s",
     .required = false, .description = "time between attempts, and the connect timeout",
     .min = "10ms", .max = "1h", .assign = sdk::bind<&Options::interval>()}};
constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "host:port"},
    {"success", sdk::FieldType::boolean, false, "", "the connection was established"},
    {"connect_ms", sdk::FieldType::float64, false, "ms", "time connect() took"},
    {"error", sdk::FieldType::string, true, "", "why it failed; null on success"}};
constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("tcp_connect", 1, kFields, "target", "one TCP connection attempt")};

class TcpConnect final : public sdk::Source {
 public:
  TcpConnect(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)) {}

 protected:
  sdk::Status on_run() override {
    do {
      sdk::Record r = sdk::make_record("tcp_connect");
      const sdk::Stopwatch watch;
      const std::string error = connect_once();
      r.fields = {{"target", o_.host + ":" + std::to_string(o_.port)},
                  {"success", error.empty()},
                  {"connect_ms", watch.elapsed_ms()},
                  {"error", error.empty() ? sdk::Value() : error}};
      sdk::emit_one(ctx(), emitter(), std::move(r));
    } while (!ctx().wait_for_stop(o_.interval));
    return sdk::Status::ok();
  }

 private:
  std::string connect_once() const {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = getaddrinfo(o_.host.c_str(), std::to_string(o_.port).c_str(), &hints, &res)) {
      return gai_strerror(rc);
    }
    const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(o_.interval).count();
    const timeval timeout{.tv_sec = us / 1000000, .tv_usec = us % 1000000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);  // bounds connect()
    std::string error = connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? "" : strerror(errno);
    close(fd);
    freeaddrinfo(res);
    return error;
  }
  Options o_;
};

WEBMON_PLUGIN_SOURCE(TcpConnect, "tcp_connect", "1.0.0", "Connects to host:port on an interval",
                     kOptions, sdk::emits(kKinds))
