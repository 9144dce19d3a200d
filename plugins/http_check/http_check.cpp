// http_check engine: check loops, each with one thread, one curl multi handle and one
// sdk::Scheduler (webmon/sdk/scheduler.hpp, the schedule every check plugin shares).
//
// Scheduling: target i runs at start + offset_i + k * interval_i (k = 0, 1, ...), where offset_i
// is a hash of its name modulo its interval, so starts are spread and deterministic and the
// grid never drifts; every loop's Scheduler starts on the same origin, so the loops share one
// grid. A due check starts at once unless max_concurrency checks are in flight; it then waits
// in FIFO order (lateness_ms shows the wait). A target is never checked twice at the same time:
// grid slots that pass while its check runs are skipped and counted. A reload's added, changed
// and removed targets go to the loop's Scheduler (add, change, remove), applied by the loop.
#include "http_check.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <malloc.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <thread>
#include <utility>

#include "check_common.hpp"
#include "webmon/sdk/scheduler.hpp"

namespace webmon::plugins::http_check {
namespace {

namespace cc = check_common;

using Clock = std::chrono::steady_clock;
using sdk::Value;

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

int ssl_ctx_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool reserved_name(std::string_view host) {
  // RFC 6761 section 6.4: names under .invalid never resolve; answer without asking a resolver.
  constexpr std::string_view kInvalid = "invalid";
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  return host == kInvalid || (host.size() > kInvalid.size() && host.ends_with(kInvalid) &&
                              host[host.size() - kInvalid.size() - 1] == '.');
}

const char* http_version_text(long v) {
  switch (v) {
    case CURL_HTTP_VERSION_1_0:
      return "1.0";
    case CURL_HTTP_VERSION_1_1:
      return "1.1";
    case CURL_HTTP_VERSION_2_0:
      return "2";
    case CURL_HTTP_VERSION_3:
      return "3";
    default:
      return nullptr;
  }
}

}  // namespace

// What the check loops share: emitting (one loop at a time) and batch tokens.
struct HttpCheckSource::Shared {
  std::mutex emit_mu;
  std::atomic<std::uint64_t> token{0};
  // The grid origin of every loop (targets on different loops share one grid).
  Clock::time_point steady0 = Clock::now();
  sdk::Timestamp wall0 = sdk::now();
};

// A change of one loop's targets after targets_file was reloaded.
struct TargetChange {
  enum class Kind : std::uint8_t { add, change, remove };
  Kind kind = Kind::add;
  std::string name;
  std::shared_ptr<const Target> target;  // null for remove
};

// One check loop: its own thread, curl multi handle, schedule and handle pool, for its share
// of the targets (target i of the configuration at start is on loop i % threads; targets added
// by a reload go to the loop with the fewest).
struct HttpCheckSource::Engine {
  // A target with what its checks need prepared: the request header lists.
  struct Prepared {
    std::shared_ptr<const Target> target;
    curl_slist* headers = nullptr;        // every configured request header
    curl_slist* cross_headers = nullptr;  // without Authorization: for another origin
    std::string origin;                   // scheme://host:port of the URL
    bool proxied = false;                 // a proxy is configured (or in the environment)
    explicit Prepared(std::shared_ptr<const Target> t) : target(std::move(t)) {
      const Target& tg = *target;
      auto add = [](curl_slist*& list, const std::string& h) {
        curl_slist* next = curl_slist_append(list, h.c_str());
        if (next == nullptr) {
          throw std::bad_alloc();
        }
        list = next;
      };
      for (const auto& h : tg.headers) {
        add(headers, h);
        if (!(h.size() > 14 && strncasecmp(h.c_str(), "authorization:", 14) == 0)) {
          add(cross_headers, h);
        }
      }
      if (tg.body) {
        add(headers, "Expect:");  // no 100-continue round trip
        add(cross_headers, "Expect:");
      }
      if (tg.bearer_token) {
        add(headers, "Authorization: Bearer " + *tg.bearer_token);
      }
      origin = origin_of(tg.url);
      proxied =
          tg.proxy ? !tg.proxy->empty() : proxied_by_environment(origin.rfind("https:", 0) == 0);
    }
    ~Prepared() {
      curl_slist_free_all(headers);
      curl_slist_free_all(cross_headers);
    }
    Prepared(const Prepared&) = delete;
    Prepared& operator=(const Prepared&) = delete;
  };

  // Timestamps of one request (hop) of a check; unset = not reached.
  struct Hop {
    Clock::time_point start{};
    Clock::time_point socket{};      // an address is known and a socket opened: DNS done
    Clock::time_point tls_start{};   // TCP connected, TLS handshake starts
    Clock::time_point tls_done{};    // handshake finished
    Clock::time_point prereq{};      // connection ready, request about to be sent
    Clock::time_point first_byte{};  // the status line of the response arrived
  };

  // A phase summed over the hops of a check.
  struct Phase {
    std::int64_t us = 0;
    bool seen = false;
    void add(std::int64_t v) {
      us += v;
      seen = true;
    }
  };

  struct Check {
    CURL* easy = nullptr;
    std::size_t target = 0;  // the Scheduler's index
    std::shared_ptr<Prepared> prepared;
    Clock::time_point due{};
    Clock::time_point started{};
    // Redirects, followed one request at a time.
    std::string url;  // of the current hop
    std::string method;
    bool send_body = false;
    bool same_origin = true;  // the current hop goes to the configured URL's origin
    std::string first_host;
    long redirects = 0;
    bool prev_public = false;  // the previous hop connected to an address outside internal_networks
    bool on_redirect = false;  // url is a redirect's target, not the configured URL
    bool proxied = false;
    std::string policy_refusal;  // set by on_open_socket when it refused an address
    Hop hop;
    Phase dns, connect, tls, ttfb, transfer;
    // The response of the current hop.
    std::string body;
    std::uint64_t body_bytes = 0;
    bool keep_body = false;
    bool too_large = false;
    std::uint64_t max_body = 0;
    std::optional<sdk::Timestamp> cert_not_after;
    std::optional<std::string> cert_issuer;
    std::optional<std::string> tls_version;
    bool client_cert_requested = false;  // the server sent a TLS CertificateRequest
    std::string tls_alert;               // a fatal TLS alert the server sent
    char error[CURL_ERROR_SIZE] = {};
  };

  Engine(const Settings& s, sdk::Context& c, sdk::Emitter& e, Shared& sh, std::size_t index)
      : settings(s), ctx(c), emitter(e), shared(sh), loop(index), sched(s.once) {
    const auto n = static_cast<std::size_t>(settings.threads);
    // max_concurrency split across the loops, summing to it exactly.
    max_in_flight = static_cast<std::size_t>(settings.max_concurrency) / n +
                    (loop < static_cast<std::size_t>(settings.max_concurrency) % n ? 1U : 0U);
    max_in_flight = std::max<std::size_t>(max_in_flight, 1);
  }
  ~Engine() {
    for (auto& c : in_flight_checks) {
      if (c->easy != nullptr) {
        curl_multi_remove_handle(multi, c->easy);
        curl_easy_cleanup(c->easy);
      }
    }
    for (auto& c : pool) {
      curl_easy_cleanup(c->easy);
    }
    in_flight_checks.clear();
    prepared.clear();
    if (multi != nullptr) {
      curl_multi_cleanup(multi);
    }
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Settings& settings;
  sdk::Context& ctx;
  sdk::Emitter& emitter;
  Shared& shared;
  std::size_t loop = 0;
  std::vector<std::shared_ptr<const Target>> initial;  // this loop's targets at start
  std::size_t max_in_flight = 1;
  CURLM* multi = nullptr;
  std::atomic<bool> stop{false};  // set by another loop that ended
  // The schedule; what a target's checks need, by the Scheduler's index (null: no target).
  sdk::Scheduler sched;
  std::vector<std::shared_ptr<Prepared>> prepared;
  std::map<std::string, std::size_t, std::less<>> by_name;
  std::vector<std::unique_ptr<Check>> pool;
  std::vector<std::unique_ptr<Check>> in_flight_checks;
  std::vector<sdk::Record> pending;
  Clock::time_point pending_since{};
  sdk::Counter* checks_counter = nullptr;
  sdk::Counter* failed_counter = nullptr;
  sdk::Counter* skipped_counter = nullptr;
  sdk::Counter* aborted_counter = nullptr;
  sdk::Counter* delayed_counter = nullptr;
  std::size_t delayed_seen = 0;
  sdk::LogLimiter limiter;
  // Changes from a reload, applied by the loop itself.
  std::mutex changes_mu;
  std::vector<TargetChange> changes;
  std::atomic<bool> has_changes{false};

  void init() {
    multi = curl_multi_init();
    if (multi == nullptr) {
      throw std::runtime_error("curl_multi_init failed");
    }
    curl_multi_setopt(
        multi, CURLMOPT_MAXCONNECTS,
        settings.reuse_connections ? std::max(64L, static_cast<long>(max_in_flight)) : 0L);
    checks_counter = &ctx.counter("checks");
    failed_counter = &ctx.counter("checks_failed");
    skipped_counter = &ctx.counter("checks_skipped_overlap");
    aborted_counter = &ctx.counter("checks_aborted");
    delayed_counter = &ctx.counter("checks_delayed_downstream");
  }

  [[nodiscard]] std::size_t target_count() const noexcept { return by_name.size(); }

  // Called from the reloader thread.
  void post(std::vector<TargetChange> batch) {
    {
      std::lock_guard lock(changes_mu);
      for (auto& c : batch) {
        changes.push_back(std::move(c));
      }
      has_changes = true;
    }
    if (multi != nullptr) {
      curl_multi_wakeup(multi);
    }
  }

  // Adds a target to the schedule (after start: on its grid slot, the first not before `now`).
  void add_target(std::shared_ptr<const Target> t, Clock::time_point now) {
    auto p = std::make_shared<Prepared>(std::move(t));
    const std::string& name = p->target->name;
    const auto interval = std::chrono::duration_cast<sdk::Scheduler::Duration>(p->target->interval);
    const std::size_t i = sched.add(name, interval, now);
    if (i >= prepared.size()) {
      prepared.resize(i + 1);
    }
    by_name[name] = i;
    prepared[i] = std::move(p);
  }

  void schedule_all() {
    const auto now = Clock::now();
    for (auto& t : initial) {
      add_target(std::move(t), now);
    }
    initial.clear();
    // Every loop on one grid (once mode: every target now).
    sched.start_with_origin(now, shared.steady0, shared.wall0);
  }

  void apply_changes() {
    std::vector<TargetChange> batch;
    {
      std::lock_guard lock(changes_mu);
      batch.swap(changes);
      has_changes = false;
    }
    const auto now = Clock::now();
    for (auto& ch : batch) {
      auto it = by_name.find(ch.name);
      switch (ch.kind) {
        case TargetChange::Kind::add:
          if (it == by_name.end()) {
            add_target(std::move(ch.target), now);
          }
          break;
        case TargetChange::Kind::change:
          // Same grid slot: the next check stays due when it was; then the new interval. A
          // check in flight keeps its own Prepared (the old options).
          if (it != by_name.end()) {
            auto p = std::make_shared<Prepared>(std::move(ch.target));
            sched.change(it->second, p->target->name,
                         std::chrono::duration_cast<sdk::Scheduler::Duration>(p->target->interval));
            prepared[it->second] = std::move(p);
          }
          break;
        case TargetChange::Kind::remove:
          // Its due slot is dropped; a check in flight finishes and is recorded.
          if (it != by_name.end()) {
            sched.remove(it->second);
            prepared[it->second].reset();
            by_name.erase(it);
          }
          break;
      }
    }
  }

  std::unique_ptr<Check> acquire() {
    if (pool.empty()) {
      auto c = std::make_unique<Check>();
      c->easy = curl_easy_init();
      if (c->easy == nullptr) {
        throw std::runtime_error("curl_easy_init failed");
      }
      return c;
    }
    auto c = std::move(pool.back());
    pool.pop_back();
    curl_easy_reset(c->easy);
    c->redirects = 0;
    c->policy_refusal.clear();
    c->dns = c->connect = c->tls = c->ttfb = c->transfer = Phase{};
    return c;
  }

  static void reset_response(Check& c) {
    c.body.clear();
    c.body_bytes = 0;
    c.too_large = false;
    c.cert_not_after.reset();
    c.cert_issuer.reset();
    c.tls_version.reset();
    c.client_cert_requested = false;
    c.tls_alert.clear();
    c.error[0] = '\0';
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* c = static_cast<Check*>(user);
    const std::size_t len = size * n;
    if (c->body_bytes + len > c->max_body) {
      c->too_large = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    c->body_bytes += len;
    if (c->keep_body) {
      c->body.append(data, len);
    }
    return len;
  }

  // TLS: record the leaf certificate while OpenSSL verifies it, so that a check failing
  // verification (e.g. an expired certificate) still reports the expiry and issuer.
  static int on_verify(int preverify_ok, X509_STORE_CTX* store) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    X509* leaf = X509_STORE_CTX_get0_cert(store);
    if (ssl != nullptr && leaf != nullptr) {
      if (auto* c = static_cast<Check*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index()));
          c != nullptr) {
        c->cert_not_after = asn1_time(X509_get0_notAfter(leaf));
        c->cert_issuer = issuer_text(leaf);
      }
    }
    return preverify_ok;
  }

  // TLS 1.3: a server that rejects the client certificate (or its absence) says so with an
  // alert after the client has finished its handshake, so curl reports a receive or socket
  // error. Noting the CertificateRequest and the alert lets finish() classify it as `tls`.
  // The handshake's start and end are the boundaries of the connect and tls phases.
  static void on_tls_info(const SSL* ssl, int where, int ret) {
    auto* c = static_cast<Check*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index()));
    if (c == nullptr) {
      return;
    }
    if ((where & SSL_CB_HANDSHAKE_START) != 0 && c->hop.tls_start == Clock::time_point{}) {
      c->hop.tls_start = Clock::now();
    }
    if ((where & SSL_CB_HANDSHAKE_DONE) != 0 && c->hop.tls_done == Clock::time_point{}) {
      c->hop.tls_done = Clock::now();
    }
    if ((where & SSL_CB_LOOP) != 0 && SSL_get_state(ssl) == TLS_ST_CR_CERT_REQ) {
      c->client_cert_requested = true;
    }
    if ((where & SSL_CB_READ_ALERT) != 0 && std::strcmp(SSL_alert_type_string(ret), "F") == 0) {
      // OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116).
      c->tls_alert = (ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret);
    }
  }

  static CURLcode on_ssl_ctx(CURL* /*easy*/, void* ssl_ctx, void* user) {
    auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
    SSL_CTX_set_ex_data(ctx, ssl_ctx_index(), user);
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), &Engine::on_verify);
    SSL_CTX_set_info_callback(ctx, &Engine::on_tls_info);
    return CURLE_OK;
  }

  // An address is known (DNS done): the redirect policy looks at it before connecting.
  static curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* c = static_cast<Check*>(user);
    if (c->hop.socket == Clock::time_point{}) {
      c->hop.socket = Clock::now();
    }
    if (purpose == CURLSOCKTYPE_IPCXN && c->redirects > 0 && c->prev_public && !c->proxied &&
        sockaddr_in_networks(*c->prepared->target->internal_networks, &address->addr)) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = address->family == AF_INET6
                            ? static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr)
                            : static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr);
      inet_ntop(address->family, raw, text, sizeof text);
      c->policy_refusal = std::string("redirect to ") + c->url + " refused: it leads to " + text +
                          ", an internal address (option internal_networks), from a public " +
                          "address; a monitored site may not make the agent reach internal " +
                          "services";
      return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype, address->protocol);
  }

  // The connection is ready and the request is about to be sent.
  static int on_prereq(void* user, char* /*remote_ip*/, char* /*local_ip*/, int /*remote_port*/,
                       int /*local_port*/) {
    auto* c = static_cast<Check*>(user);
    if (c->hop.prereq == Clock::time_point{}) {
      c->hop.prereq = Clock::now();
    }
    return CURL_PREREQFUNC_OK;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* c = static_cast<Check*>(user);
    const std::size_t len = size * n;
    if (c->hop.first_byte == Clock::time_point{}) {
      c->hop.first_byte = Clock::now();
    }
    // Once per response (status line): the connection is up, so TLS details are available.
    if (len >= 5 && std::memcmp(data, "HTTP/", 5) == 0) {
      const curl_tlssessioninfo* info = nullptr;
      if (curl_easy_getinfo(c->easy, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info != nullptr &&
          info->backend == CURLSSLBACKEND_OPENSSL && info->internals != nullptr) {
        auto* ssl = static_cast<SSL*>(info->internals);
        if (X509* cert = SSL_get0_peer_certificate(ssl); cert != nullptr) {
          c->cert_not_after = asn1_time(X509_get0_notAfter(cert));
          c->cert_issuer = issuer_text(cert);
        }
        c->tls_version = SSL_get_version(ssl);
      } else {
        c->cert_not_after.reset();
        c->cert_issuer.reset();
        c->tls_version.reset();
      }
    }
    return len;
  }

  static bool proxied_by_environment(bool https) {
    for (const char* v : {https ? "https_proxy" : "http_proxy",
                          https ? "HTTPS_PROXY" : "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) {
      const char* p = std::getenv(v);
      if (p != nullptr && *p != '\0') {
        return true;
      }
    }
    return false;
  }

  // The request method and body of the current hop.
  static void set_method(CURL* e, const Check& c, const Target& t) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (c.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (c.send_body && t.body) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body->size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.body->data());
      if (c.method != "POST") {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c.method.c_str());
      }
    } else if (c.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t{0});
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    } else if (c.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c.method.c_str());
    }
  }

  // Options of the current hop: URL, method, credentials (only to the configured origin),
  // time left.
  static void set_hop(CURL* e, Check& c, Clock::time_point now) {
    const Target& t = *c.prepared->target;
    curl_easy_setopt(e, CURLOPT_URL, c.url.c_str());
    set_method(e, c, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER,
                     c.same_origin ? c.prepared->headers : c.prepared->cross_headers);
    if (t.username && c.same_origin) {
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(e, CURLOPT_USERNAME, t.username->c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, t.password ? t.password->c_str() : "");
    } else {
      curl_easy_setopt(e, CURLOPT_USERNAME, nullptr);
      curl_easy_setopt(e, CURLOPT_PASSWORD, nullptr);
    }
    const auto left =
        t.timeout - std::chrono::duration_cast<std::chrono::milliseconds>(now - c.started);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max<long>(1, static_cast<long>(left.count())));
    c.hop = Hop{};
    c.hop.start = now;
    // A redirect to another scheme may use another environment proxy.
    c.proxied =
        c.on_redirect
            ? (t.proxy ? !t.proxy->empty()
                       : proxied_by_environment(strncasecmp(c.url.c_str(), "https:", 6) == 0))
            : c.prepared->proxied;
    reset_response(c);
  }

  void start_check(std::size_t idx, Clock::time_point due) {
    const Target& t = *prepared[idx]->target;
    auto c = acquire();
    c->target = idx;
    c->prepared = prepared[idx];
    c->due = due;
    c->started = Clock::now();
    c->keep_body = t.body_regex != nullptr || t.body_regex_absent != nullptr || !t.json.empty();
    c->max_body = t.max_body_size;
    c->url = t.url;
    c->method = t.method;
    c->send_body = t.body.has_value();
    c->same_origin = true;
    c->first_host = t.host;
    c->prev_public = false;
    c->on_redirect = false;
    checks_counter->add();
    CURL* e = c->easy;
    set_hop(e, *c, c->started);
    if (reserved_name(t.host)) {
      refuse_reserved(*c, t.host);
      finish(*c, CURLE_COULDNT_RESOLVE_HOST, false, Clock::now());
      release(std::move(c));
      return;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, c.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Engine::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Engine::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c.get());
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Engine::on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c.get());
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Engine::on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, c.get());
    curl_easy_setopt(e, CURLOPT_USERAGENT, settings.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);  // a proxy's 200 is no first byte
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);            // followed hop by hop in collect()
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, t.accept_encoding.c_str());
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t.tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t.tls_verify ? 2L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &Engine::on_ssl_ctx);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c.get());
    if (!t.ca_file.empty()) {
      curl_easy_setopt(e, CURLOPT_CAINFO, t.ca_file.c_str());
    }
    if (!t.cert_file.empty()) {
      curl_easy_setopt(e, CURLOPT_SSLCERT, t.cert_file.c_str());
    }
    if (!t.key_file.empty()) {
      curl_easy_setopt(e, CURLOPT_SSLKEY, t.key_file.c_str());
    }
    curl_easy_setopt(e, CURLOPT_IPRESOLVE,
                     t.ip_version == IpVersion::v4   ? CURL_IPRESOLVE_V4
                     : t.ip_version == IpVersion::v6 ? CURL_IPRESOLVE_V6
                                                     : CURL_IPRESOLVE_WHATEVER);
    if (t.proxy) {
      curl_easy_setopt(e, CURLOPT_PROXY, t.proxy->c_str());
    }
    if (!settings.reuse_connections) {
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    }
    // Host names: libcurl's threaded resolver starts one thread per lookup; dns_cache trades
    // real dns_ms for that cost. (The cache belongs to the loop's multi handle.)
    if (settings.dns_cache.count() > 0 || !settings.reuse_connections) {
      curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT,
                       static_cast<long>((settings.dns_cache.count() + 999) / 1000));
    }
    if (!add_to_multi(*c)) {
      finish(*c, CURLE_FAILED_INIT, false, Clock::now());
      release(std::move(c));
      return;
    }
    in_flight_checks.push_back(std::move(c));
  }

  bool add_to_multi(Check& c) const {
    const CURLMcode rc = curl_multi_add_handle(multi, c.easy);
    if (rc != CURLM_OK) {
      std::snprintf(c.error, sizeof c.error, "curl_multi_add_handle: %s", curl_multi_strerror(rc));
      return false;
    }
    return true;
  }

  static std::string origin_of(const std::string& url) {
    CURLU* u = curl_url();
    if (u == nullptr) {
      return url;
    }
    std::string out;
    if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
      char* scheme = nullptr;
      char* host = nullptr;
      char* port = nullptr;
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
      curl_url_get(u, CURLUPART_HOST, &host, 0);
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
      out = std::string(scheme != nullptr ? scheme : "") + "://" + (host != nullptr ? host : "") +
            ":" + (port != nullptr ? port : "");
      for (char& ch : out) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      curl_free(scheme);
      curl_free(host);
      curl_free(port);
    }
    curl_url_cleanup(u);
    return out;
  }

  static std::string host_of(const std::string& url) {
    const std::string o = origin_of(url);
    const std::size_t a = o.find("://");
    const std::size_t b = o.rfind(':');
    if (a == std::string::npos || b == std::string::npos || b < a + 3) {
      return {};
    }
    return o.substr(a + 3, b - a - 3);
  }

  static void refuse_reserved(Check& c, const std::string& host) {
    std::snprintf(c.error, sizeof c.error,
                  "Could not resolve host: %s (reserved name, RFC 6761: never sent to a resolver)",
                  host.c_str());
  }

  void release(std::unique_ptr<Check> c) {
    c->prepared.reset();
    c->body.clear();
    if (c->body.capacity() > (256U << 10U)) {
      c->body.shrink_to_fit();
    }
    pool.push_back(std::move(c));
  }

  // Adds the current hop's time to the phases. Boundaries: hop start | address known (dns) |
  // TCP connected = TLS handshake start, or the connection ready when there is no TLS
  // (connect) | handshake done (tls) | status line arrived (ttfb) | end (transfer). A hop that
  // ended early (a failure) puts the rest of its time into the phase it was in; the phases
  // after it stay unset. A reused connection has no dns, connect and tls.
  static void account_hop(Check& c, Clock::time_point end) {
    const Hop& h = c.hop;
    constexpr Clock::time_point kUnset{};
    Clock::time_point cursor = h.start;
    // Whole microseconds since the check started, so that the phases add up exactly.
    auto us = [&](Clock::time_point at) {
      return std::chrono::duration_cast<std::chrono::microseconds>(at - c.started).count();
    };
    auto add = [&](Phase& p, Clock::time_point at) {
      at = std::clamp(at, cursor, std::max(cursor, end));
      p.add(us(at) - us(cursor));
      cursor = at;
    };
    const bool reused = h.socket == kUnset && h.prereq != kUnset;
    if (!reused) {
      if (h.socket == kUnset) {
        return add(c.dns, end);
      }
      add(c.dns, h.socket);
      const Clock::time_point connected = h.tls_start != kUnset ? h.tls_start : h.prereq;
      if (connected == kUnset) {
        return add(c.connect, end);
      }
      add(c.connect, connected);
      if (h.tls_start != kUnset) {
        if (h.tls_done == kUnset) {
          return add(c.tls, end);
        }
        add(c.tls, h.tls_done);
      }
    }
    if (h.first_byte == kUnset) {
      return add(c.ttfb, end);
    }
    add(c.ttfb, h.first_byte);
    add(c.transfer, end);
  }

  // A finished request: the next hop of a redirect, or the end of the check.
  void complete(std::unique_ptr<Check> owned, CURLcode result) {
    Check& c = *owned;
    const Target& t = *c.prepared->target;
    const auto now = Clock::now();
    long code = 0;
    curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &code);
    char* location = nullptr;
    if (result == CURLE_OK && t.follow_redirects != RedirectMode::none && code >= 300 &&
        code < 400 && curl_easy_getinfo(c.easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
        location != nullptr) {
      std::string next = location;
      const std::string next_host = host_of(next);
      const bool follow = t.follow_redirects == RedirectMode::all || next_host == c.first_host;
      if (follow) {
        account_hop(c, now);
        char* ip = nullptr;
        curl_easy_getinfo(c.easy, CURLINFO_PRIMARY_IP, &ip);
        const bool hop_public =
            ip != nullptr && *ip != '\0' && !address_in(*t.internal_networks, ip);
        if (c.redirects >= t.max_redirects) {
          c.url = next;
          c.on_redirect = true;
          finish_hop_failure(c, "too_many_redirects",
                             "more than max_redirects (" + std::to_string(t.max_redirects) +
                                 ") redirects; the last one led to " + next,
                             code, now);
          return release(std::move(owned));
        }
        const std::string scheme = next.substr(0, next.find(':'));
        if (strcasecmp(scheme.c_str(), "http") != 0 && strcasecmp(scheme.c_str(), "https") != 0) {
          c.url = next;
          c.on_redirect = true;
          finish_hop_failure(c, "other",
                             "redirect to " + next + " refused: only http and https are followed",
                             0, now);
          return release(std::move(owned));
        }
        curl_multi_remove_handle(multi, c.easy);
        ++c.redirects;
        c.prev_public = hop_public;
        // 303 (and 301/302 after a POST) continue with GET, as browsers and curl do.
        if ((code == 303 && c.method != "HEAD") ||
            ((code == 301 || code == 302) && c.method == "POST")) {
          c.method = "GET";
          c.send_body = false;
        }
        c.url = std::move(next);
        c.on_redirect = true;
        c.same_origin = c.same_origin && origin_of(c.url) == c.prepared->origin;
        set_hop(c.easy, c, now);
        if (reserved_name(next_host)) {
          refuse_reserved(c, next_host);
          finish(c, CURLE_COULDNT_RESOLVE_HOST, false, Clock::now());
          return release(std::move(owned));
        }
        if (!add_to_multi(c)) {
          finish(c, CURLE_FAILED_INIT, false, Clock::now());
          return release(std::move(owned));
        }
        in_flight_checks.push_back(std::move(owned));
        return;
      }
    }
    curl_multi_remove_handle(multi, c.easy);
    finish(c, result, true, now);
    release(std::move(owned));
  }

  // The check ends on hop `c.redirects` with a failure decided here (not by libcurl).
  void finish_hop_failure(Check& c, std::string_view error, const std::string& message, long code,
                          Clock::time_point now) {
    curl_multi_remove_handle(multi, c.easy);
    std::snprintf(c.error, sizeof c.error, "%s", message.c_str());
    forced_error_ = error;
    forced_code_ = code;
    finish(c, CURLE_OK, false, now);
    forced_error_ = {};
  }
  std::string_view forced_error_;
  long forced_code_ = 0;

  // Builds the record of a finished check and schedules the target's next run.
  void finish(Check& c, CURLcode result, bool transferred, Clock::time_point end) {
    const Target& t = *c.prepared->target;
    const sdk::Timestamp scheduled = sched.wall_of(c.due);
    const double lateness_ms = std::chrono::duration<double, std::milli>(c.started - c.due).count();
    if (forced_error_.empty()) {
      account_hop(c, end);
    }

    long code = 0;
    long http_version = 0;
    char* ip = nullptr;
    curl_off_t wire = 0;
    if (transferred) {
      curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_getinfo(c.easy, CURLINFO_HTTP_VERSION, &http_version);
      curl_easy_getinfo(c.easy, CURLINFO_SIZE_DOWNLOAD_T, &wire);
    }
    if (transferred || !forced_error_.empty()) {
      curl_easy_getinfo(c.easy, CURLINFO_PRIMARY_IP, &ip);
    }
    if (!forced_error_.empty()) {
      code = forced_code_;
      curl_easy_getinfo(c.easy, CURLINFO_HTTP_VERSION, &http_version);
      curl_easy_getinfo(c.easy, CURLINFO_SIZE_DOWNLOAD_T, &wire);
    }
    const std::int64_t total_us =
        std::chrono::duration_cast<std::chrono::microseconds>(end - c.started).count();
    auto ms = [](std::int64_t us) {
      return static_cast<double>(std::max<std::int64_t>(us, 0)) / 1000.0;
    };
    auto phase = [&](const Phase& p) -> Value { return p.seen ? Value(ms(p.us)) : Value(); };

    std::string error(forced_error_);
    std::string message = forced_error_.empty() ? std::string() : std::string(c.error);
    if (result != CURLE_OK) {
      error = classify_curl_error(result);
      message = c.error[0] != '\0' ? c.error : curl_easy_strerror(result);
      // A response header libcurl will not hold: it says "Out of memory".
      const bool in_headers = c.body_bytes == 0 && !c.too_large;
      if (c.too_large) {
        error = "other";
        message = "body larger than max_body_size (" + std::to_string(t.max_body_size) +
                  " bytes, decoded); stopped reading";
      } else if (!c.policy_refusal.empty() && result == CURLE_COULDNT_CONNECT) {
        error = "other";
        message = c.policy_refusal;
      } else if (result == CURLE_OUT_OF_MEMORY && in_headers) {
        error = "other";
        message =
            "response header too large: a header line longer than libcurl's limit of "
            "102400 bytes (CURL_MAX_HTTP_HEADER) arrived; libcurl reports: " +
            message;
      } else if (error == "other" && code == 0 &&
                 (c.client_cert_requested || !c.tls_alert.empty())) {
        error = "tls";
        message =
            (!c.tls_alert.empty() ? "the server sent TLS alert '" + c.tls_alert + "'"
                                  : std::string("the server closed the connection")) +
            (c.client_cert_requested ? std::string(" after requesting a client certificate")
                                     : std::string()) +
            (t.cert_file.empty() && c.client_cert_requested ? " (no cert_file configured)" : "") +
            ": " + message;
      }
    }
    const bool have_body = result == CURLE_OK && code > 0 && forced_error_.empty();
    Value regex_matched;
    if (t.body_regex != nullptr || t.body_regex_absent != nullptr) {
      if (have_body) {
        const bool must = t.body_regex == nullptr || t.body_regex->search(c.body);
        const bool must_not = t.body_regex_absent != nullptr && t.body_regex_absent->search(c.body);
        regex_matched = must && !must_not;
        if (error.empty() && !status_accepted(t.expect_status, code)) {
          error = "http_status";
          message = "status " + std::to_string(code) + " not in " + t.expect_status_text;
        }
        if (error.empty() && !must) {
          error = "body_mismatch";
          message = "body does not match body_regex '" + t.body_regex->pattern() + "'";
        } else if (error.empty() && must_not) {
          error = "body_mismatch";
          message = "body matches body_regex_absent '" + t.body_regex_absent->pattern() + "'";
        }
      }
    } else if (have_body && error.empty() && !status_accepted(t.expect_status, code)) {
      error = "http_status";
      message = "status " + std::to_string(code) + " not in " + t.expect_status_text;
    }
    if (result == CURLE_OK && code == 0 && error.empty()) {
      error = "other";
      message = "no HTTP response";
    }
    // The conditions on a response that arrived, in the order of the README's error classes:
    // transport, http_status, body_mismatch (above), then json_*, slow, cert_expiring.
    const bool transport_failure =
        !error.empty() && error != "http_status" && error != "body_mismatch";
    if (error.empty() && have_body) {
      if (auto failed = check_json(t.json, c.body)) {
        error = failed->first;
        message = std::move(failed->second);
      }
    }
    if (error.empty()) {
      if (auto slow = cc::slow_message(ms(total_us), t.max_response_time)) {
        error = "slow";
        message = std::move(*slow);
      }
    }
    if (error.empty() && c.cert_not_after) {
      if (auto expiring =
              cc::cert_expiring_message(*c.cert_not_after, sdk::now(), t.min_cert_validity)) {
        error = "cert_expiring";
        message = std::move(*expiring) + " (" + c.url + ")";
      }
    }
    const bool success = error.empty();
    // The hop a failure happened on (a redirect's target), when it was not the first request:
    // transport failures only, not a condition on the final response.
    const bool failed_later = !success && c.on_redirect && transport_failure;

    sdk::Record r;
    r.kind = "http_check";
    r.time = scheduled;
    r.id = sdk::make_uuid_v7(scheduled);
    r.fields.reserve(27);
    r.add("target", t.name);
    r.add("url", t.url);
    r.add("method", t.method);
    r.add("agent", ctx.agent_name());
    r.add("success", success);
    r.add("status_code", code > 0 ? Value(std::int64_t{code}) : Value());
    r.add("error", success ? Value() : Value(error));
    r.add("error_message", success ? Value() : Value(message));
    r.add("response_time_ms", ms(total_us));
    r.add("dns_ms", phase(c.dns));
    r.add("connect_ms", phase(c.connect));
    r.add("tls_ms", phase(c.tls));
    r.add("ttfb_ms", phase(c.ttfb));
    r.add("transfer_ms", phase(c.transfer));
    r.add("body_bytes", static_cast<std::int64_t>(c.body_bytes));
    r.add("body_bytes_wire", static_cast<std::int64_t>(std::max<curl_off_t>(wire, 0)));
    const char* hv = code > 0 ? http_version_text(http_version) : nullptr;
    r.add("http_version", hv != nullptr ? Value(std::string(hv)) : Value());
    r.add("remote_ip", ip != nullptr && *ip != '\0' ? Value(std::string(ip)) : Value());
    r.add("redirects", std::int64_t{c.redirects});
    r.add("failed_url", failed_later ? Value(c.url) : Value());
    r.add("regex_matched", std::move(regex_matched));
    r.add("tls_cert_not_after", c.cert_not_after ? Value(*c.cert_not_after) : Value());
    r.add("tls_cert_issuer", c.cert_issuer ? Value(*c.cert_issuer) : Value());
    r.add("lateness_ms", lateness_ms);
    r.add("tls_version", c.tls_version ? Value(*c.tls_version) : Value());
    r.labels = t.labels;
    if (!success) {
      failed_counter->add();
    }
    if (pending.empty()) {
      pending_since = Clock::now();
    }
    pending.push_back(std::move(r));

    // Next grid slot after this run's slot; slots that passed while it ran are skipped. Once
    // mode: the target is done; removed by a reload while it ran: not scheduled again.
    const std::uint64_t skipped = sched.finish(c.target, Clock::now());
    if (skipped > 0) {
      skipped_counter->add(skipped);
    }
  }

  void collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) {
        continue;
      }
      CURL* e = msg->easy_handle;
      const CURLcode result = msg->data.result;
      Check* c = nullptr;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &c);
      auto it = std::find_if(in_flight_checks.begin(), in_flight_checks.end(),
                             [c](const auto& p) { return p.get() == c; });
      std::unique_ptr<Check> owned = std::move(*it);
      *it = std::move(in_flight_checks.back());
      in_flight_checks.pop_back();
      complete(std::move(owned), result);
    }
  }

  bool flush(bool force) {
    if (pending.empty()) {
      return true;
    }
    if (!force && pending.size() < settings.batch_size &&
        Clock::now() - pending_since < settings.flush_interval) {
      return true;
    }
    std::lock_guard lock(shared.emit_mu);
    while (!pending.empty()) {
      sdk::Batch b;
      b.token = ++shared.token;
      if (pending.size() <= settings.batch_size) {
        b.records = std::move(pending);
        pending.clear();
      } else {
        b.records.assign(std::make_move_iterator(pending.begin()),
                         std::make_move_iterator(pending.begin() +
                                                 static_cast<std::ptrdiff_t>(settings.batch_size)));
        pending.erase(pending.begin(),
                      pending.begin() + static_cast<std::ptrdiff_t>(settings.batch_size));
      }
      // emit() never blocks, so no check in flight waits for a sink. A batch a full buffer
      // refuses stays pending (and new checks wait, see downstream_blocked()).
      const sdk::EmitResult r = emitter.emit(std::move(b));
      if (r == sdk::EmitResult::refused) {
        // NOLINTNEXTLINE(bugprone-use-after-move): emit() leaves a refused batch as it was
        pending.insert(pending.begin(), std::make_move_iterator(b.records.begin()),
                       std::make_move_iterator(b.records.end()));
        return true;
      }
      if (!sdk::taken(r)) {
        pending.clear();
        return false;
      }
    }
    return true;
  }

  sdk::Status run() {
    schedule_all();
    while (!ctx.stop_requested() && !stop) {
      if (has_changes) {
        apply_changes();
      }
      auto now = Clock::now();
      const std::size_t due = sched.poll(now);
      // Results the pipeline refused (a `block` buffer at twice its limit) are kept; past
      // four batches of them no new check starts: checks are delayed by the downstream,
      // counted and logged as such, never recorded as a target's failure.
      if (due > 0 && pending.size() > 4 * settings.batch_size) {
        if (due > delayed_seen) {
          delayed_counter->add(due - delayed_seen);
        }
        delayed_seen = due;
        limiter.log(ctx, sdk::LogLevel::warn, "delayed",
                    "downstream full: " + std::to_string(due) +
                        " due checks delayed (results waiting: " + std::to_string(pending.size()) +
                        ")");
        if (emitter.wait_writable(std::chrono::milliseconds(0))) {
          (void)flush(true);
        }
      }
      if (pending.size() <= 4 * settings.batch_size) {
        delayed_seen = 0;
      }
      while (in_flight_checks.size() < max_in_flight && pending.size() <= 4 * settings.batch_size) {
        const auto slot = sched.start_next(now);
        if (!slot) {
          break;
        }
        start_check(slot->target, slot->scheduled);
      }
      int running = 0;
      curl_multi_perform(multi, &running);
      collect();
      if (!flush(false)) {
        break;
      }
      if (sched.done()) {
        break;
      }
      // Sleep until the next due check, curl's next timeout (curl_multi_poll takes the
      // shorter one), the batch deadline or a wakeup.
      now = Clock::now();
      auto wake = now + std::chrono::seconds(1);
      if (const auto next = sched.next_scheduled()) {
        wake = std::min(wake, *next);
      }
      if (sched.ready_count() > 0 && in_flight_checks.size() < max_in_flight) {
        wake = now;
      }
      if (!pending.empty()) {
        wake = std::min(wake, pending_since + settings.flush_interval);
      }
      const auto wait_us =
          std::chrono::duration_cast<std::chrono::microseconds>(wake - now).count();
      const int wait_ms = wait_us <= 0 ? 0 : static_cast<int>((wait_us + 999) / 1000);
      if (wait_ms > 0 && !has_changes) {
        curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
      }
    }
    // Stopping: checks in flight are abandoned (not recorded); finished results are emitted.
    aborted_counter->add(in_flight_checks.size());
    for (auto& c : in_flight_checks) {
      curl_multi_remove_handle(multi, c->easy);
      c->prepared.reset();
      pool.push_back(std::move(c));
    }
    in_flight_checks.clear();
    (void)flush(true);
    return sdk::Status::ok();
  }
};

// Reloads targets_file while the checks run: on SIGHUP and when a stat() of the file every
// targets_file_poll shows a change (another inode, size or modification time). The new list is
// validated exactly as at start; a file that fails is refused (logged with its
// file:line:column message) and the running set stays. Otherwise each loop gets its changes:
// added targets start on their own grid slot, removed ones stop after a check in flight,
// changed ones keep their schedule.
//
// SIGHUP: the host calls Source::reload() (SDK ABI 1.1) on every source; on_reload() wakes this
// reloader, which re-reads the file on its own thread.
struct HttpCheckSource::Reloader {
  struct FileSig {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    std::int64_t mtime_ns = -1;
    bool operator==(const FileSig&) const = default;
  };

  Reloader(HttpCheckSource& o) : owner(o), path(o.settings_.targets_file) {
    event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd < 0) {
      throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    signature = stat_file();
    for (std::size_t i = 0; i < o.settings_.targets.size(); ++i) {
      const Target& t = o.settings_.targets[i];
      current.emplace(t.name, Entry{i % o.engines_.size(), t.fingerprint});
    }
    counts.assign(o.engines_.size(), 0);
    for (const auto& [name, e] : current) {
      ++counts[e.engine];
    }
    reloads = &o.ctx().counter("reloads");
    refused = &o.ctx().counter("reloads_refused");
    std::lock_guard lock(registry_mu());
    registry().push_back(this);
  }
  ~Reloader() {
    {
      std::lock_guard lock(registry_mu());
      auto& r = registry();
      r.erase(std::remove(r.begin(), r.end(), this), r.end());
    }
    request_stop();
    if (thread.joinable()) {
      thread.join();
    }
    if (sig_fd >= 0) {
      ::close(sig_fd);
    }
    ::close(event_fd);
  }
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  struct Entry {
    std::size_t engine;
    std::uint64_t fingerprint;
  };

  static std::mutex& registry_mu() {
    static std::mutex mu;
    return mu;
  }
  static std::vector<Reloader*>& registry() {
    static std::vector<Reloader*> r;
    return r;
  }

  void start() {
    thread = std::thread([this] { loop(); });
  }

  void request_stop() {
    stop = true;
    wake();
  }
  void wake() const {
    const std::uint64_t one = 1;
    (void)!::write(event_fd, &one, sizeof one);
  }

  FileSig stat_file() const {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return {};
    }
    return {st.st_dev, st.st_ino, st.st_size,
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  }

  void loop() {
    const int poll_ms = owner.settings_.targets_file_poll.count() > 0
                            ? static_cast<int>(owner.settings_.targets_file_poll.count())
                            : -1;
    auto next_poll = Clock::now() + owner.settings_.targets_file_poll;
    while (!stop) {
      pollfd fds[2] = {{event_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
      int wait_ms = -1;
      if (poll_ms > 0) {
        wait_ms = static_cast<int>(std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now())
                   .count()));
      }
      ::poll(fds, sig_fd >= 0 ? 2 : 1, wait_ms);
      if (stop) {
        break;
      }
      std::uint64_t n = 0;
      (void)!::read(event_fd, &n, sizeof n);
      if (sig_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        while (::read(sig_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        }
        std::lock_guard lock(registry_mu());
        for (Reloader* r : registry()) {
          r->hup = true;
          r->wake();
        }
      }
      if (hup.exchange(false)) {
        signature = stat_file();
        reload("SIGHUP");
      }
      if (poll_ms > 0 && Clock::now() >= next_poll) {
        next_poll = Clock::now() + owner.settings_.targets_file_poll;
        const FileSig now = stat_file();
        // A file being replaced may be missing for a moment: wait for it to come back.
        if (now.size >= 0 && !(now == signature)) {
          signature = now;
          reload("file changed");
        }
      }
    }
  }

  void reload(const char* why) {
    const auto t0 = Clock::now();
    Settings next;
    try {
      next = parse_settings(owner.config_);
    } catch (const std::exception& e) {
      refused->add();
      owner.ctx().error(std::string("targets_file reload (") + why +
                        ") refused, still checking the previous " + std::to_string(current.size()) +
                        " targets: " + e.what());
      return;
    }
    std::vector<std::vector<TargetChange>> per(owner.engines_.size());
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t changed = 0;
    std::map<std::string, Entry, std::less<>> seen;
    for (auto& t : next.targets) {
      auto it = current.find(t.name);
      if (it == current.end()) {
        const auto least = static_cast<std::size_t>(std::min_element(counts.begin(), counts.end()) -
                                                    counts.begin());
        ++counts[least];
        std::string name = t.name;
        seen.emplace(name, Entry{least, t.fingerprint});
        per[least].push_back({TargetChange::Kind::add, std::move(name),
                              std::make_shared<const Target>(std::move(t))});
        ++added;
      } else {
        const std::size_t engine = it->second.engine;
        std::string name = t.name;
        if (it->second.fingerprint != t.fingerprint) {
          seen.emplace(name, Entry{engine, t.fingerprint});
          per[engine].push_back({TargetChange::Kind::change, std::move(name),
                                 std::make_shared<const Target>(std::move(t))});
          ++changed;
        } else {
          seen.emplace(std::move(name), it->second);
        }
      }
    }
    for (const auto& [name, e] : current) {
      if (seen.find(name) == seen.end()) {
        --counts[e.engine];
        per[e.engine].push_back({TargetChange::Kind::remove, name, nullptr});
        ++removed;
      }
    }
    current = std::move(seen);
    for (std::size_t i = 0; i < per.size(); ++i) {
      if (!per[i].empty()) {
        owner.engines_[i]->post(std::move(per[i]));
      }
    }
    next = Settings{};
#if defined(__GLIBC__)
    malloc_trim(0);  // the parse's YAML and config trees
#endif
    reloads->add();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", ms);
    owner.ctx().info(std::string("targets_file reloaded (") + why +
                     "): " + std::to_string(current.size()) + " targets, " + std::to_string(added) +
                     " added, " + std::to_string(removed) + " removed, " + std::to_string(changed) +
                     " changed, in " + took + " ms");
  }

  HttpCheckSource& owner;
  std::string path;
  int event_fd = -1;
  int sig_fd = -1;
  std::atomic<bool> stop{false};
  std::atomic<bool> hup{false};
  std::thread thread;
  FileSig signature;
  std::map<std::string, Entry, std::less<>> current;  // name -> loop, configuration
  std::vector<std::size_t> counts;                    // targets per loop
  sdk::Counter* reloads = nullptr;
  sdk::Counter* refused = nullptr;
};

HttpCheckSource::HttpCheckSource(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
    : config_(config), settings_(parse_settings(config)) {}

HttpCheckSource::~HttpCheckSource() { reloader_.reset(); }

sdk::Status HttpCheckSource::on_reload() {
  if (reloader_ == nullptr) {
    ctx().info("reload: no targets_file to re-read");
    return sdk::Status::ok();
  }
  reloader_->hup = true;
  reloader_->wake();
  return sdk::Status::ok();
}

sdk::Status HttpCheckSource::on_start() {
  shared_ = std::make_unique<Shared>();
  for (int i = 0; i < settings_.threads; ++i) {
    engines_.push_back(std::make_unique<Engine>(settings_, ctx(), emitter(), *shared_,
                                                static_cast<std::size_t>(i)));
    engines_.back()->init();
  }
  if (!settings_.targets_file.empty() && !settings_.once) {
    reloader_ = std::make_unique<Reloader>(*this);  // notes names and fingerprints first
  }
  for (std::size_t i = 0; i < settings_.targets.size(); ++i) {
    engines_[i % engines_.size()]->initial.push_back(
        std::make_shared<const Target>(std::move(settings_.targets[i])));
  }
  const std::size_t count = settings_.targets.size();
  settings_.targets.clear();
  settings_.targets.shrink_to_fit();
#if defined(__GLIBC__)
  // Parsing thousands of targets (YAML trees, config nodes) leaves freed heap behind; give it
  // back so the resident size reflects what the checks need.
  malloc_trim(0);
#endif
  ctx().info("checking " + std::to_string(count) + " targets" +
             (count != settings_.targets_total
                  ? " (this shard's share of " + std::to_string(settings_.targets_total) + ")"
                  : std::string()) +
             (settings_.threads > 1 ? " on " + std::to_string(settings_.threads) + " threads"
                                    : std::string()));
  return sdk::Status::ok();
}

sdk::Status HttpCheckSource::on_run() {
  if (reloader_ != nullptr) {
    reloader_->start();
  }
  // Loop 0 runs on the host's thread, the others on their own.
  std::vector<std::thread> others;
  std::vector<sdk::Status> results(engines_.size(), sdk::Status::ok());
  for (std::size_t i = 1; i < engines_.size(); ++i) {
    others.emplace_back([this, i, &results] {
      try {
        results[i] = engines_[i]->run();
      } catch (const std::exception& e) {
        results[i] =
            sdk::Status::error(std::string("check loop ") + std::to_string(i) + ": " + e.what());
        on_stop_requested();
      }
    });
  }
  try {
    results[0] = engines_[0]->run();
  } catch (const std::exception& e) {
    results[0] = sdk::Status::error(e.what());
    on_stop_requested();
  }
  if (settings_.once) {
    for (auto& t : others) {
      t.join();
    }
  } else {
    // One loop ending (stop, or the pipeline refusing batches) ends them all.
    on_stop_requested();
    for (auto& t : others) {
      t.join();
    }
  }
  for (const auto& r : results) {
    if (!r.is_ok()) {
      return r;
    }
  }
  return sdk::Status::ok();
}

void HttpCheckSource::on_stop_requested() {
  if (reloader_ != nullptr) {
    reloader_->request_stop();
  }
  for (auto& e : engines_) {
    if (e != nullptr && e->multi != nullptr) {
      e->stop = true;
      curl_multi_wakeup(e->multi);
    }
  }
}

void HttpCheckSource::on_acknowledge(std::uint64_t /*token*/, sdk::AckStatus status) {
  switch (status) {
    case sdk::AckStatus::delivered:
      ctx().counter("acked_delivered").add();
      break;
    case sdk::AckStatus::retryable:
      ctx().counter("acked_retryable").add();
      break;
    case sdk::AckStatus::rejected:
      ctx().counter("acked_rejected").add();
      break;
  }
}

}  // namespace webmon::plugins::http_check
