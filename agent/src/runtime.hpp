// The pipeline runtime: plugin instances, the host-owned delivery to each sink, fan-out,
// acknowledgements routed back to sources, record-kind checks, and graceful shutdown.
//
// Threads: one per source (run()), one per sink (its delivery: buffer → batches → write()).
// Transforms run on the thread that emitted the batch, one call at a time per transform.
// Sources hand batches over with Emitter::emit(), which never blocks: each sink's buffer takes
// the records or applies its `when_full` policy. A batch emitted by a source carries an
// acknowledgement state; every copy made for fan-out holds a share; each sink resolves its
// share (a disk buffer resolves it once the records are in its log); the worst status wins;
// when the last share is resolved the source's acknowledge() runs with the combined status.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "delivery.hpp"
#include "kinds.hpp"
#include "metrics.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"
#include "record_pool.hpp"

namespace webmon::agent {

struct Node;

class Runtime {
 public:
  Runtime(PipelineSpec spec, std::vector<std::string> search_path);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Loads every plugin, validates every component's options, checks the record kinds on
  /// every edge and constructs the components. Nothing is started. Throws sdk::ConfigError
  /// or PluginError (exit code 2).
  void build();

  /// Starts everything and runs until all sources finished and everything drained, or until
  /// request_stop() and the drain that follows. Returns the process exit code: 0 clean (or
  /// stopped with every undelivered record safe in a disk buffer), 1 runtime failure (a
  /// component failed, or records in memory were lost at the shutdown timeout).
  /// After a timeout, threads stuck in plugins are still running: the caller must exit.
  int run();

  /// Asks sources to stop; in-flight batches still drain. Safe from any thread, repeatable.
  void request_stop() noexcept;

  /// What reload() did.
  struct ReloadResult {
    std::size_t reloaded = 0;  ///< sources whose reload() succeeded
    std::size_t failed = 0;    ///< sources whose reload() returned or threw an error
    std::size_t skipped = 0;   ///< running sources built for SDK ABI 1.0 (no reload())
  };
  /// SIGHUP: calls reload() on every running source whose plugin declares SDK ABI minor >= 1
  /// (a 1.0 plugin's object has no such function: it is never called), and logs one line with
  /// the counts, plus one error line per failure. Safe from any thread while run() runs.
  ReloadResult reload() noexcept;

  [[nodiscard]] const PipelineSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  [[nodiscard]] const KindRegistry& kinds() const noexcept { return kinds_; }
  /// Batches emitted by sources and not yet acknowledged.
  [[nodiscard]] std::int64_t in_flight() const noexcept { return in_flight_.load(); }
  /// False while threads started by run() may still execute (after a shutdown timeout).
  [[nodiscard]] bool joined() const noexcept { return joined_; }
  /// The record kinds that flow into each component ("*" when decided at run time), in
  /// topological order: (component id, kinds).
  [[nodiscard]] std::vector<std::pair<std::string, std::vector<std::string>>> edge_kinds() const;

 private:
  friend struct Node;
  friend class HostContext;
  void check_kinds();
  void node_finished(Node& node);
  void fail(const std::string& message);
  sdk::EmitResult dispatch(Node& from, std::vector<sdk::Record>&& records,
                           std::shared_ptr<AckState> ack);
  sdk::EmitResult run_transform(Node& node, std::vector<sdk::Record>&& records,
                                std::shared_ptr<AckState> ack);

  PipelineSpec spec_;
  std::vector<std::string> search_path_;
  Metrics metrics_;
  KindRegistry kinds_;
  // Finished batches' records for sources that overwrite them (Emitter::take_spare_records):
  // up to 16,384 records, a few batches' worth (outlives the nodes, whose sinks fill it).
  RecordPool record_pool_{16384};
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
