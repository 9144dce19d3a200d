// Rate-limited logging that says how much it suppressed.
//
//   sdk::LogLimiter limiter(std::chrono::seconds(10));
//   limiter.log(ctx(), sdk::LogLevel::warn, "produce", "broker down: " + why);
//
// The first message of a key is logged at once; later ones within `interval` are counted, and
// the next one logged after the interval says "(N more like this in the last 10 s)". Keys are
// the message's kind ("produce", "decode"), not its text. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "webmon/sdk/plugin.hpp"

namespace webmon::sdk {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogLimiter(std::chrono::milliseconds interval = std::chrono::seconds(10)) noexcept
      : interval_(interval) {}

  /// Logs `message` through `ctx` unless a message of the same key was logged less than
  /// `interval` ago (then it is only counted). Returns whether it logged.
  bool log(Context& ctx, LogLevel level, std::string_view key, std::string_view message,
           Clock::time_point now = Clock::now()) {
    std::string line;
    {
      std::lock_guard lock(mu_);
      Entry& e = entries_[std::string(key)];
      if (e.logged && now - e.last < interval_) {
        ++e.suppressed;
        return false;
      }
      line.assign(message);
      if (e.suppressed > 0) {
        line +=
            " (" + std::to_string(e.suppressed) + " more like this in the last " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - e.last).count()) +
            " s)";
      }
      e.logged = true;
      e.last = now;
      e.suppressed = 0;
    }
    ctx.log(level, line);
    return true;
  }

  /// Messages of `key` counted but not logged since the last one logged.
  [[nodiscard]] std::uint64_t suppressed(std::string_view key) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(std::string(key));
    return it == entries_.end() ? 0 : it->second.suppressed;
  }

 private:
  struct Entry {
    bool logged = false;
    Clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace webmon::sdk
