// http_check engine: one thread, one curl multi handle, a min-heap of due times.
//
// Scheduling: target i runs at start + offset_i + k * interval_i (k = 0, 1, ...), where offset_i
// is a hash of its name modulo its interval, so starts are spread and deterministic and the
// grid never drifts. A due check starts at once unless max_concurrency checks are in flight; it
// then waits in FIFO order (lateness_ms shows the wait). A target is never checked twice at the
// same time: grid slots that pass while its check runs are skipped and counted.
#include <curl/curl.h>
#include <malloc.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <atomic>
#include <deque>
#include <queue>
#include <thread>
#include <utility>

#include "http_check.hpp"

namespace webmon::plugins::http_check {
namespace {

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

bool reserved_invalid_name(std::string_view host) {
  // RFC 6761 section 6.4: names under .invalid never resolve; answer without asking a resolver.
  constexpr std::string_view kInvalid = "invalid";
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  return host == kInvalid ||
         (host.size() > kInvalid.size() && host.ends_with(kInvalid) &&
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
};

// One check loop: its own thread, curl multi handle, schedule and handle pool, for the targets
// with index % threads == its index.
struct HttpCheckSource::Engine {
  struct Check {
    CURL* easy = nullptr;
    std::size_t target = 0;
    Clock::time_point due{};
    Clock::time_point started{};
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

  struct TargetState {
    Clock::time_point base{};  // start + offset: the grid origin
    std::chrono::microseconds interval{};
    curl_slist* headers = nullptr;
    bool running = false;
    bool done = false;  // once mode
  };

  using Due = std::pair<Clock::time_point, std::size_t>;

  Engine(const Settings& s, sdk::Context& c, sdk::Emitter& e, Shared& sh, std::size_t index)
      : settings(s), ctx(c), emitter(e), shared(sh), loop(index) {
    const auto n = static_cast<std::size_t>(settings.threads);
    for (std::size_t i = loop; i < settings.targets.size(); i += n) {
      mine.push_back(i);
    }
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
    for (auto& t : states) {
      curl_slist_free_all(t.headers);
    }
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
  std::vector<std::size_t> mine;  // indices into settings.targets
  std::size_t max_in_flight = 1;
  CURLM* multi = nullptr;
  std::atomic<bool> stop{false};  // set by another loop that ended
  std::vector<TargetState> states;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap;
  std::deque<Due> ready;
  std::vector<std::unique_ptr<Check>> pool;
  std::vector<std::unique_ptr<Check>> in_flight_checks;
  std::size_t once_left = 0;
  Clock::time_point steady0{};
  sdk::Timestamp wall0{};
  std::vector<sdk::Record> pending;
  Clock::time_point pending_since{};
  sdk::Counter* checks_counter = nullptr;
  sdk::Counter* failed_counter = nullptr;
  sdk::Counter* skipped_counter = nullptr;
  sdk::Counter* aborted_counter = nullptr;
  sdk::Counter* delayed_counter = nullptr;
  std::size_t delayed_seen = 0;
  sdk::LogLimiter limiter;

  void init() {
    multi = curl_multi_init();
    if (multi == nullptr) {
      throw std::runtime_error("curl_multi_init failed");
    }
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, settings.reuse_connections
                                                       ? std::max(64L, static_cast<long>(max_in_flight))
                                                       : 0L);
    states.resize(settings.targets.size());
    for (const std::size_t i : mine) {
      const Target& t = settings.targets[i];
      curl_slist* list = nullptr;
      for (const auto& h : t.headers) {
        list = curl_slist_append(list, h.c_str());
      }
      if (t.body) {
        list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
      }
      if (t.bearer_token) {
        list = curl_slist_append(list, ("Authorization: Bearer " + *t.bearer_token).c_str());
      }
      states[i].headers = list;
      states[i].interval = t.interval;
    }
    checks_counter = &ctx.counter("checks");
    failed_counter = &ctx.counter("checks_failed");
    skipped_counter = &ctx.counter("checks_skipped_overlap");
    aborted_counter = &ctx.counter("checks_aborted");
    delayed_counter = &ctx.counter("checks_delayed_downstream");
  }

  void schedule_all() {
    steady0 = Clock::now();
    wall0 = sdk::now();
    for (const std::size_t i : mine) {
      TargetState& st = states[i];
      const auto interval_us = static_cast<std::uint64_t>(st.interval.count());
      const auto offset = settings.once ? std::chrono::microseconds(0)
                                        : std::chrono::microseconds(static_cast<std::int64_t>(
                                              stable_hash(settings.targets[i].name) % interval_us));
      st.base = steady0 + offset;
      heap.emplace(st.base, i);
    }
    once_left = mine.size();
  }

  sdk::Timestamp wall_of(Clock::time_point t) const {
    return sdk::Timestamp{
        wall0.micros +
        std::chrono::duration_cast<std::chrono::microseconds>(t - steady0).count()};
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
    c->body.clear();
    c->body_bytes = 0;
    c->too_large = false;
    c->cert_not_after.reset();
    c->cert_issuer.reset();
    c->tls_version.reset();
    c->client_cert_requested = false;
    c->tls_alert.clear();
    c->error[0] = '\0';
    return c;
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
    auto* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
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
  static void on_tls_info(const SSL* ssl, int where, int ret) {
    auto* c = static_cast<Check*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index()));
    if (c == nullptr) {
      return;
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

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* c = static_cast<Check*>(user);
    const std::size_t len = size * n;
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

  void start_check(std::size_t idx, Clock::time_point due) {
    const Target& t = settings.targets[idx];
    TargetState& st = states[idx];
    auto c = acquire();
    c->target = idx;
    c->due = due;
    c->started = Clock::now();
    c->keep_body = t.body_regex != nullptr || t.body_regex_absent != nullptr;
    c->max_body = t.max_body_size;
    checks_counter->add();
    if (reserved_invalid_name(t.host)) {
      std::snprintf(c->error, sizeof c->error,
                    "Could not resolve host: %s (reserved name under .invalid, RFC 6761)",
                    t.host.c_str());
      st.running = true;
      finish(*c, CURLE_COULDNT_RESOLVE_HOST, false);
      pool.push_back(std::move(c));
      return;
    }
    CURL* e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, t.url.c_str());
    curl_easy_setopt(e, CURLOPT_PRIVATE, c.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t.timeout.count()));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Engine::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Engine::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c.get());
    curl_easy_setopt(e, CURLOPT_USERAGENT, settings.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, st.headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, t.follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, t.max_redirects);
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
    if (t.username) {
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(e, CURLOPT_USERNAME, t.username->c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, t.password ? t.password->c_str() : "");
    }
    if (t.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (t.body) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body->size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.body->data());
      if (t.method != "POST") {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t.method.c_str());
      }
    } else if (t.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t{0});
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    } else if (t.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t.method.c_str());
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
    const CURLMcode rc = curl_multi_add_handle(multi, e);
    if (rc != CURLM_OK) {
      std::snprintf(c->error, sizeof c->error, "curl_multi_add_handle: %s",
                    curl_multi_strerror(rc));
      st.running = true;
      finish(*c, CURLE_FAILED_INIT, false);
      pool.push_back(std::move(c));
      return;
    }
    st.running = true;
    in_flight_checks.push_back(std::move(c));
  }

  // Builds the record of a finished check and schedules the target's next run.
  void finish(Check& c, CURLcode result, bool transferred) {
    const Target& t = settings.targets[c.target];
    TargetState& st = states[c.target];
    const sdk::Timestamp scheduled = wall_of(c.due);
    const double lateness_ms =
        std::chrono::duration<double, std::milli>(c.started - c.due).count();

    long code = 0;
    long http_version = 0;
    long redirects = 0;
    char* ip = nullptr;
    curl_off_t nl = 0;
    curl_off_t co = 0;
    curl_off_t ap = 0;
    curl_off_t pre = 0;
    curl_off_t stt = 0;
    curl_off_t total = 0;
    if (transferred) {
      curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_getinfo(c.easy, CURLINFO_HTTP_VERSION, &http_version);
      curl_easy_getinfo(c.easy, CURLINFO_REDIRECT_COUNT, &redirects);
      curl_easy_getinfo(c.easy, CURLINFO_PRIMARY_IP, &ip);
      curl_easy_getinfo(c.easy, CURLINFO_NAMELOOKUP_TIME_T, &nl);
      curl_easy_getinfo(c.easy, CURLINFO_CONNECT_TIME_T, &co);
      curl_easy_getinfo(c.easy, CURLINFO_APPCONNECT_TIME_T, &ap);
      curl_easy_getinfo(c.easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
      curl_easy_getinfo(c.easy, CURLINFO_STARTTRANSFER_TIME_T, &stt);
      curl_easy_getinfo(c.easy, CURLINFO_TOTAL_TIME_T, &total);
    }
    if (!transferred || total <= 0) {
      total = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started)
                  .count();
    }
    auto ms = [](curl_off_t us) { return static_cast<double>(std::max<curl_off_t>(us, 0)) / 1000.0; };
    auto phase = [&](curl_off_t end, curl_off_t begin) -> Value {
      return end > 0 ? Value(ms(end - begin)) : Value();
    };

    std::string error;
    std::string message;
    if (result != CURLE_OK) {
      error = classify_curl_error(result);
      message = c.error[0] != '\0' ? c.error : curl_easy_strerror(result);
      if (c.too_large) {
        error = "other";
        message = "body larger than max_body_size (" + std::to_string(t.max_body_size) +
                  " bytes); stopped reading";
      } else if (error == "other" && code == 0 && (c.client_cert_requested || !c.tls_alert.empty())) {
        error = "tls";
        message = (!c.tls_alert.empty() ? "the server sent TLS alert '" + c.tls_alert + "'"
                                        : std::string("the server closed the connection")) +
                  (c.client_cert_requested
                       ? std::string(" after requesting a client certificate")
                       : std::string()) +
                  (t.cert_file.empty() && c.client_cert_requested ? " (no cert_file configured)"
                                                                  : "") +
                  ": " + message;
      }
    }
    const bool have_body = result == CURLE_OK && code > 0;
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
    const bool success = error.empty();

    sdk::Record r;
    r.kind = "http_check";
    r.time = scheduled;
    r.id = sdk::make_uuid_v7(scheduled);
    r.fields.reserve(23);
    r.add("target", t.name);
    r.add("url", t.url);
    r.add("method", t.method);
    r.add("agent", ctx.agent_name());
    r.add("success", success);
    r.add("status_code", code > 0 ? Value(std::int64_t{code}) : Value());
    r.add("error", success ? Value() : Value(error));
    r.add("error_message", success ? Value() : Value(message));
    r.add("response_time_ms", ms(total));
    r.add("dns_ms", phase(nl, 0));
    r.add("connect_ms", phase(co, nl));
    r.add("tls_ms", phase(ap, co));
    r.add("ttfb_ms", phase(stt, std::max({pre, ap, co})));
    r.add("transfer_ms", phase(stt > 0 ? total : 0, stt));
    r.add("body_bytes", static_cast<std::int64_t>(c.body_bytes));
    const char* hv = code > 0 ? http_version_text(http_version) : nullptr;
    r.add("http_version", hv != nullptr ? Value(std::string(hv)) : Value());
    r.add("remote_ip", ip != nullptr && *ip != '\0' ? Value(std::string(ip)) : Value());
    r.add("redirects", std::int64_t{redirects});
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

    st.running = false;
    if (settings.once) {
      st.done = true;
      --once_left;
      return;
    }
    // Next grid slot after this run's slot; slots that passed while it ran are skipped.
    const auto now = Clock::now();
    auto next = c.due + st.interval;
    if (next < now) {
      const auto behind = (now - next) / st.interval + 1;
      next += behind * st.interval;
      skipped_counter->add(static_cast<std::uint64_t>(behind));
    }
    heap.emplace(next, c.target);
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
      curl_multi_remove_handle(multi, e);
      finish(*c, result, true);
      auto it = std::find_if(in_flight_checks.begin(), in_flight_checks.end(),
                             [c](const auto& p) { return p.get() == c; });
      std::unique_ptr<Check> owned = std::move(*it);
      *it = std::move(in_flight_checks.back());
      in_flight_checks.pop_back();
      owned->body.clear();
      if (owned->body.capacity() > (256U << 10U)) {
        owned->body.shrink_to_fit();
      }
      pool.push_back(std::move(owned));
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
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(settings.batch_size));
      }
      // emit() never blocks, so no check in flight waits for a sink. A batch a full buffer
      // refuses stays pending (and new checks wait, see downstream_blocked()).
      const sdk::EmitResult r = emitter.emit(std::move(b));
      if (r == sdk::EmitResult::refused) {
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
      auto now = Clock::now();
      while (!heap.empty() && heap.top().first <= now) {
        ready.push_back(heap.top());
        heap.pop();
      }
      // Results the pipeline refused (a `block` buffer at twice its limit) are kept; past
      // four batches of them no new check starts: checks are delayed by the downstream,
      // counted and logged as such, never recorded as a target's failure.
      if (!ready.empty() && pending.size() > 4 * settings.batch_size) {
        if (ready.size() > delayed_seen) {
          delayed_counter->add(ready.size() - delayed_seen);
        }
        delayed_seen = ready.size();
        limiter.log(ctx, sdk::LogLevel::warn, "delayed",
                    "downstream full: " + std::to_string(ready.size()) +
                        " due checks delayed (results waiting: " + std::to_string(pending.size()) +
                        ")");
        if (emitter.wait_writable(std::chrono::milliseconds(0))) {
          (void)flush(true);
        }
      }
      if (pending.size() <= 4 * settings.batch_size) {
        delayed_seen = 0;
      }
      while (!ready.empty() && in_flight_checks.size() < max_in_flight &&
             pending.size() <= 4 * settings.batch_size) {
        const auto [due, idx] = ready.front();
        ready.pop_front();
        start_check(idx, due);
      }
      int running = 0;
      curl_multi_perform(multi, &running);
      collect();
      if (!flush(false)) {
        break;
      }
      if (settings.once && once_left == 0) {
        break;
      }
      // Sleep until the next due check, curl's next timeout (curl_multi_poll takes the
      // shorter one), the batch deadline or a wakeup.
      now = Clock::now();
      auto wake = now + std::chrono::seconds(1);
      if (!heap.empty()) {
        wake = std::min(wake, heap.top().first);
      }
      if (!ready.empty() && in_flight_checks.size() < max_in_flight) {
        wake = now;
      }
      if (!pending.empty()) {
        wake = std::min(wake, pending_since + settings.flush_interval);
      }
      const auto wait_us =
          std::chrono::duration_cast<std::chrono::microseconds>(wake - now).count();
      const int wait_ms = wait_us <= 0 ? 0 : static_cast<int>((wait_us + 999) / 1000);
      if (wait_ms > 0) {
        curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
      }
    }
    // Stopping: checks in flight are abandoned (not recorded); finished results are emitted.
    aborted_counter->add(in_flight_checks.size());
    for (auto& c : in_flight_checks) {
      curl_multi_remove_handle(multi, c->easy);
      pool.push_back(std::move(c));
    }
    in_flight_checks.clear();
    (void)flush(true);
    return sdk::Status::ok();
  }
};

HttpCheckSource::HttpCheckSource(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
    : settings_(parse_settings(config)) {}

HttpCheckSource::~HttpCheckSource() = default;

sdk::Status HttpCheckSource::on_start() {
  shared_ = std::make_unique<Shared>();
  for (int i = 0; i < settings_.threads; ++i) {
    engines_.push_back(
        std::make_unique<Engine>(settings_, ctx(), emitter(), *shared_,
                                 static_cast<std::size_t>(i)));
    engines_.back()->init();
  }
#if defined(__GLIBC__)
  // Parsing thousands of targets (YAML trees, config nodes) leaves freed heap behind; give it
  // back so the resident size reflects what the checks need.
  malloc_trim(0);
#endif
  ctx().info("checking " + std::to_string(settings_.targets.size()) + " targets" +
             (settings_.targets.size() != settings_.targets_total
                  ? " (this shard's share of " + std::to_string(settings_.targets_total) + ")"
                  : std::string()) +
             (settings_.threads > 1 ? " on " + std::to_string(settings_.threads) + " threads"
                                    : std::string()));
  return sdk::Status::ok();
}

sdk::Status HttpCheckSource::on_run() {
  // Loop 0 runs on the host's thread, the others on their own.
  std::vector<std::thread> others;
  std::vector<sdk::Status> results(engines_.size(), sdk::Status::ok());
  for (std::size_t i = 1; i < engines_.size(); ++i) {
    others.emplace_back([this, i, &results] {
      try {
        results[i] = engines_[i]->run();
      } catch (const std::exception& e) {
        results[i] = sdk::Status::error(std::string("check loop ") + std::to_string(i) + ": " +
                                        e.what());
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
