// The glue between a librdkafka client and the agent: librdkafka's log lines and error events
// go to the component's logger (repeated errors rate-limited, TLS/authentication failures
// remembered), and a start-up check that tells a broken TLS/SASL setup (fatal, clear message)
// from brokers that are merely unreachable (logged, the client keeps retrying).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "webmon/kafka/connection.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::kafka {

struct ClientDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
using ClientPtr = std::unique_ptr<rd_kafka_t, ClientDeleter>;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

/// Per-client callbacks state. install() makes it the client's opaque; it must outlive the
/// client. `owner` is free for the plugin's own callbacks (delivery reports, rebalances).
class ClientHooks {
 public:
  ClientHooks(sdk::Context& ctx, std::string role) : ctx_(ctx), role_(std::move(role)) {}
  ClientHooks(const ClientHooks&) = delete;
  ClientHooks& operator=(const ClientHooks&) = delete;

  /// Sets opaque, log and error callbacks on `conf`.
  void install(rd_kafka_conf_t* conf);

  /// The first TLS / authentication error seen ("" when none).
  [[nodiscard]] std::string auth_error() const;
  /// Whether librdkafka raised a fatal error (the client is unusable).
  [[nodiscard]] bool fatal() const noexcept { return fatal_.load(); }

  [[nodiscard]] sdk::Context& ctx() const noexcept { return ctx_; }
  [[nodiscard]] const std::string& role() const noexcept { return role_; }
  void* owner = nullptr;

  static ClientHooks& of(rd_kafka_t* rk) noexcept {
    return *static_cast<ClientHooks*>(rd_kafka_opaque(rk));
  }

 private:
  static void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf);
  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void on_error(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason);
  /// Logs at most once per 10 s per key; returns how many were suppressed before.
  bool should_log(int key, std::uint64_t& suppressed);

  sdk::Context& ctx_;
  std::string role_;
  mutable std::mutex mu_;
  std::string auth_error_;
  std::atomic<bool> fatal_{false};
  struct Rate {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::map<int, Rate> rates_;
};

/// Creates a client; throws std::runtime_error with librdkafka's reason. Takes `conf`.
ClientPtr make_client(rd_kafka_type_t type, ConfPtr conf);

/// Waits up to `timeout` for a metadata answer from the brokers, serving the client's main
/// queue (so call it before rd_kafka_poll_set_consumer). Returns an error naming the cause when
/// TLS or authentication fails; logs a warning and returns ok when brokers are unreachable.
sdk::Status check_connection(rd_kafka_t* rk, ClientHooks& hooks, const Connection& conn,
                             std::chrono::milliseconds timeout);

/// One message to produce. `rkt` or `topic` names the topic; `key.data() == nullptr` means no
/// key; `headers` passes to librdkafka on success; `copy` copies value and key (else the value
/// must stay valid until the delivery report).
struct Produce {
  rd_kafka_topic_t* rkt = nullptr;
  const char* topic = nullptr;
  std::string_view value;
  std::string_view key;
  rd_kafka_headers_t* headers = nullptr;
  void* opaque = nullptr;
  bool copy = true;
  /// Wait while librdkafka's local queue is full (RD_KAFKA_MSG_F_BLOCK; delivery reports must
  /// be served by another thread) instead of failing with RD_KAFKA_RESP_ERR__QUEUE_FULL.
  bool block = false;
};
/// rd_kafka_produceva without the variadic macros; returns the error code.
rd_kafka_resp_err_t produce(rd_kafka_t* rk, const Produce& p) noexcept;

/// True for delivery errors that no retry can fix (message too large, invalid record).
bool is_permanent_produce_error(rd_kafka_resp_err_t err) noexcept;

/// Whether `name` is a legal Kafka topic name: 1 to 249 characters of [a-zA-Z0-9._-], not "."
/// or "..". (Kafka refuses anything else, so such a name is a configuration error.)
bool valid_topic_name(std::string_view name) noexcept;

}  // namespace webmon::plugins::kafka
