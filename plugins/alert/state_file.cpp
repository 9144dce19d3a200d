// The alert transform's state file (see state_file.hpp).
#include "state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace webmon::plugins::alert {
namespace {

using nlohmann::json;

constexpr int kVersion = 1;

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

std::optional<std::string> opt_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("state file " + path + ": " + what);
}

void write_all(int fd, const std::string& data, const std::string& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail(path, std::string("cannot write: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

void save_state(const Engine& engine, const std::string& path) {
  json targets = json::array();
  for (const auto& [kind, map] : engine.state()) {
    for (const auto& [target, t] : map) {
      json locations = json::array();
      for (const auto& l : t.locations) {
        locations.push_back({{"name", l.name},
                             {"consecutive_failures", l.consecutive_failures},
                             {"consecutive_successes", l.consecutive_successes},
                             {"failing", l.failing},
                             {"last_seen", l.last_seen.micros},
                             {"first_failure", l.first_failure.micros}});
      }
      targets.push_back(
          {{"kind", kind},
           {"target", target},
           {"firing", t.firing},
           {"notified", t.notified},
           {"incident_id", t.incident_id},
           {"since", t.since.micros},
           {"last_notified", t.last_notified.micros},
           {"last_error", opt(t.last_error)},
           {"last_error_message", opt(t.last_error_message)},
           {"last_status_code", t.last_status_code ? json(*t.last_status_code) : json(nullptr)},
           {"peak_failures", t.peak_failures},
           {"locations", std::move(locations)}});
    }
  }
  const std::string data = json{{"version", kVersion}, {"targets", std::move(targets)}}.dump(
                               -1, ' ', false, json::error_handler_t::replace) +
                           "\n";
  const std::string tmp = path + ".tmp";
  if (const auto parent = std::filesystem::path(path).parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);  // the agent's state_dir may be new
    if (ec) {
      fail(path, "cannot create directory " + parent.string() + ": " + ec.message());
    }
  }
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail(path, "cannot create " + tmp + ": " + std::strerror(errno));
  }
  try {
    write_all(fd, data, path);
    if (::fsync(fd) != 0) {
      fail(path, std::string("fsync: ") + std::strerror(errno));
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, "cannot rename " + tmp + ": " + why);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::size_t load_state(Engine& engine, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) {
      return 0;
    }
    fail(path, std::string("cannot read: ") + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::size_t n = 0;
  try {
    const json j = json::parse(ss.str());
    if (j.value("version", 0) != kVersion) {
      fail(path, "unknown version (expected " + std::to_string(kVersion) +
                     "); move the file away to start without saved state");
    }
    for (const auto& e : j.at("targets")) {
      TargetState t;
      t.firing = e.at("firing").get<bool>();
      t.notified = e.at("notified").get<bool>();
      t.incident_id = e.at("incident_id").get<std::string>();
      t.since.micros = e.at("since").get<std::int64_t>();
      t.last_notified.micros = e.at("last_notified").get<std::int64_t>();
      t.last_error = opt_string(e, "last_error");
      t.last_error_message = opt_string(e, "last_error_message");
      if (e.contains("last_status_code") && !e.at("last_status_code").is_null()) {
        t.last_status_code = e.at("last_status_code").get<std::int64_t>();
      }
      t.peak_failures = e.value("peak_failures", std::int64_t{0});
      for (const auto& l : e.at("locations")) {
        LocationState s;
        s.name = l.at("name").get<std::string>();
        s.consecutive_failures = l.at("consecutive_failures").get<std::int32_t>();
        s.consecutive_successes = l.at("consecutive_successes").get<std::int32_t>();
        s.failing = l.at("failing").get<bool>();
        s.last_seen.micros = l.at("last_seen").get<std::int64_t>();
        s.first_failure.micros = l.at("first_failure").get<std::int64_t>();
        t.locations.push_back(std::move(s));
      }
      engine.restore(e.at("kind").get<std::string>(), e.at("target").get<std::string>(),
                     std::move(t));
      ++n;
    }
  } catch (const json::exception& e) {
    fail(path, std::string("malformed (") + e.what() +
                   "); move the file away to start without saved state");
  }
  return n;
}

}  // namespace webmon::plugins::alert
