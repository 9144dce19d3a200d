// librdkafka logs and errors into the agent's logger, the start-up connection check, and error
// classification (see client.hpp).
#include "webmon/kafka/client.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace webmon::plugins::kafka {
namespace {

constexpr auto kLogEvery = std::chrono::seconds(10);

sdk::LogLevel level_of(int syslog_level) {
  if (syslog_level <= 3) {
    return sdk::LogLevel::error;
  }
  if (syslog_level == 4) {
    return sdk::LogLevel::warn;
  }
  if (syslog_level <= 6) {
    return sdk::LogLevel::info;
  }
  return sdk::LogLevel::debug;
}

bool is_auth_error(rd_kafka_resp_err_t err, std::string_view reason) {
  // A broker refusing our client certificate shows up as a transport error carrying a TLS alert.
  if (err == RD_KAFKA_RESP_ERR__TRANSPORT &&
      (reason.find("SSL routines") != std::string_view::npos ||
       reason.find("alert") != std::string_view::npos)) {
    return true;
  }
  return err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
         err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
         err == RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM ||
         err == RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE;
}

}  // namespace

void ClientHooks::install(rd_kafka_conf_t* conf) {
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_log_cb(conf, &ClientHooks::log_cb);
  rd_kafka_conf_set_error_cb(conf, &ClientHooks::error_cb);
}

std::string ClientHooks::auth_error() const {
  std::lock_guard lock(mu_);
  return auth_error_;
}

void ClientHooks::log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* self = static_cast<ClientHooks*>(rd_kafka_opaque(rk));
  if (self == nullptr) {
    return;
  }
  // Connection failures also arrive through error_cb (rate-limited there): keep these at debug.
  const bool dup = fac != nullptr && std::string_view(fac) == "FAIL";
  const sdk::LogLevel l = dup ? sdk::LogLevel::debug : level_of(level);
  if (!self->ctx_.log_enabled(l)) {
    return;
  }
  self->ctx_.log(l, "librdkafka " + self->role_ + " [" + std::string(fac != nullptr ? fac : "") +
                        "]: " + std::string(buf != nullptr ? buf : ""));
}

void ClientHooks::error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<ClientHooks*>(opaque);
  if (self != nullptr) {
    self->on_error(rk, static_cast<rd_kafka_resp_err_t>(err), reason != nullptr ? reason : "");
  }
}

bool ClientHooks::should_log(int key, std::uint64_t& suppressed) {
  std::lock_guard lock(mu_);
  Rate& r = rates_[key];
  const auto now = std::chrono::steady_clock::now();
  if (r.last != std::chrono::steady_clock::time_point{} && now - r.last < kLogEvery) {
    ++r.suppressed;
    return false;
  }
  r.last = now;
  suppressed = std::exchange(r.suppressed, 0);
  return true;
}

void ClientHooks::on_error(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason) {
  ctx_.counter("kafka_errors").add();
  std::string text = reason;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    text = std::string(rd_kafka_err2name(orig)) + ": " + buf;
    fatal_ = true;
  }
  const bool auth = is_auth_error(err, text);
  if (auth) {
    std::lock_guard lock(mu_);
    if (auth_error_.empty()) {
      auth_error_ = text;
    }
  }
  std::uint64_t suppressed = 0;
  if (!should_log(static_cast<int>(err), suppressed)) {
    return;
  }
  const bool serious = err == RD_KAFKA_RESP_ERR__FATAL || auth;
  std::string msg = "kafka " + role_ + " error (" + rd_kafka_err2name(err) + "): " + text;
  if (suppressed > 0) {
    msg += " (" + std::to_string(suppressed) + " similar errors in the last " +
           std::to_string(kLogEvery.count()) + " s not logged)";
  }
  ctx_.log(serious ? sdk::LogLevel::error : sdk::LogLevel::warn, msg);
}

ClientPtr make_client(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    throw std::runtime_error(std::string("cannot create the Kafka client: ") + errstr);
  }
  (void)conf.release();  // owned by rk now
  return ClientPtr(rk);
}

sdk::Status check_connection(rd_kafka_t* rk, ClientHooks& hooks, const Connection& conn,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (;;) {
    rd_kafka_poll(rk, 0);
    const std::string auth = hooks.auth_error();
    if (!auth.empty()) {
      std::string hint;
      if (conn.security_protocol == "SSL" || conn.security_protocol == "SASL_SSL") {
        hint = " (check ca_file, cert_file and key_file";
        hint += conn.security_protocol == "SASL_SSL" ? ", sasl_username and sasl_password)" : ")";
      } else if (conn.security_protocol == "SASL_PLAINTEXT") {
        hint = " (check sasl_mechanism, sasl_username and sasl_password)";
      }
      return sdk::Status::error("cannot connect to Kafka (" + conn.describe() + "): " + auth +
                                hint);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    const rd_kafka_metadata_t* md = nullptr;
    last = rd_kafka_metadata(rk, 0, nullptr, &md,
                             static_cast<int>(std::min<std::int64_t>(left.count(), 500)));
    if (last == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      // An authentication failure may race with the answer of another broker; look once more.
      rd_kafka_poll(rk, 0);
      return sdk::Status::ok();
    }
    if (last != RD_KAFKA_RESP_ERR__TIMED_OUT && last != RD_KAFKA_RESP_ERR__TRANSPORT) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  hooks.ctx().warn("Kafka (" + conn.describe() + ") not reachable within " +
                   std::to_string(timeout.count()) + " ms (" + rd_kafka_err2str(last) +
                   "); continuing, the client keeps retrying and nothing is dropped (if the "
                   "address is wrong, check the option 'brokers'; conf/*.yaml take it from "
                   "KAFKA_HOST)");
  return sdk::Status::ok();
}

rd_kafka_resp_err_t produce(rd_kafka_t* rk, const Produce& p) noexcept {
  rd_kafka_vu_t vu[6];
  std::size_t n = 0;
  if (p.rkt != nullptr) {
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = p.rkt;
  } else {
    vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[n++].u.cstr = p.topic;
  }
  vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[n].u.mem.ptr = const_cast<char*>(p.value.data());
  vu[n++].u.mem.size = p.value.size();
  if (p.key.data() != nullptr) {
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = const_cast<char*>(p.key.data());
    vu[n++].u.mem.size = p.key.size();
  }
  vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[n++].u.i = (p.copy ? RD_KAFKA_MSG_F_COPY : 0) | (p.block ? RD_KAFKA_MSG_F_BLOCK : 0);
  if (p.headers != nullptr) {
    vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[n++].u.headers = p.headers;
  }
  vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vu[n++].u.ptr = p.opaque;
  rd_kafka_error_t* e = rd_kafka_produceva(rk, vu, n);
  if (e == nullptr) {
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  const rd_kafka_resp_err_t code = rd_kafka_error_code(e);
  rd_kafka_error_destroy(e);
  return code;
}

bool is_permanent_produce_error(rd_kafka_resp_err_t err) noexcept {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return true;
    default:
      return false;
  }
}

bool valid_topic_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace webmon::plugins::kafka
