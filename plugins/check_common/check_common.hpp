// Shared by the check plugins: loading targets_file, the conditions every check kind applies
// the same way (max_response_time, min_cert_validity), and, for the socket-based ones
// (tcp_check, dns_check), holding results until the pipeline takes them (emit never blocks)
// and resolving host names on worker threads so that one slow lookup never stalls the others.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::check_common {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Reads the YAML list named by a `targets_file` option (a path relative to the pipeline file;
/// `${VAR}` substituted as in the pipeline file). Throws ConfigError (file:line:column) when
/// the file cannot be read, is not a list of maps, a map repeats a key, or an item has a key
/// `table` does not know; and, as for the pipeline file, when it is larger than 16 MiB or
/// expands to more than 1,000,000 nodes (nested aliases). (The SDK has no YAML loader for
/// plugins; this is the one the check plugins share.)
sdk::ConfigNode load_targets_file(const sdk::ConfigNode& option,
                                  std::span<const sdk::OptionSpec> table);

/// Fills one T per item of `list` with load_options(); an error names the item, e.g.
/// "option 'targets_file[3].port' must be at most 65535".
template <typename T, std::size_t N>
std::vector<T> load_items(const sdk::ConfigNode& list, const sdk::OptionSpec (&table)[N],
                          const std::string& what) {
  std::vector<T> out;
  for (std::size_t i = 0; i < list.items().size(); ++i) {
    try {
      out.push_back(sdk::load_options<T>(list.items()[i], table));
    } catch (const sdk::ConfigError& e) {
      std::string msg = e.what();
      const std::string item = what + "[" + std::to_string(i) + "]";
      if (const auto at = msg.find("option '"); at != std::string::npos) {
        msg.insert(at + 8, item + ".");
      } else {
        msg += " (" + item + ")";
      }
      throw sdk::ConfigError(msg);
    }
  }
  return out;
}

/// Resolves a path relative to the directory of the file `at` was read from.
std::string resolve_path(const std::string& path, const sdk::ConfigNode& at);

/// A duration as written in a configuration: "14d", "2h", "30s", "500ms" (the largest unit
/// that divides it).
std::string duration_text(std::chrono::milliseconds d);

/// The `slow` condition: the message ("response took 812.4 ms, max_response_time is 500 ms";
/// `what` names the measurement) when `took_ms` exceeds `max`, else nullopt (also without a
/// limit).
std::optional<std::string> slow_message(double took_ms,
                                        const std::optional<std::chrono::milliseconds>& max,
                                        std::string_view what = "response");

/// The `cert_expiring` condition: the message ("certificate expires in 5 days, on
/// 2026-12-07T08:40:00Z; min_cert_validity is 14d") when the leaf certificate's notAfter is
/// less than `min` after `now`, else nullopt (also without a minimum).
std::optional<std::string> cert_expiring_message(
    sdk::Timestamp not_after, sdk::Timestamp now,
    const std::optional<std::chrono::milliseconds>& min);

/// True for names under `.invalid` (RFC 6761 6.4): they never resolve, no resolver is asked.
bool reserved_invalid_name(std::string_view host) noexcept;

/// Finished records waiting for the pipeline. emit() never blocks: a batch the pipeline
/// refuses stays here; `full` makes the next flush wait for wait_writable(0) to say yes.
class Output {
 public:
  Output(sdk::Emitter& emitter, std::size_t batch_size, std::chrono::milliseconds flush_interval)
      : emitter_(emitter), batch_size_(batch_size), flush_interval_(flush_interval) {}

  void add(sdk::Record&& r, SteadyTime now);
  /// Emits full batches, or everything when `force` or the oldest result waited
  /// flush_interval. False when the pipeline has stopped (the source should end).
  bool flush(bool force, SteadyTime now);
  /// More than four batches wait: start no new checks (they are delayed by the downstream).
  [[nodiscard]] bool blocked() const noexcept { return pending_.size() > 4 * batch_size_; }
  /// When flush() next has something to do, or nullopt when nothing waits.
  [[nodiscard]] std::optional<SteadyTime> deadline() const;
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }

 private:
  sdk::Emitter& emitter_;
  std::size_t batch_size_;
  std::chrono::milliseconds flush_interval_;
  std::vector<sdk::Record> pending_;
  SteadyTime pending_since_{};
  std::uint64_t token_ = 0;
  bool was_full_ = false;
};

/// getaddrinfo() on worker threads. Results are collected with take(); fd() turns readable
/// when some are ready (poll it with the sockets).
class Resolver {
 public:
  struct Address {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };
  struct Result {
    std::uint64_t id = 0;
    std::vector<Address> addresses;  // empty on failure
    std::string error;               // gai_strerror text on failure
  };

  explicit Resolver(int threads);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Queues a lookup of host:port for `family` (AF_UNSPEC, AF_INET, AF_INET6), stream or
  /// datagram sockets.
  void submit(std::uint64_t id, std::string host, int port, int family, int socktype);
  [[nodiscard]] int fd() const noexcept { return pipe_[0]; }
  std::vector<Result> take();

  /// Resolves at once when `host` is an address literal (no thread, no lookup).
  static std::optional<std::vector<Address>> numeric(const std::string& host, int port, int family,
                                                     int socktype);

 private:
  struct Job {
    std::uint64_t id;
    std::string host;
    int port;
    int family;
    int socktype;
  };
  void work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<Result> done_;
  bool stop_ = false;
  int pipe_[2] = {-1, -1};
  std::vector<std::thread> threads_;
};

/// Text of an address ("127.0.0.1", "::1").
std::string address_text(const sockaddr_storage& a);

/// Milliseconds between two steady time points, as a double.
inline double ms_between(SteadyTime a, SteadyTime b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace webmon::plugins::check_common
