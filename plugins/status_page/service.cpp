// The status page service (see service.hpp).
#include "service.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "snapshot.hpp"

namespace webmon::plugins::status_page {
namespace {

std::int64_t wall_clock_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

/// Why binding host:port fails, from a plain socket (cpp-httplib does not say).
std::string bind_failure(const ListenAddress& a) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  const int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return std::string("cannot resolve the host: ") + ::gai_strerror(rc);
  }
  std::string why = "cannot bind";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      why = std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return why;
}

}  // namespace

std::optional<ListenAddress> parse_listen(std::string_view text, std::string& error) {
  ListenAddress a;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected [IPV6]:PORT such as [::1]:8080";
      return std::nullopt;
    }
    a.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 ||
        text.substr(0, colon).find(':') != std::string_view::npos) {
      error = "expected HOST:PORT such as 127.0.0.1:8080 (IPv6 as [::1]:8080)";
      return std::nullopt;
    }
    a.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (a.host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    error = "expected HOST:PORT with a port number 0-65535, such as 127.0.0.1:8080";
    return std::nullopt;
  }
  a.port = std::stoi(std::string(port));
  if (a.port > 65535) {
    error = "port " + std::string(port) + " is out of range (0-65535)";
    return std::nullopt;
  }
  return a;
}

StatusService::StatusService(ServiceOptions options, Logger log, Clock clock)
    : options_(std::move(options)),
      log_(std::move(log)),
      clock_(clock ? std::move(clock) : Clock(wall_clock_us)),
      model_(options_.model) {}

StatusService::~StatusService() { stop(); }

void StatusService::start() {
  bool restored = false;
  if (options_.history) {
    try {
      StatusModel loaded(options_.model);
      const std::size_t n = load_history(*options_.history, clock_(), loaded);
      std::unique_lock lock(mutex_);
      for (const TargetState* t : loaded.states()) {
        model_.restore(*t);
      }
      restored = true;
      log_(false, "restored " + std::to_string(n) + " targets from PostgreSQL (schema '" +
                      options_.history->schema + "')");
    } catch (const HistoryError& e) {
      log_(true, std::string("option 'history_conninfo': history not loaded from PostgreSQL: ") +
                     e.what() +
                     (options_.state_file.empty() ? "; starting with empty history"
                                                  : "; using the snapshot instead"));
    }
  }
  if (!restored && !options_.state_file.empty()) {
    std::string data;
    try {
      if (read_file(options_.state_file, data)) {
        std::unique_lock lock(mutex_);
        const std::size_t n = decode_snapshot(data, model_);
        log_(false,
             "restored " + std::to_string(n) + " targets from '" + options_.state_file + "'");
      }
    } catch (const SnapshotError& e) {
      const std::string bad = options_.state_file + ".bad";
      const bool moved = std::rename(options_.state_file.c_str(), bad.c_str()) == 0;
      log_(true, "option 'state_file': '" + options_.state_file + "' is unusable (" + e.what() +
                     "); starting with empty history" +
                     (moved ? "; the file was moved to '" + bad + "'" : std::string()));
    }
  }

  if (!options_.state_file.empty()) {
    // Written once now, so an unwritable place is refused at start, not found an hour later.
    try {
      save_snapshot();
    } catch (const SnapshotError& e) {
      throw StartError(std::string("option 'state_file': ") + e.what());
    }
  }

  server_ = std::make_unique<httplib::Server>();
  const int threads = options_.http_threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: cpp-httplib also sets SO_REUSEPORT, which would let a second agent
  // share the port silently instead of failing.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  auto headers = [](httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  };
  server_->Get("/", [this, headers](const httplib::Request&, httplib::Response& res) {
    headers(res);
    res.set_content(html(), "text/html; charset=utf-8");
  });
  server_->Get("/status.json", [this, headers](const httplib::Request&, httplib::Response& res) {
    headers(res);
    res.set_content(json(), "application/json");
  });
  const ListenAddress& a = options_.listen;
  const std::string where = a.host + ":" + std::to_string(a.port);
  if (a.port == 0) {
    port_ = server_->bind_to_any_port(a.host);
    if (port_ < 0) {
      throw StartError("option 'listen': cannot listen on " + where + ": " + bind_failure(a));
    }
  } else {
    if (!server_->bind_to_port(a.host, a.port)) {
      throw StartError("option 'listen': cannot listen on " + where + ": " + bind_failure(a) +
                       " (choose another port or stop what uses it)");
    }
    port_ = a.port;
  }
  server_thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op on a server not yet running: wait until it runs (bounded).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!options_.state_file.empty()) {
    snapshot_thread_ = std::thread([this] { snapshot_loop(); });
  }
  started_ = true;
}

std::string StatusService::url() const {
  const std::string& h = options_.listen.host;
  return "http://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
         std::to_string(port_) + "/";
}

ApplyCounts StatusService::apply(const std::vector<Check>& checks) {
  ApplyCounts counts;
  {
    std::unique_lock lock(mutex_);
    for (const auto& c : checks) {
      switch (model_.apply(c)) {
        case Applied::applied:
          ++counts.applied;
          break;
        case Applied::new_target:
          ++counts.applied;
          ++counts.new_targets;
          break;
        case Applied::too_many_targets:
          ++counts.too_many_targets;
          break;
      }
    }
  }
  version_.fetch_add(1, std::memory_order_relaxed);
  return counts;
}

std::vector<Group> StatusService::groups() const {
  const std::int64_t now = clock_();
  std::vector<TargetView> views;
  {
    std::shared_lock lock(mutex_);
    views = model_.view(now);
  }
  return group_targets(std::move(views), options_.page);
}

std::string StatusService::html() const { return render_html(groups(), clock_(), options_.page); }

std::string StatusService::json() const { return render_json(groups(), clock_(), options_.page); }

std::size_t StatusService::targets() const {
  std::shared_lock lock(mutex_);
  return model_.size();
}

void StatusService::save_snapshot() {
  if (options_.state_file.empty()) {
    return;
  }
  std::lock_guard save_lock(save_mutex_);
  const std::uint64_t version = version_.load(std::memory_order_relaxed);
  std::string data;
  {
    std::shared_lock lock(mutex_);
    data = encode_snapshot(model_);
  }
  write_file_atomically(options_.state_file, data);
  saved_version_ = version;
}

void StatusService::snapshot_loop() {
  std::unique_lock lock(stop_mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.snapshot_interval, [this] { return stopping_; });
    if (stopping_) {
      break;
    }
    lock.unlock();
    if (version_.load(std::memory_order_relaxed) != saved_version_.load()) {
      try {
        save_snapshot();
      } catch (const std::exception& e) {
        log_(true, std::string("snapshot not written: ") + e.what());
      }
    }
    lock.lock();
  }
}

void StatusService::stop() {
  if (!started_) {
    return;
  }
  started_ = false;
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (snapshot_thread_.joinable()) {
    snapshot_thread_.join();
  }
  server_->stop();
  if (server_thread_.joinable()) {
    server_thread_.join();
  }
  try {
    save_snapshot();
  } catch (const std::exception& e) {
    log_(true, std::string("final snapshot not written: ") + e.what());
  }
}

}  // namespace webmon::plugins::status_page
