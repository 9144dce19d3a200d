// Helpers for the Kafka tests that run against the local stack (scripts/stack): connection
// settings, topics created through the admin API, raw producing and consuming with librdkafka,
// and the agent as a child process that can be signalled or killed.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace webmon::kafka_test {

/// The stack's connection settings: the process environment when KAFKA_PLAINTEXT_HOST is set,
/// else $WEBMON_STACK_DIR/env (default /tmp/webmon-stack/env). Throws when neither exists.
struct Stack {
  std::string plaintext;  // host:port
  std::string ssl, sasl;
  std::string ca, cert, key;
  std::string sasl_user, sasl_password;
  static const Stack& get();
};

/// Repository root (for scripts/stack).
std::string source_dir();

/// A fresh topic "<prefix>.<random>" with `partitions` partitions (waits until it is usable).
std::string create_topic(const std::string& prefix, int partitions);

struct RawMessage {
  std::string key;
  bool has_key = true;
  std::string value;
  std::map<std::string, std::string> headers;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

/// Produces messages to one partition (-1 = by key), waits for every delivery report.
void produce_raw(const std::string& topic, const std::vector<RawMessage>& messages,
                 std::int32_t partition = 0);

/// Reads every partition of `topic` from the beginning until `count` messages arrived or
/// `timeout` passed.
std::vector<RawMessage> consume_raw(const std::string& topic, std::size_t count,
                                    std::chrono::milliseconds timeout);

/// The group's committed offsets per partition (-1 when none), `partitions` partitions.
std::vector<std::int64_t> committed_offsets(const std::string& group, const std::string& topic,
                                            int partitions);

/// The `id` values of JSON lines (a cheap scan, not a parser).
std::vector<std::string> ids_of(const std::vector<std::string>& lines);

/// webmon-agent as a child process with stdout/stderr to files.
class Agent {
 public:
  Agent(const std::string& pipeline_file, const std::string& log_file);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  void signal(int sig);
  /// Waits for exit up to `timeout`; returns the exit code, -signal, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] int pid() const noexcept { return pid_; }

 private:
  int pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

/// Polls `pred` every 50 ms until it holds or `timeout` passes; returns whether it held.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    struct timespec ts {
      0, 50'000'000
    };
    nanosleep(&ts, nullptr);
  }
  return true;
}

}  // namespace webmon::kafka_test
