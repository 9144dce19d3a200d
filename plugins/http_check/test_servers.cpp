// Test targets for http_check (see test_servers.hpp).
#include "test_servers.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <string_view>

namespace webmon::plugins::http_check::testing {
namespace {

EVP_PKEY* new_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) {
    throw std::runtime_error("EVP_EC_gen failed");
  }
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    throw std::runtime_error("bad extension " + value);
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* new_cert(const std::string& cn, EVP_PKEY* key, long from_s, long to_s, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), to_s);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("webmon tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

void write_pem(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    throw std::runtime_error("cannot write " + path);
  }
  PEM_write_X509(f, cert);
  std::fclose(f);
}

void write_pem(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    throw std::runtime_error("cannot write " + path);
  }
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads until the end of the request headers (or 2 s / EOF). Returns what was read.
std::string read_request(int fd) {
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos && got.size() < 65536) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) {
      break;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

}  // namespace

TestPki::TestPki(std::string dir) : dir_(std::move(dir)) {
  EVP_PKEY* key = new_key();
  X509* ca = new_cert("webmon Test CA", key, -3600, 86400L * 365, 1);
  X509_set_issuer_name(ca, X509_get_subject_name(ca));
  add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(ca, ca, NID_subject_key_identifier, "hash");
  X509_sign(ca, key, EVP_sha256());
  ca_key_ = key;
  ca_cert_ = ca;
  ca_file_ = dir_ + "/ca.pem";
  write_pem(ca_file_, ca);
}

TestPki::~TestPki() {
  X509_free(static_cast<X509*>(ca_cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
}

CertFiles TestPki::issue(const std::string& name, const std::string& san, long from_s, long to_s,
                         bool self_signed, bool client) {
  static long serial = 100;
  EVP_PKEY* key = new_key();
  X509* cert = new_cert(name, key, from_s, to_s, ++serial);
  X509* issuer = self_signed ? cert : static_cast<X509*>(ca_cert_);
  X509_set_issuer_name(cert, X509_get_subject_name(issuer));
  add_ext(cert, issuer, NID_subject_alt_name, san);
  add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, issuer, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
  X509_sign(cert, self_signed ? key : static_cast<EVP_PKEY*>(ca_key_), EVP_sha256());
  last_not_after_ = static_cast<long long>(std::time(nullptr)) + to_s;
  CertFiles files{dir_ + "/" + name + ".pem", dir_ + "/" + name + ".key"};
  write_pem(files.cert, cert);
  write_pem(files.key, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

HttpServer::HttpServer() : server_(std::make_unique<httplib::Server>()) { start(); }

HttpServer::HttpServer(const CertFiles& certificate)
    : server_(
          std::make_unique<httplib::SSLServer>(certificate.cert.c_str(), certificate.key.c_str())),
      tls_(true) {
  if (!server_->is_valid()) {
    throw std::runtime_error("httplib::SSLServer refused the test certificate");
  }
  start();
}

HttpServer::HttpServer(const ServerOptions& options) : host_(options.host) {
  if (options.certificate) {
    server_ = std::make_unique<httplib::SSLServer>(
        options.certificate->cert.c_str(), options.certificate->key.c_str(),
        options.client_ca_file.empty() ? nullptr : options.client_ca_file.c_str());
    tls_ = true;
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  if (!server_->is_valid()) {
    throw std::runtime_error("httplib refused the test server's certificate or CA");
  }
  start();
}

void HttpServer::start() {
  install_routes();
  port_ = server_->bind_to_any_port(host_);
  if (port_ <= 0) {
    throw std::runtime_error("cannot bind a test server");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  for (int i = 0; i < 500 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

HttpServer::~HttpServer() {
  stopping_ = true;
  server_->stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::string HttpServer::url(const std::string& path) const {
  const std::string host = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  return std::string(tls_ ? "https" : "http") + "://" + host + ":" + std::to_string(port_) + path;
}

std::vector<SeenRequest> HttpServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

int HttpServer::requests_to(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(path);
  return it == counts_.end() ? 0 : it->second;
}

void HttpServer::install_routes() {
  auto& s = *server_;
  s.set_logger([this](const httplib::Request& req, const httplib::Response&) {
    std::lock_guard lock(mu_);
    ++counts_[req.path];
  });
  s.Get("/ok", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello webmon", "text/plain");
  });
  s.Get(R"(/status/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.status = std::stoi(req.matches[1]);
    res.set_content("status " + std::string(req.matches[1]), "text/plain");
  });
  s.Get(R"(/redirect/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    const int n = std::stoi(req.matches[1]);
    if (n == 0) {
      res.set_content("arrived", "text/plain");
    } else {
      res.set_redirect(url("/redirect/" + std::to_string(n - 1)), 302);
    }
  });
  // /redirect-to?url=U[&status=N]: a redirect (302 by default) to any URL; also for POST.
  auto redirect_to = [](const httplib::Request& req, httplib::Response& res) {
    const int status = req.has_param("status") ? std::stoi(req.get_param_value("status")) : 302;
    res.set_redirect(req.get_param_value("url"), status);
  };
  s.Get("/redirect-to", redirect_to);
  s.Post("/redirect-to", redirect_to);
  s.Get("/loop",
        [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/loop", 302); });
  s.Get("/slow", [this](const httplib::Request& req, httplib::Response& res) {
    const int now = ++concurrent_;
    int prev = max_concurrent_.load();
    while (now > prev && !max_concurrent_.compare_exchange_weak(prev, now)) {
    }
    const int ms =
        std::min(5000, req.has_param("ms") ? std::stoi(req.get_param_value("ms")) : 1000);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    --concurrent_;
    res.set_content("slow", "text/plain");
  });
  s.Get("/json", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_param_value("body"), "application/json");
  });
  auto echo = [this](const httplib::Request& req, httplib::Response& res) {
    SeenRequest seen{req.method, req.path, {}, req.body};
    for (const auto& [k, v] : req.headers) {
      seen.headers.emplace(k, v);
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(seen));
    }
    res.set_content("echo", "text/plain");
  };
  s.Get("/echo", echo);
  s.Post("/echo", echo);
  s.Put("/echo", echo);
  s.Delete("/echo", echo);
  s.Get("/large", [](const httplib::Request& req, httplib::Response& res) {
    const std::size_t n =
        req.has_param("bytes") ? std::stoul(req.get_param_value("bytes")) : (3U << 20U);
    std::string body(n - 10, 'a');
    body += "END-MARKER";
    res.set_content(body, "text/plain");
  });
  // 64 KiB chunks for 30 s; ?pace_ms=N waits N ms before each chunk (a body that never ends
  // and never grows large, however fast the machine).
  s.Get("/endless", [this](const httplib::Request& req, httplib::Response& res) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const auto pace = std::chrono::milliseconds(
        req.has_param("pace_ms") ? std::stoul(req.get_param_value("pace_ms")) : 0);
    res.set_chunked_content_provider("text/plain",
                                     [this, until, pace](std::size_t, httplib::DataSink& sink) {
                                       static const std::string chunk(64 * 1024, 'x');
                                       if (pace.count() > 0) {
                                         std::this_thread::sleep_for(pace);
                                       }
                                       if (stopping_ || std::chrono::steady_clock::now() > until) {
                                         sink.done();
                                         return true;
                                       }
                                       return sink.write(chunk.data(), chunk.size());
                                     });
  });
}

RawServer::RawServer(std::function<void(int fd)> handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 4096) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      ++accepted_;
      handler_(fd);
      ::close(fd);
    }
  });
}

RawServer::~RawServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string RawServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void RawServer::garbage(int fd) {
  (void)read_request(fd);
  write_all(fd, "SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP at all\r\n\r\n");
}

void RawServer::reset(int fd) {
  (void)read_request(fd);
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void RawServer::keep_alive_ok(int fd) {
  for (int i = 0; i < 1000; ++i) {
    const std::string req = read_request(fd);
    if (req.find("\r\n\r\n") == std::string::npos) {
      return;
    }
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  }
}

void RawServer::huge_header(int fd) {
  if (read_request(fd).find("\r\n\r\n") != std::string::npos) {
    write_all(fd, "HTTP/1.1 200 OK\r\nX-Huge: " + std::string(1U << 20U, 'h') +
                      "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  }
}

void RawServer::ok_close(int fd) {
  if (read_request(fd).find("\r\n\r\n") != std::string::npos) {
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  }
}

namespace {

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return fd;
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return -1;
}

// Copies bytes both ways until either side closes or nothing moves for 5 s.
void relay(int a, int b, std::string_view pending_to_b = {}) {
  write_all(b, pending_to_b);
  char buf[16384];
  for (;;) {
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(p, 2, 5000) <= 0) {
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        return;
      }
      write_all(i == 0 ? b : a, std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }
}

}  // namespace

ForwardProxy::ForwardProxy()
    : server_(std::make_unique<RawServer>([this](int fd) { handle(fd); })) {}

ForwardProxy::~ForwardProxy() { server_.reset(); }

std::string ForwardProxy::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

std::vector<std::string> ForwardProxy::request_lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

void ForwardProxy::handle(int fd) {
  const std::string req = read_request(fd);
  const auto eol = req.find("\r\n");
  if (eol == std::string::npos) {
    return;
  }
  const std::string line = req.substr(0, eol);
  {
    std::lock_guard lock(mu_);
    lines_.push_back(line);
  }
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 <= sp1) {
    write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  constexpr std::string_view kLoopback = "127.0.0.1:";
  constexpr std::string_view kHttp = "http://";
  const bool tunnel = method == "CONNECT";
  if (!tunnel) {
    if (!target.starts_with(kHttp)) {
      write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    target.erase(0, kHttp.size());
  }
  int upstream = -1;
  std::string path = "/";
  if (target.starts_with(kLoopback)) {
    const std::string rest = target.substr(kLoopback.size());
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
      path = rest.substr(slash);
    }
    upstream = connect_loopback(std::atoi(rest.substr(0, slash).c_str()));
  }
  if (upstream < 0) {
    write_all(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  if (tunnel) {
    write_all(fd, "HTTP/1.1 200 Connection established\r\n\r\n");
    relay(fd, upstream);
  } else {
    relay(fd, upstream,
          method + " " + path + " HTTP/1.1\r\nHost: " + target.substr(0, target.find('/')) +
              "\r\nConnection: close\r\n\r\n");
  }
  ::close(upstream);
}

bool port_open(int port) {
  const int fd = connect_loopback(port);
  if (fd >= 0) {
    ::close(fd);
  }
  return fd >= 0;
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace webmon::plugins::http_check::testing
