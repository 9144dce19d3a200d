// tcp_check: configuration and the check loop.
//
// One thread runs every check: sdk::Scheduler says which target is due (interval grid with
// spread, no overlap, lateness, skipped slots, once), each check is a small state machine on a
// non-blocking socket (resolve → connect → TLS → send → read until `expect` matches), and one
// poll() waits for all sockets, the resolver and the stop signal. The whole check is bounded
// by the target's timeout.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tcp_check.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pcre2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "check_common.hpp"
#include "tcp_check_kind.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/scheduler.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::plugins::tcp_check {
namespace {

namespace cc = check_common;
using Clock = std::chrono::steady_clock;
using sdk::ConfigNode;
using sdk::Value;

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

struct Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* md = nullptr;
  ~Regex() {
    pcre2_match_data_free(md);
    pcre2_code_free(code);
  }
};

std::unique_ptr<Regex> compile_regex(const std::string& pattern, std::string* error) {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto r = std::make_unique<Regex>();
  r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err,
                          &off, nullptr);
  if (r->code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    *error = std::string(reinterpret_cast<const char*>(buf)) + " at offset " + std::to_string(off);
    return nullptr;
  }
  r->md = pcre2_match_data_create_from_pattern(r->code, nullptr);
  return r;
}

bool regex_matches(const Regex& r, std::string_view text) {
  return pcre2_match(r.code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, r.md,
                     nullptr) >= 0;
}

std::string issuer_text(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) {
    return {};
  }
  X509_NAME_print_ex(bio, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(std::max(0L, len)));
  BIO_free(bio);
  return out;
}

std::optional<sdk::Timestamp> asn1_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return std::nullopt;
  }
  return sdk::Timestamp{static_cast<std::int64_t>(timegm(&tm)) * 1'000'000};
}

std::string openssl_error() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

Settings parse_settings(const ConfigNode& config) {
  // Targets first, so that an error names the item: "option 'targets[3].port' ...".
  std::vector<TargetOptions> listed;
  if (const ConfigNode* list = config.find("targets"); list != nullptr && !list->is_null()) {
    if (!list->is_list()) {
      list->fail("option 'targets': expected a list of maps");
    }
    listed = cc::load_items<TargetOptions>(*list, kTargetOptions, "targets");
  }
  const auto opts = sdk::load_options<Options>(config, kOptions);
  Settings s;
  s.max_concurrency = static_cast<std::size_t>(opts.max_concurrency);
  s.batch_size = static_cast<std::size_t>(opts.batch_size);
  s.flush_interval = opts.flush_interval;
  s.once = opts.once;

  std::vector<std::pair<TargetOptions, const ConfigNode*>> items;
  if (const ConfigNode* list = config.find("targets"); list != nullptr && list->is_list()) {
    for (std::size_t i = 0; i < listed.size(); ++i) {
      items.emplace_back(listed[i], &list->items()[i]);
    }
  }
  ConfigNode file_list;
  if (opts.targets_file) {
    file_list = cc::load_targets_file(*config.find("targets_file"), kTargetOptions);
    auto loaded = cc::load_items<TargetOptions>(file_list, kTargetOptions, "targets_file");
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      items.emplace_back(std::move(loaded[i]), &file_list.items()[i]);
    }
  }
  // An empty targets_file checks nothing (the source idles), so a pipeline can keep the
  // source with no targets of this kind; without targets_file a target is required.
  if (items.empty() && !opts.targets_file) {
    config.fail("tcp_check needs at least one target (option 'targets' or 'targets_file')");
  }
  const TargetOptions& d = opts.defaults;
  std::set<std::string, std::less<>> names;
  std::vector<Target> all;
  for (auto& [o, node] : items) {
    Target t;
    t.host = o.host;
    t.port = static_cast<int>(o.port);
    const bool v6_literal = t.host.find(':') != std::string::npos;
    t.name = !o.name.empty()
                 ? o.name
                 : (v6_literal ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port);
    if (t.host.empty()) {
      node->find("host")->fail("option 'host' must not be empty");
    }
    if (!names.insert(t.name).second) {
      node->fail("target '" + t.name +
                 "': another target has the same name (names must be unique; set 'name')");
    }
    t.interval = o.interval.value_or(*d.interval);
    t.timeout = o.timeout.value_or(*d.timeout);
    const std::string ipv = o.ip_version.value_or(*d.ip_version);
    t.family = ipv == "4" ? AF_INET : ipv == "6" ? AF_INET6 : AF_UNSPEC;
    t.send = o.send ? *o.send : d.send.value_or("");
    t.expect = o.expect ? *o.expect : d.expect.value_or("");
    t.max_reply_size = static_cast<std::size_t>(o.max_reply_size.value_or(*d.max_reply_size));
    t.tls = o.tls.value_or(*d.tls);
    t.tls_verify = o.tls_verify.value_or(*d.tls_verify);
    t.ca_file = o.ca_file ? *o.ca_file : d.ca_file.value_or("");
    t.server_name = o.server_name ? *o.server_name : d.server_name.value_or("");
    if (t.server_name.empty() && !is_ip_literal(t.host)) {
      t.server_name = t.host;
    }
    t.max_response_time = o.max_response_time ? o.max_response_time : d.max_response_time;
    t.min_cert_validity = o.min_cert_validity ? o.min_cert_validity : d.min_cert_validity;
    t.labels = d.labels;
    for (const auto& [k, v] : o.labels) {
      t.labels[k] = v;
    }
    if (!t.expect.empty()) {
      std::string error;
      if (!compile_regex(t.expect, &error)) {
        const ConfigNode* at =
            node->find("expect") != nullptr ? node->find("expect") : config.find("expect");
        at->fail("option 'expect': invalid PCRE2 regular expression: " + error);
      }
    }
    if (!t.ca_file.empty()) {
      const ConfigNode* at =
          node->find("ca_file") != nullptr ? node->find("ca_file") : config.find("ca_file");
      t.ca_file = cc::resolve_path(t.ca_file, *at);
      if (::access(t.ca_file.c_str(), R_OK) != 0) {
        at->fail("option 'ca_file': cannot read '" + t.ca_file + "'");
      }
    }
    all.push_back(std::move(t));
  }
  s.targets_total = all.size();
  try {
    opts.shard.check();
  } catch (const std::invalid_argument& e) {
    config.find("shard")->fail(e.what());
  }
  s.targets = sdk::filter_shard(std::move(all), opts.shard,
                                [](const Target& t) { return std::string_view(t.name); });
  return s;
}

// ---------------------------------------------------------------------------------------------
// The check loop

struct TcpCheckSource::Engine {
  enum class Phase { resolving, connecting, handshaking, sending, reading };

  struct Check {
    std::size_t target = 0;
    sdk::Scheduler::Slot slot;
    Clock::time_point started{};
    Clock::time_point deadline{};
    Phase phase = Phase::resolving;
    std::uint64_t id = 0;
    std::vector<cc::Resolver::Address> addresses;
    std::size_t next_address = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    short events = 0;
    std::optional<double> dns_ms, connect_ms, tls_ms, reply_ms;
    Clock::time_point t_connect_start{}, t_connected{}, t_ready{};
    std::string remote_ip;
    std::size_t sent = 0;
    std::string reply;
    std::optional<std::string> tls_version, cert_issuer;
    std::optional<sdk::Timestamp> cert_not_after;
    std::string last_connect_error;
  };

  Engine(const Settings& s, sdk::Context& c, sdk::Emitter& e)
      : settings(s), ctx(c), output(e, s.batch_size, s.flush_interval), sched(s.once), resolver(4) {
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    for (const auto& t : settings.targets) {
      sched.add(t.name, std::chrono::duration_cast<sdk::Scheduler::Duration>(t.interval));
      std::string error;
      regexes.push_back(t.expect.empty() ? nullptr : compile_regex(t.expect, &error));
      tls_ctx.push_back(t.tls ? make_tls_ctx(t) : nullptr);
    }
    checks_counter = &ctx.counter("checks");
    failed_counter = &ctx.counter("checks_failed");
    skipped_counter = &ctx.counter("checks_skipped_overlap");
    aborted_counter = &ctx.counter("checks_aborted");
    delayed_counter = &ctx.counter("checks_delayed_downstream");
  }
  ~Engine() {
    for (auto& [id, c] : in_flight) {
      close_check(*c);
    }
    for (SSL_CTX* t : tls_ctx) {
      SSL_CTX_free(t);
    }
    ::close(wake[0]);
    ::close(wake[1]);
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Settings& settings;
  sdk::Context& ctx;
  cc::Output output;
  sdk::Scheduler sched;
  cc::Resolver resolver;
  int wake[2] = {-1, -1};
  std::vector<std::unique_ptr<Regex>> regexes;
  std::vector<SSL_CTX*> tls_ctx;
  std::map<std::uint64_t, std::unique_ptr<Check>> in_flight;
  std::uint64_t next_id = 0;
  sdk::Counter* checks_counter = nullptr;
  sdk::Counter* failed_counter = nullptr;
  sdk::Counter* skipped_counter = nullptr;
  sdk::Counter* aborted_counter = nullptr;
  sdk::Counter* delayed_counter = nullptr;
  std::size_t delayed_seen = 0;
  sdk::LogLimiter limiter;

  static SSL_CTX* make_tls_ctx(const Target& t) {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c == nullptr) {
      throw std::runtime_error("SSL_CTX_new failed: " + openssl_error());
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (t.tls_verify) {
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      const int ok = t.ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(c)
                         : SSL_CTX_load_verify_locations(c, t.ca_file.c_str(), nullptr);
      if (ok != 1) {
        const std::string err = openssl_error();
        SSL_CTX_free(c);
        throw std::runtime_error("target '" + t.name + "': cannot load CA certificates" +
                                 (t.ca_file.empty() ? "" : " from '" + t.ca_file + "'") + ": " +
                                 err);
      }
    } else {
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    }
    return c;
  }

  static void close_check(Check& c) {
    if (c.ssl != nullptr) {
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) {
      ::close(c.fd);
      c.fd = -1;
    }
  }

  // --- starting ---------------------------------------------------------------------------

  void begin(const sdk::Scheduler::Slot& slot, Clock::time_point now) {
    const Target& t = settings.targets[slot.target];
    auto c = std::make_unique<Check>();
    c->target = slot.target;
    c->slot = slot;
    c->started = now;
    c->deadline = now + t.timeout;
    c->id = ++next_id;
    Check& ref = *c;
    in_flight.emplace(c->id, std::move(c));
    if (cc::reserved_invalid_name(t.host)) {
      finish(ref, "dns", "host '" + t.host + "' does not resolve (.invalid)", now);
      return;
    }
    if (auto addrs = cc::Resolver::numeric(t.host, t.port, t.family, SOCK_STREAM)) {
      ref.dns_ms = 0.0;
      ref.addresses = std::move(*addrs);
      connect_next(ref, now);
      return;
    }
    if (is_ip_literal(t.host)) {
      finish(ref, "connect",
             "address " + t.host + " is not of ip_version " + (t.family == AF_INET ? "4" : "6"),
             now);
      return;
    }
    ref.phase = Phase::resolving;
    resolver.submit(ref.id, t.host, t.port, t.family, SOCK_STREAM);
  }

  void on_resolved(cc::Resolver::Result r, Clock::time_point now) {
    auto it = in_flight.find(r.id);
    if (it == in_flight.end()) {
      return;  // timed out meanwhile
    }
    Check& c = *it->second;
    c.dns_ms = cc::ms_between(c.started, now);
    if (r.addresses.empty()) {
      finish(c, "dns", "cannot resolve '" + settings.targets[c.target].host + "': " + r.error, now);
      return;
    }
    c.addresses = std::move(r.addresses);
    connect_next(c, now);
  }

  // Tries the next address; fails the check (connect) when none is left.
  void connect_next(Check& c, Clock::time_point now) {
    close_check(c);
    while (c.next_address < c.addresses.size()) {
      const auto& a = c.addresses[c.next_address++];
      c.remote_ip = cc::address_text(a.addr);
      c.t_connect_start = now;
      c.fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        c.last_connect_error = std::string("socket: ") + std::strerror(errno);
        continue;
      }
      const int one = 1;
      ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0) {
        connected(c, now);
        return;
      }
      if (errno == EINPROGRESS) {
        c.phase = Phase::connecting;
        c.events = POLLOUT;
        return;
      }
      c.last_connect_error = c.remote_ip + ": " + std::strerror(errno);
      ::close(c.fd);
      c.fd = -1;
    }
    finish(c, "connect",
           "cannot connect to " + settings.targets[c.target].host + " port " +
               std::to_string(settings.targets[c.target].port) + ": " + c.last_connect_error,
           now);
  }

  void connected(Check& c, Clock::time_point now) {
    const Target& t = settings.targets[c.target];
    c.t_connected = now;
    c.connect_ms = cc::ms_between(c.t_connect_start, now);
    if (t.tls) {
      c.ssl = SSL_new(tls_ctx[c.target]);
      if (c.ssl == nullptr) {
        finish(c, "other", "SSL_new failed: " + openssl_error(), now);
        return;
      }
      SSL_set_fd(c.ssl, c.fd);
      if (!t.server_name.empty()) {
        // SSL_set_tlsext_host_name() without its C cast.
        SSL_ctrl(c.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(t.server_name.c_str()));
      }
      if (t.tls_verify) {
        if (!t.server_name.empty()) {
          SSL_set1_host(c.ssl, t.server_name.c_str());
        } else {
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl), t.host.c_str());
        }
      }
      c.phase = Phase::handshaking;
      handshake(c, now);
      return;
    }
    ready(c, now);
  }

  void handshake(Check& c, Clock::time_point now) {
    ERR_clear_error();
    const int rc = SSL_connect(c.ssl);
    if (rc == 1) {
      c.tls_ms = cc::ms_between(c.t_connected, now);
      c.tls_version = SSL_get_version(c.ssl);
      if (X509* cert = SSL_get1_peer_certificate(c.ssl)) {
        c.cert_not_after = asn1_time(X509_get0_notAfter(cert));
        c.cert_issuer = issuer_text(cert);
        X509_free(cert);
      }
      ready(c, now);
      return;
    }
    const int err = SSL_get_error(c.ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
      c.events = POLLIN;
      return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      c.events = POLLOUT;
      return;
    }
    std::string msg = "TLS handshake failed";
    const long verify = SSL_get_verify_result(c.ssl);
    if (verify != X509_V_OK) {
      msg += ": certificate verify failed: " + std::string(X509_verify_cert_error_string(verify));
    } else if (const std::string e = openssl_error(); !e.empty()) {
      msg += ": " + e;
    } else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
      msg += ": connection closed by the server";
    }
    finish(c, "tls", msg, now);
  }

  // Connected (and TLS done): send, then read, or finish.
  void ready(Check& c, Clock::time_point now) {
    const Target& t = settings.targets[c.target];
    c.t_ready = now;
    if (!t.send.empty()) {
      c.phase = Phase::sending;
      c.events = POLLOUT;
      send_some(c, now);
      return;
    }
    start_reading_or_finish(c, now);
  }

  void start_reading_or_finish(Check& c, Clock::time_point now) {
    if (settings.targets[c.target].expect.empty()) {
      finish(c, nullptr, "", now);
      return;
    }
    c.t_ready = now;
    c.phase = Phase::reading;
    c.events = POLLIN;
    read_some(c, now);
  }

  // Returns bytes moved (> 0), 0 when the socket would block, -1 on EOF, -2 on error (errno
  // text in `error`).
  static long io(Check& c, bool write, char* buf, std::size_t len, std::string& error) {
    if (c.ssl != nullptr) {
      ERR_clear_error();
      const int n = write ? SSL_write(c.ssl, buf, static_cast<int>(len))
                          : SSL_read(c.ssl, buf, static_cast<int>(len));
      if (n > 0) {
        return n;
      }
      const int err = SSL_get_error(c.ssl, n);
      if (err == SSL_ERROR_WANT_READ) {
        c.events = POLLIN;
        return 0;
      }
      if (err == SSL_ERROR_WANT_WRITE) {
        c.events = POLLOUT;
        return 0;
      }
      if (err == SSL_ERROR_ZERO_RETURN) {
        return -1;
      }
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
        return -1;  // closed without close_notify
      }
      const std::string e = openssl_error();
      error = e.empty() ? std::string(std::strerror(errno)) : e;
      return -2;
    }
    const ssize_t n = write ? ::send(c.fd, buf, len, MSG_NOSIGNAL) : ::recv(c.fd, buf, len, 0);
    if (n > 0) {
      return n;
    }
    if (n == 0 && !write) {
      return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      c.events = write ? POLLOUT : POLLIN;
      return 0;
    }
    error = std::strerror(errno);
    return -2;
  }

  void send_some(Check& c, Clock::time_point now) {
    const std::string& payload = settings.targets[c.target].send;
    while (c.sent < payload.size()) {
      std::string error;
      errno = 0;
      // io() only reads from the buffer when writing.
      const long n =
          io(c, true, const_cast<char*>(payload.data()) + c.sent, payload.size() - c.sent, error);
      if (n == 0) {
        return;
      }
      if (n < 0) {
        finish(c, "other", "sending failed: " + (error.empty() ? "connection closed" : error), now);
        return;
      }
      c.sent += static_cast<std::size_t>(n);
    }
    start_reading_or_finish(c, now);
  }

  void read_some(Check& c, Clock::time_point now) {
    const Target& t = settings.targets[c.target];
    char buf[16384];
    for (;;) {
      const std::size_t room = t.max_reply_size - c.reply.size();
      if (room == 0) {
        finish(c, "reply_mismatch",
               "reply did not match expect within max_reply_size (" +
                   std::to_string(t.max_reply_size) + " bytes)",
               now);
        return;
      }
      std::string error;
      errno = 0;
      const long n = io(c, false, buf, std::min(room, sizeof buf), error);
      if (n == 0) {
        return;
      }
      if (n == -1) {
        finish(c, "reply_mismatch",
               "connection closed after " + std::to_string(c.reply.size()) +
                   " reply bytes that do not match expect",
               now);
        return;
      }
      if (n == -2) {
        finish(c, "other", "reading the reply failed: " + error, now);
        return;
      }
      c.reply.append(buf, static_cast<std::size_t>(n));
      if (regex_matches(*regexes[c.target], c.reply)) {
        c.reply_ms = cc::ms_between(c.t_ready, now);
        finish(c, nullptr, "", now);
        return;
      }
    }
  }

  void on_event(Check& c, short revents, Clock::time_point now) {
    switch (c.phase) {
      case Phase::resolving:
        return;
      case Phase::connecting: {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0 && (revents & POLLOUT) != 0) {
          connected(c, now);
        } else {
          c.last_connect_error = c.remote_ip + ": " + std::strerror(err != 0 ? err : ECONNREFUSED);
          connect_next(c, now);
        }
        return;
      }
      case Phase::handshaking:
        handshake(c, now);
        return;
      case Phase::sending:
        send_some(c, now);
        return;
      case Phase::reading:
        read_some(c, now);
        return;
    }
  }

  // --- finishing --------------------------------------------------------------------------

  // Records the check (error nullptr: success) and frees its target for the next slot.
  void finish(Check& c, const char* error, const std::string& given, Clock::time_point now) {
    const Target& t = settings.targets[c.target];
    std::string message = given;
    const bool replied = error == nullptr;  // connected, TLS, reply matched (if configured)
    // Conditions on a check that otherwise succeeded, in http_check's order: slow, then
    // cert_expiring.
    if (error == nullptr) {
      if (auto slow = cc::slow_message(cc::ms_between(c.started, now), t.max_response_time)) {
        error = "slow";
        message = std::move(*slow);
      } else if (c.cert_not_after) {
        if (auto expiring =
                cc::cert_expiring_message(*c.cert_not_after, sdk::now(), t.min_cert_validity)) {
          error = "cert_expiring";
          message = std::move(*expiring);
        }
      }
    }
    const bool ok = error == nullptr;
    const sdk::Timestamp scheduled = sched.wall_of(c.slot.scheduled);
    sdk::Record r;
    r.kind = "tcp_check";
    r.time = scheduled;
    r.id = sdk::make_uuid_v7(scheduled);
    r.fields.reserve(std::size(kTcpCheckFields) - 1);
    auto opt = [](const std::optional<double>& v) { return v ? Value(*v) : Value(); };
    r.add("target", t.name);
    r.add("host", t.host);
    r.add("port", static_cast<std::int64_t>(t.port));
    r.add("agent", ctx.agent_name());
    r.add("success", ok);
    r.add("error", ok ? Value() : Value(std::string(error)));
    r.add("error_message", ok ? Value() : Value(message));
    r.add("remote_ip", c.remote_ip.empty() ? Value() : Value(c.remote_ip));
    r.add("dns_ms", opt(c.dns_ms));
    r.add("connect_ms", opt(c.connect_ms));
    r.add("tls_ms", opt(c.tls_ms));
    r.add("reply_ms", opt(c.reply_ms));
    r.add("response_time_ms", cc::ms_between(c.started, now));
    r.add("bytes_sent", static_cast<std::int64_t>(c.sent));
    r.add("bytes_received", static_cast<std::int64_t>(c.reply.size()));
    // Known only once the reply was read: true on success, false when it did not match
    // (closed, too long, or bytes that had not matched when the timeout struck).
    const bool judged =
        c.phase == Phase::reading &&
        (replied || std::string_view(error) == "reply_mismatch" || !c.reply.empty());
    r.add("reply_matched", t.expect.empty() || !judged ? Value() : Value(replied));
    r.add("tls_version", c.tls_version ? Value(*c.tls_version) : Value());
    r.add("tls_cert_not_after", c.cert_not_after ? Value(*c.cert_not_after) : Value());
    r.add("tls_cert_issuer", c.cert_issuer ? Value(*c.cert_issuer) : Value());
    r.add("lateness_ms", std::chrono::duration<double, std::milli>(c.slot.lateness).count());
    r.labels = t.labels;
    checks_counter->add();
    if (!ok) {
      failed_counter->add();
    }
    output.add(std::move(r), now);
    close_check(c);
    skipped_counter->add(sched.finish(c.target, now));
    in_flight.erase(c.id);  // destroys c
  }

  // --- the loop ---------------------------------------------------------------------------

  void wake_up() {
    const char one = 1;
    (void)!::write(wake[1], &one, 1);
  }

  sdk::Status run() {
    sched.start(Clock::now());
    std::vector<pollfd> fds;
    std::vector<std::uint64_t> ids;
    while (!ctx.stop_requested()) {
      auto now = Clock::now();
      // Start what is due, unless results pile up because the pipeline refuses them.
      if (output.blocked()) {
        const std::size_t due = sched.poll(now);
        if (due > delayed_seen) {
          delayed_counter->add(due - delayed_seen);
        }
        delayed_seen = due;
        limiter.log(ctx, sdk::LogLevel::warn, "delayed",
                    "downstream full: " + std::to_string(due) + " due checks delayed");
      } else {
        delayed_seen = 0;
        while (in_flight.size() < settings.max_concurrency) {
          auto slot = sched.start_next(now);
          if (!slot) {
            break;
          }
          begin(*slot, now);
        }
      }
      if (!output.flush(false, now)) {
        break;
      }
      if (sched.done() && in_flight.empty()) {
        break;
      }
      // Wait for sockets, resolver results, the next slot, a check's deadline, the batch.
      fds.clear();
      ids.clear();
      fds.push_back({wake[0], POLLIN, 0});
      fds.push_back({resolver.fd(), POLLIN, 0});
      auto wake_at = now + std::chrono::seconds(1);
      for (const auto& [id, c] : in_flight) {
        wake_at = std::min(wake_at, c->deadline);
        if (c->fd >= 0 && c->phase != Phase::resolving) {
          fds.push_back({c->fd, c->events, 0});
          ids.push_back(id);
        }
      }
      if (auto w = sched.next_wakeup();
          w && in_flight.size() < settings.max_concurrency && !output.blocked()) {
        wake_at = std::min(wake_at, *w);
      }
      if (output.blocked()) {
        wake_at = std::min(wake_at, now + std::chrono::milliseconds(50));
      }
      if (auto d = output.deadline()) {
        wake_at = std::min(wake_at, *d);
      }
      const auto wait_us =
          std::chrono::duration_cast<std::chrono::microseconds>(wake_at - now).count();
      const int wait_ms = wait_us <= 0 ? 0 : static_cast<int>((wait_us + 999) / 1000);
      const int n = ::poll(fds.data(), fds.size(), wait_ms);
      if (n < 0 && errno != EINTR) {
        return sdk::Status::error(std::string("poll: ") + std::strerror(errno));
      }
      now = Clock::now();
      if ((fds[0].revents & POLLIN) != 0) {
        char buf[64];
        while (::read(wake[0], buf, sizeof buf) > 0) {
        }
      }
      if ((fds[1].revents & POLLIN) != 0) {
        for (auto& r : resolver.take()) {
          on_resolved(std::move(r), Clock::now());  // fresh: timings per event
        }
      }
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) {
          continue;
        }
        auto it = in_flight.find(ids[i - 2]);
        if (it != in_flight.end() && it->second->fd == fds[i].fd) {
          on_event(*it->second, fds[i].revents, Clock::now());
        }
      }
      // Deadlines.
      std::vector<std::uint64_t> expired;
      for (const auto& [id, c] : in_flight) {
        if (c->deadline <= now) {
          expired.push_back(id);
        }
      }
      for (const std::uint64_t id : expired) {
        auto it = in_flight.find(id);
        if (it != in_flight.end()) {
          Check& c = *it->second;
          static constexpr const char* kPhase[] = {"resolving the name", "connecting",
                                                   "in the TLS handshake", "sending",
                                                   "waiting for the reply to match expect"};
          finish(c, "timeout",
                 "no result within timeout (" +
                     std::to_string(settings.targets[c.target].timeout.count()) + "ms) while " +
                     kPhase[static_cast<int>(c.phase)],
                 now);
        }
      }
    }
    // Stopping: checks in flight are abandoned (not recorded); finished results are emitted.
    aborted_counter->add(in_flight.size());
    for (auto& [id, c] : in_flight) {
      close_check(*c);
    }
    in_flight.clear();
    (void)output.flush(true, Clock::now());
    return sdk::Status::ok();
  }
};

TcpCheckSource::TcpCheckSource(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
    : settings_(parse_settings(config)) {}

TcpCheckSource::~TcpCheckSource() = default;

sdk::Status TcpCheckSource::on_start() {
  engine_ = std::make_unique<Engine>(settings_, ctx(), emitter());
  ctx().info("checking " + std::to_string(settings_.targets.size()) + " TCP targets" +
             (settings_.targets.size() != settings_.targets_total
                  ? " (this shard's share of " + std::to_string(settings_.targets_total) + ")"
                  : std::string()));
  return sdk::Status::ok();
}

sdk::Status TcpCheckSource::on_run() { return engine_->run(); }

void TcpCheckSource::on_stop_requested() {
  if (engine_ != nullptr) {
    engine_->wake_up();
  }
}

}  // namespace webmon::plugins::tcp_check
