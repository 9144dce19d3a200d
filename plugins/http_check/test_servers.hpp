// Test targets for http_check, all on 127.0.0.1 ephemeral ports inside the test process:
// an HTTP(S) server (cpp-httplib) with the routes the tests need, raw TCP servers for
// misbehaving peers, and a small PKI (OpenSSL API) that issues trusted, expired, wrong-host and
// self-signed certificates. Every wait is bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace webmon::plugins::http_check::testing {

/// A certificate and its key, as PEM files.
struct CertFiles {
  std::string cert;
  std::string key;
};

/// A CA and leaf certificates it (or nobody) signs, written under `dir`.
class TestPki {
 public:
  explicit TestPki(std::string dir);
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  [[nodiscard]] const std::string& ca_file() const noexcept { return ca_file_; }
  /// A leaf for `san` (e.g. "IP:127.0.0.1,DNS:localhost") valid from now+from_s to now+to_s,
  /// signed by the CA, or self-signed when `self_signed`; a server certificate, or a client
  /// certificate (extendedKeyUsage clientAuth) when `client`.
  CertFiles issue(const std::string& name, const std::string& san, long from_s, long to_s,
                  bool self_signed = false, bool client = false);
  /// notAfter of the last issued certificate, seconds since the epoch.
  [[nodiscard]] long long last_not_after() const noexcept { return last_not_after_; }

 private:
  std::string dir_;
  std::string ca_file_;
  void* ca_key_ = nullptr;   // EVP_PKEY*
  void* ca_cert_ = nullptr;  // X509*
  long long last_not_after_ = 0;
};

/// One request as the server saw it.
struct SeenRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> headers;
  std::string body;
};

/// Where and how an HttpServer listens.
struct ServerOptions {
  std::string host = "127.0.0.1";        // "::1" for IPv6
  std::optional<CertFiles> certificate;  // HTTPS when set
  std::string client_ca_file;            // HTTPS that requires a client certificate it signs
};

/// cpp-httplib server (HTTP, or HTTPS when given a certificate) with the test routes:
///   /ok                  200 "hello webmon"
///   /status/N            status N
///   /redirect/N          302 to /redirect/N-1, /redirect/0 is 200 "arrived"
///   /redirect-to?url=U&status=N  redirect (302 unless N) to U; GET and POST
///   /loop                302 to itself
///   /slow?ms=N           waits N ms (at most 5000) then 200; counts concurrent requests
///   /json?body=B         200 with body B (Content-Type: application/json)
///   /echo                any method; records the request (see requests())
///   /large?bytes=N       N bytes of 'a' ending in "END-MARKER"
///   /endless             chunked body that never ends (until the client leaves, or 30 s)
class HttpServer {
 public:
  HttpServer();                                       // HTTP
  explicit HttpServer(const CertFiles& certificate);  // HTTPS
  explicit HttpServer(const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string url(const std::string& path) const;
  [[nodiscard]] std::vector<SeenRequest> requests() const;
  [[nodiscard]] int max_concurrent_slow() const noexcept { return max_concurrent_.load(); }
  [[nodiscard]] int requests_to(const std::string& path) const;

 private:
  void install_routes();
  void start();

  std::unique_ptr<httplib::Server> server_;
  std::string host_ = "127.0.0.1";
  bool tls_ = false;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;
  std::map<std::string, int> counts_;
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
  std::atomic<bool> stopping_{false};
};

/// A TCP server on 127.0.0.1 that hands each accepted connection to `handler` (on its accept
/// thread, one at a time). Counts accepted connections.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> handler);
  ~RawServer();
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] int accepted() const noexcept { return accepted_.load(); }
  [[nodiscard]] std::string url(const std::string& path) const;

  /// Handlers: a non-HTTP reply; a connection reset (RST); a tiny keep-alive HTTP server.
  static void garbage(int fd);
  static void reset(int fd);
  static void keep_alive_ok(int fd);
  /// One request, a 200 "ok" with Connection: close.
  static void ok_close(int fd);
  /// One request, a 200 with a response header line of 1 MiB.
  static void huge_header(int fd);

 private:
  std::function<void(int)> handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

/// A forward HTTP proxy on 127.0.0.1 (one connection at a time): records each request line,
/// relays an absolute-form request (`GET http://127.0.0.1:PORT/path HTTP/1.1`) to the origin
/// as an origin-form request with Connection: close, and tunnels `CONNECT 127.0.0.1:PORT`.
/// Only 127.0.0.1 origins are served (502 otherwise).
class ForwardProxy {
 public:
  ForwardProxy();
  ~ForwardProxy();
  ForwardProxy(const ForwardProxy&) = delete;
  ForwardProxy& operator=(const ForwardProxy&) = delete;

  [[nodiscard]] std::string url() const;  // http://127.0.0.1:PORT
  [[nodiscard]] std::vector<std::string> request_lines() const;

 private:
  void handle(int fd);

  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::unique_ptr<RawServer> server_;  // last: its thread stops before the rest goes
};

/// A port on 127.0.0.1 with nothing listening.
int closed_port();
/// Whether something accepts TCP connections on 127.0.0.1:port.
bool port_open(int port);

}  // namespace webmon::plugins::http_check::testing
