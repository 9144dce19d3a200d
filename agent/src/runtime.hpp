// The pipeline runtime: plugin instances, bounded queues between stages, fan-out,
// acknowledgements routed back to sources, and graceful shutdown.
//
// Threads: one per source (run()), one per transform, one per sink. Every transform and sink
// has one input queue bounded in records; a full queue blocks the producer (backpressure).
// A batch emitted by a source carries an acknowledgement state; every copy made for fan-out
// holds a reference; each sink resolves its copy; the worst status wins; when the last copy is
// resolved the source's acknowledge() runs with the combined status.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"

namespace webmon::agent {

struct Node;

class Runtime {
 public:
  Runtime(PipelineSpec spec, std::vector<std::string> search_path);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Loads every plugin, validates every component's options and constructs the components.
  /// Nothing is started. Throws sdk::ConfigError or PluginError (exit code 2).
  void build();

  /// Starts everything and runs until all sources finished and everything drained, or until
  /// request_stop() and the drain that follows. Returns the process exit code: 0 clean,
  /// 1 runtime failure (a component failed, or the drain exceeded the shutdown timeout).
  /// After a timeout, threads stuck in plugins are still running: the caller must exit.
  int run();

  /// Asks sources to stop; in-flight batches still drain. Safe from any thread, repeatable.
  void request_stop() noexcept;

  [[nodiscard]] const PipelineSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  /// Batches emitted by sources and not yet acknowledged.
  [[nodiscard]] std::int64_t in_flight() const noexcept { return in_flight_.load(); }
  /// False while threads started by run() may still execute (after a shutdown timeout).
  [[nodiscard]] bool joined() const noexcept { return joined_; }

 private:
  friend struct Node;
  friend class HostContext;
  void node_finished(Node& node);
  void fail(const std::string& message);

  PipelineSpec spec_;
  std::vector<std::string> search_path_;
  Metrics metrics_;
  std::vector<std::unique_ptr<Node>> nodes_;  // topological order
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  std::atomic<bool> failed_{false};
  std::atomic<std::int64_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t sinks_running_ = 0;
  bool joined_ = true;  // false while threads of run() exist
};

}  // namespace webmon::agent
