// check_common implementation: targets_file loading, the shared conditions, pending results,
// the resolver pool.
#include "check_common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "webmon/common/env.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::plugins::check_common {
namespace {

using sdk::ConfigNode;

// The host's limits for a pipeline file (agent/src/pipeline.cpp): the largest file, and the
// most nodes after alias expansion (a "billion laughs" file of nested aliases is refused).
constexpr std::uintmax_t kMaxYamlBytes = 16U << 20U;
constexpr std::size_t kMaxYamlNodes = 1'000'000;

ConfigNode from_yaml(const YAML::Node& node, const std::string& file, std::size_t& budget) {
  const YAML::Mark m = node.Mark();
  sdk::SourceLocation where{file, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0};
  if (budget == 0) {
    ConfigNode(std::string(), where)
        .fail("the file expands to more than " + std::to_string(kMaxYamlNodes) +
              " nodes (nested aliases?); webmon refuses it");
  }
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      try {
        return ConfigNode(common::substitute(node.Scalar(), common::process_env), where);
      } catch (const std::runtime_error& e) {
        ConfigNode(node.Scalar(), where).fail(e.what());
      }
    }
    case YAML::NodeType::Sequence: {
      ConfigNode n = ConfigNode::make_list(where);
      for (const auto& item : node) {
        n.push_back(from_yaml(item, file, budget));
      }
      return n;
    }
    case YAML::NodeType::Map: {
      ConfigNode n = ConfigNode::make_map(where);
      for (const auto& kv : node) {
        const std::string key = kv.first.as<std::string>();
        if (n.has(key)) {  // as the host's pipeline loader: a second value is a mistake
          const YAML::Mark k = kv.first.Mark();
          ConfigNode(key, {file, k.line + 1, k.column + 1}).fail("duplicate key '" + key + "'");
        }
        n.set(key, from_yaml(kv.second, file, budget));
      }
      return n;
    }
    default: {
      ConfigNode n;
      n.set_where(where);
      return n;
    }
  }
}

}  // namespace

std::string resolve_path(const std::string& path, const ConfigNode& at) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) {
    return path;
  }
  const fs::path dir = fs::path(at.where().file).parent_path();
  return dir.empty() ? path : (dir / path).string();
}

ConfigNode load_targets_file(const ConfigNode& option, std::span<const sdk::OptionSpec> table) {
  const std::string path = resolve_path(option.as_string(), option);
  std::ifstream in(path);
  if (!in) {
    option.fail("option 'targets_file': cannot read '" + path + "'");
  }
  std::error_code size_error;
  if (const auto size = std::filesystem::file_size(path, size_error);
      !size_error && size > kMaxYamlBytes) {
    option.fail("option 'targets_file': '" + path + "' is larger than " +
                std::to_string(kMaxYamlBytes >> 20U) + " MiB; webmon refuses it");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    option.fail("option 'targets_file': '" + path + "': " + e.what());
  }
  std::size_t budget = kMaxYamlNodes;
  ConfigNode list = from_yaml(root, path, budget);
  if (root.IsNull()) {
    return ConfigNode::make_list(list.where());
  }
  if (!list.is_list()) {
    list.fail("targets_file must hold a YAML list of targets (maps)");
  }
  for (std::size_t i = 0; i < list.items().size(); ++i) {
    const ConfigNode& item = list.items()[i];
    const std::string who = "targets_file[" + std::to_string(i) + "]";
    if (!item.is_map()) {
      item.fail(who + ": expected a map");
    }
    for (const auto& [key, value] : item.entries()) {
      bool known = false;
      for (const auto& spec : table) {
        known = known || key == spec.name;
      }
      if (!known) {
        value.fail(who + ": unknown option '" + key + "'");
      }
    }
  }
  return list;
}

std::string duration_text(std::chrono::milliseconds d) {
  const std::int64_t ms = d.count();
  constexpr std::pair<std::int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (const auto& [size, unit] : kUnits) {
    if (ms != 0 && ms % size == 0) {
      return std::to_string(ms / size) + unit;
    }
  }
  return std::to_string(ms) + "ms";
}

std::optional<std::string> slow_message(double took_ms,
                                        const std::optional<std::chrono::milliseconds>& max,
                                        std::string_view what) {
  if (!max || took_ms <= static_cast<double>(max->count())) {
    return std::nullopt;
  }
  char took[32];
  std::snprintf(took, sizeof took, "%.1f", took_ms);
  return std::string(what) + " took " + took + " ms, max_response_time is " +
         std::to_string(max->count()) + " ms";
}

std::optional<std::string> cert_expiring_message(
    sdk::Timestamp not_after, sdk::Timestamp now,
    const std::optional<std::chrono::milliseconds>& min) {
  if (!min || not_after.micros - now.micros >= min->count() * 1000) {
    return std::nullopt;
  }
  std::string date = sdk::format_rfc3339(not_after);  // ...T08:40:00.000000Z
  if (const auto dot = date.find('.'); dot != std::string::npos) {
    date = date.substr(0, dot) + "Z";
  }
  constexpr std::int64_t kDay = 86'400'000'000;
  const std::int64_t left = not_after.micros - now.micros;
  std::string when;
  if (left < 0) {
    const std::int64_t days = -left / kDay;
    when = "expired " +
           (days == 0 ? std::string("less than a day ago")
                      : std::to_string(days) + (days == 1 ? " day ago" : " days ago")) +
           ", on " + date;
  } else {
    const std::int64_t days = left / kDay;
    when = "expires in " +
           (days == 0 ? std::string("less than a day")
                      : std::to_string(days) + (days == 1 ? " day" : " days")) +
           ", on " + date;
  }
  return "certificate " + when + "; min_cert_validity is " + duration_text(*min);
}

bool reserved_invalid_name(std::string_view host) noexcept {
  constexpr std::string_view kInvalid = "invalid";
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  return host == kInvalid || (host.size() > kInvalid.size() && host.ends_with(kInvalid) &&
                              host[host.size() - kInvalid.size() - 1] == '.');
}

// ---------------------------------------------------------------------------------------------

void Output::add(sdk::Record&& r, SteadyTime now) {
  if (pending_.empty()) {
    pending_since_ = now;
  }
  pending_.push_back(std::move(r));
}

std::optional<SteadyTime> Output::deadline() const {
  if (pending_.empty()) {
    return std::nullopt;
  }
  return pending_since_ + flush_interval_;
}

bool Output::flush(bool force, SteadyTime now) {
  if (pending_.empty()) {
    return true;
  }
  if (!force && pending_.size() < batch_size_ && now - pending_since_ < flush_interval_) {
    return true;
  }
  if (was_full_) {
    // The last emit filled a `block` buffer: emit again only once it has room (never wait).
    if (!emitter_.wait_writable(std::chrono::milliseconds(0))) {
      return true;
    }
    was_full_ = false;
  }
  while (!pending_.empty()) {
    sdk::Batch b;
    b.token = ++token_;
    if (pending_.size() <= batch_size_) {
      b.records = std::move(pending_);
      pending_.clear();
    } else {
      const auto n = static_cast<std::ptrdiff_t>(batch_size_);
      b.records.assign(std::make_move_iterator(pending_.begin()),
                       std::make_move_iterator(pending_.begin() + n));
      pending_.erase(pending_.begin(), pending_.begin() + n);
    }
    const sdk::EmitResult r = emitter_.emit(std::move(b));
    if (r == sdk::EmitResult::refused) {
      // Not taken, batch unchanged: keep it (first) and try again later.
      // NOLINTNEXTLINE(bugprone-use-after-move): emit() leaves a refused batch as it was
      pending_.insert(pending_.begin(), std::make_move_iterator(b.records.begin()),
                      std::make_move_iterator(b.records.end()));
      pending_since_ = now;
      return true;
    }
    if (!sdk::taken(r)) {
      pending_.clear();
      return false;  // stopped
    }
    if (r == sdk::EmitResult::full) {
      was_full_ = true;
      pending_since_ = now;
      return true;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

Resolver::Resolver(int threads) {
  if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { work(); });
  }
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void Resolver::submit(std::uint64_t id, std::string host, int port, int family, int socktype) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(Job{id, std::move(host), port, family, socktype});
  }
  cv_.notify_one();
}

std::vector<Resolver::Result> Resolver::take() {
  char buf[256];
  while (::read(pipe_[0], buf, sizeof buf) > 0) {
  }
  std::lock_guard lock(mu_);
  std::vector<Result> out = std::move(done_);
  done_.clear();
  return out;
}

namespace {

std::vector<Resolver::Address> lookup(const std::string& host, int port, int family, int socktype,
                                      int flags, std::string& error) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = flags;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  std::vector<Resolver::Address> out;
  if (rc != 0) {
    error = ::gai_strerror(rc);
    return out;
  }
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    Resolver::Address a;
    std::memcpy(&a.addr, p->ai_addr, p->ai_addrlen);
    a.len = p->ai_addrlen;
    out.push_back(a);
  }
  ::freeaddrinfo(res);
  if (out.empty()) {
    error = "no address";
  }
  return out;
}

}  // namespace

std::optional<std::vector<Resolver::Address>> Resolver::numeric(const std::string& host, int port,
                                                                int family, int socktype) {
  std::string error;
  auto out = lookup(host, port, family, socktype, AI_NUMERICHOST, error);
  if (out.empty()) {
    return std::nullopt;
  }
  return out;
}

void Resolver::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) {
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Result r;
    r.id = job.id;
    r.addresses = lookup(job.host, job.port, job.family, job.socktype, 0, r.error);
    {
      std::lock_guard lock(mu_);
      done_.push_back(std::move(r));
    }
    const char one = 1;
    (void)!::write(pipe_[1], &one, 1);
  }
}

std::string address_text(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace webmon::plugins::check_common
