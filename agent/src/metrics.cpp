#include "metrics.hpp"

#include <httplib.h>

#include <cstdio>
#include <stdexcept>

namespace webmon::agent {
namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

bool valid_counter_name(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

ComponentMetrics::ComponentMetrics(std::string id, std::string plugin, std::string kind)
    : id_(std::move(id)), plugin_(std::move(plugin)), kind_(std::move(kind)) {
  received_ = &counter("received");
  sent_ = &counter("sent");
  errors_ = &counter("errors");
  dropped_ = &counter("dropped");
}

sdk::Counter& ComponentMetrics::counter(std::string_view name) {
  std::lock_guard lock(mu_);
  const std::string key = valid_counter_name(name) ? std::string(name) : "invalid_name";
  for (auto& [n, c] : index_) {
    if (n == key) {
      return *c;
    }
  }
  sdk::Counter& c = storage_.emplace_back();
  index_.emplace_back(key, &c);
  return c;
}

std::vector<std::pair<std::string, std::uint64_t>> ComponentMetrics::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  out.reserve(index_.size());
  for (const auto& [n, c] : index_) {
    out.emplace_back(n, c->get());
  }
  return out;
}

void ComponentMetrics::set_gauges(GaugeSource source) {
  std::lock_guard lock(mu_);
  gauges_ = std::move(source);
}

std::vector<std::pair<std::string, double>> ComponentMetrics::gauges() const {
  GaugeSource source;
  {
    std::lock_guard lock(mu_);
    source = gauges_;
  }
  return source ? source() : std::vector<std::pair<std::string, double>>{};
}

Metrics::Metrics() = default;

Metrics::~Metrics() { stop_serving(); }

ComponentMetrics& Metrics::add(const std::string& id, const std::string& plugin,
                               const std::string& kind) {
  return components_.emplace_back(id, plugin, kind);
}

std::string Metrics::render() const {
  // Group by counter name so each metric family's HELP/TYPE appears once.
  std::map<std::string, std::string> families;
  for (const auto& c : components_) {
    for (const auto& [name, value] : c.snapshot()) {
      std::string& body = families[name];
      body += "webmon_component_" + name + "_total{component=\"" + escape_label(c.id()) +
              "\",plugin=\"" + escape_label(c.plugin()) + "\",kind=\"" + c.kind() + "\"} " +
              std::to_string(value) + "\n";
    }
  }
  std::map<std::string, std::string> gauge_families;
  for (const auto& c : components_) {
    for (const auto& [name, value] : c.gauges()) {
      char number[64];
      std::snprintf(number, sizeof number, "%.6g", value);
      gauge_families[name] += "webmon_component_" + name + "{component=\"" + escape_label(c.id()) +
                              "\",plugin=\"" + escape_label(c.plugin()) + "\",kind=\"" + c.kind() +
                              "\"} " + number + "\n";
    }
  }
  std::string out;
  for (const auto& [name, body] : families) {
    out += "# HELP webmon_component_" + name + "_total Records or events counted as '" + name +
           "' by a pipeline component.\n";
    out += "# TYPE webmon_component_" + name + "_total counter\n";
    out += body;
  }
  for (const auto& [name, body] : gauge_families) {
    out += "# HELP webmon_component_" + name + " A sink buffer's current '" + name + "'.\n";
    out += "# TYPE webmon_component_" + name + " gauge\n";
    out += body;
  }
  return out;
}

std::vector<std::string> Metrics::summary() const {
  std::vector<std::string> out;
  for (const auto& c : components_) {
    std::string line = c.kind() + " '" + c.id() + "' (" + c.plugin() + "):";
    for (const auto& [name, value] : c.snapshot()) {
      line += " " + name + "=" + std::to_string(value);
    }
    out.push_back(std::move(line));
  }
  return out;
}

void Metrics::serve(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= listen.size()) {
    throw std::runtime_error("agent.metrics.listen: expected host:port, got '" + listen + "'");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const auto port = sdk::parse_int(listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {
    throw std::runtime_error("agent.metrics.listen: invalid port in '" + listen + "'");
  }
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  port_ =
      *port == 0
          ? server_->bind_to_any_port(host)
          : (server_->bind_to_port(host, static_cast<int>(*port)) ? static_cast<int>(*port) : -1);
  if (port_ < 0) {
    server_.reset();
    throw std::runtime_error("agent.metrics.listen: cannot listen on " + listen +
                             " (address in use or not local?)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void Metrics::stop_serving() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  server_.reset();
}

}  // namespace webmon::agent
