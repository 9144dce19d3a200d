#include "runtime.hpp"

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <thread>

#include "log.hpp"
#include "options.hpp"

namespace webmon::agent {

using sdk::AckStatus;
using Clock = std::chrono::steady_clock;

namespace {

struct AckState {
  AckState(Node& src, std::uint64_t tok, std::atomic<std::int64_t>& counter)
      : source(src), token(tok), in_flight(counter) {
    in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  void add_share() noexcept { pending.fetch_add(1, std::memory_order_relaxed); }
  void resolve(AckStatus status) noexcept;

  Node& source;
  std::uint64_t token;
  std::atomic<std::int64_t>& in_flight;
  std::atomic<int> pending{1};
  std::atomic<std::uint8_t> worst{0};
};

struct Envelope {
  std::vector<sdk::Record> records;
  std::shared_ptr<AckState> ack;
};

/// A multi-producer, single-consumer queue bounded by the number of records it holds.
class BatchQueue {
 public:
  explicit BatchQueue(std::size_t capacity) : capacity_(capacity) {}

  /// Blocks while full. Returns false (and leaves `e` untouched) when aborted.
  bool push(Envelope&& e) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] {
      return aborted_ || items_.empty() || records_ + e.records.size() <= capacity_;
    });
    if (aborted_) {
      return false;
    }
    records_ += e.records.size();
    items_.push_back(std::move(e));
    not_empty_.notify_one();
    return true;
  }

  /// Blocks while empty. Returns false when closed and drained, or aborted.
  bool pop(Envelope& out) {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return aborted_ || closed_ || !items_.empty(); });
    if (aborted_ || items_.empty()) {
      return false;
    }
    out = std::move(items_.front());
    items_.pop_front();
    records_ -= out.records.size();
    not_full_.notify_all();
    return true;
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

  /// Wakes everyone; remaining items are resolved as retryable by the caller.
  std::deque<Envelope> abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
    return std::exchange(items_, {});
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Envelope> items_;
  std::size_t records_ = 0;
  std::size_t capacity_;
  bool closed_ = false;
  bool aborted_ = false;
};

}  // namespace

class HostContext final : public sdk::SourceContext {
 public:
  HostContext(Runtime& rt, Node& node) : rt_(rt), node_(node) {}
  const std::string& component_id() const noexcept override;
  const std::string& agent_name() const noexcept override { return rt_.spec_.agent.name; }
  void log(sdk::LogLevel level, std::string_view message) noexcept override {
    agent::log(level, component_id(), message);
  }
  bool log_enabled(sdk::LogLevel level) const noexcept override {
    return agent::log_enabled(level);
  }
  sdk::Counter& counter(std::string_view name) noexcept override;
  bool stop_requested() const noexcept override;
  bool wait_for_stop(std::chrono::milliseconds timeout) noexcept override;
  bool emit(sdk::Batch&& batch) noexcept override;

 private:
  Runtime& rt_;
  Node& node_;
};

// Names the calling thread after its component ("src:checks", "sink:db"; Linux keeps 15
// bytes), so `top -H`, perf and gdb show which component is busy.
void name_thread(const char* role, const std::string& id) {
  std::string name = std::string(role) + ":" + id;
  name.resize(std::min<std::size_t>(name.size(), 15));
  (void)pthread_setname_np(pthread_self(), name.c_str());
}

struct Node {
  const ComponentSpec* spec = nullptr;
  LoadedPlugin plugin;
  ComponentMetrics* metrics = nullptr;
  std::unique_ptr<HostContext> ctx;
  sdk::Source* source = nullptr;
  sdk::Transform* transform = nullptr;
  sdk::Sink* sink = nullptr;
  std::unique_ptr<BatchQueue> queue;
  std::vector<Node*> consumers;
  std::atomic<int> producers_left{0};
  std::atomic<bool> started{false};
  std::thread thread;

  ~Node() {
    // Components first (their destructors run plugin code), then the library reference.
    delete source;
    delete transform;
    delete sink;
    ctx.reset();
  }
};

namespace {

void AckState::resolve(AckStatus status) noexcept {
  auto s = static_cast<std::uint8_t>(status);
  std::uint8_t cur = worst.load(std::memory_order_relaxed);
  while (s > cur && !worst.compare_exchange_weak(cur, s, std::memory_order_relaxed)) {
  }
  if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const auto combined = static_cast<AckStatus>(worst.load(std::memory_order_relaxed));
    source.source->acknowledge(token, combined);
    in_flight.fetch_sub(1, std::memory_order_release);
  }
}

/// The host's side of one sink's share of a batch.
class BranchAck final : public sdk::AckTarget {
 public:
  BranchAck(std::shared_ptr<AckState> state, Node& sink, std::size_t records)
      : state_(std::move(state)), sink_(sink), records_(records) {}
  void resolve(AckStatus status) noexcept override {
    if (status == AckStatus::delivered) {
      sink_.metrics->sent().add(records_);
    } else {
      sink_.metrics->errors().add(records_);
    }
    state_->resolve(status);
    delete this;
  }

 private:
  ~BranchAck() = default;
  std::shared_ptr<AckState> state_;
  Node& sink_;
  std::size_t records_;
};

/// Hands records to every consumer of `from`, copying for all but the last.
void dispatch(Node& from, std::vector<sdk::Record>&& records, std::shared_ptr<AckState> ack) {
  if (records.empty()) {
    ack->resolve(AckStatus::delivered);
    return;
  }
  from.metrics->sent().add(records.size());
  const std::size_t k = from.consumers.size();
  for (std::size_t i = 0; i < k; ++i) {
    Envelope e;
    if (i + 1 < k) {
      ack->add_share();
      e.records = records;
      e.ack = ack;
    } else {
      e.records = std::move(records);
      e.ack = std::move(ack);
    }
    auto share = e.ack;
    if (!from.consumers[i]->queue->push(std::move(e))) {
      share->resolve(AckStatus::retryable);  // aborting
    }
  }
}

std::string kind_name(sdk::PluginKind k) { return sdk::to_string(k); }

}  // namespace

const std::string& HostContext::component_id() const noexcept { return node_.spec->id; }

sdk::Counter& HostContext::counter(std::string_view name) noexcept {
  try {
    return node_.metrics->counter(name);
  } catch (...) {
    return node_.metrics->errors();
  }
}

bool HostContext::stop_requested() const noexcept {
  if (node_.spec->section == sdk::PluginKind::source) {
    return rt_.stop_.load() || rt_.abort_.load();
  }
  return rt_.abort_.load();
}

bool HostContext::wait_for_stop(std::chrono::milliseconds timeout) noexcept {
  std::unique_lock lock(rt_.mu_);
  return rt_.cv_.wait_for(lock, timeout, [&] { return stop_requested(); });
}

bool HostContext::emit(sdk::Batch&& batch) noexcept {
  if (node_.spec->section != sdk::PluginKind::source || rt_.abort_.load()) {
    return false;
  }
  try {
    auto ack = std::make_shared<AckState>(node_, batch.token, rt_.in_flight_);
    dispatch(node_, std::move(batch.records), std::move(ack));
    return true;
  } catch (const std::exception& e) {
    log(sdk::LogLevel::error, std::string("emit failed: ") + e.what());
    return false;
  }
}

Runtime::Runtime(PipelineSpec spec, std::vector<std::string> search_path)
    : spec_(std::move(spec)), search_path_(std::move(search_path)) {}

Runtime::~Runtime() {
  if (!joined_) {
    // Threads may still run plugin code after a shutdown timeout; never unload under them.
    for (auto& n : nodes_) {
      if (n->thread.joinable()) {
        n->thread.detach();
      }
      (void)n.release();
    }
  }
}

void Runtime::build() {
  for (const ComponentSpec* c : topological_order(spec_)) {
    auto node = std::make_unique<Node>();
    node->spec = c;
    const std::string who = c->describe() + " (" + c->plugin + ")";
    try {
      node->plugin = resolve_plugin(c->plugin, search_path_);
    } catch (const PluginError& e) {
      throw sdk::ConfigError(c->plugin_where.str() + ": " + c->describe() + ": " + e.what());
    }
    const sdk::PluginDescriptor& d = *node->plugin.descriptor;
    if (d.kind != c->section) {
      throw sdk::ConfigError(c->plugin_where.str() + ": " + c->describe() + ": plugin '" +
                             c->plugin + "' is a " + kind_name(d.kind) + ", not a " +
                             kind_name(c->section));
    }
    sdk::ConfigNode options = c->options;
    validate_options(options, {d.options, d.option_count}, who);
    node->metrics = &metrics_.add(c->id, c->plugin, kind_name(c->section));
    node->ctx = std::make_unique<HostContext>(*this, *node);
    sdk::Status error;
    switch (d.kind) {
      case sdk::PluginKind::source:
        node->source = d.create_source(options, *node->ctx, error);
        break;
      case sdk::PluginKind::transform:
        node->transform = d.create_transform(options, *node->ctx, error);
        break;
      case sdk::PluginKind::sink:
        node->sink = d.create_sink(options, *node->ctx, error);
        break;
    }
    if (node->source == nullptr && node->transform == nullptr && node->sink == nullptr) {
      std::string msg = error ? std::string("the plugin refused its configuration")
                              : error.message();
      // Plugin messages that start with a position keep it; others get the component's.
      if (msg.rfind(spec_.file + ":", 0) == 0) {
        const std::size_t sep = msg.find(": ");
        msg = msg.substr(0, sep) + ": " + who + ": " + msg.substr(sep + 2);
      } else {
        msg = c->where.str() + ": " + who + ": " + msg;
      }
      throw sdk::ConfigError(msg);
    }
    if (c->section != sdk::PluginKind::source) {
      node->queue = std::make_unique<BatchQueue>(spec_.agent.buffer_records);
    }
    nodes_.push_back(std::move(node));
  }
  for (auto& n : nodes_) {
    for (const auto& input : n->spec->inputs) {
      for (auto& m : nodes_) {
        if (m->spec->id == input) {
          m->consumers.push_back(n.get());
          n->producers_left.fetch_add(1);
        }
      }
    }
  }
}

void Runtime::request_stop() noexcept {
  if (stop_.exchange(true)) {
    return;
  }
  {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }
  for (auto& n : nodes_) {
    if (n->source != nullptr && n->started.load()) {
      n->source->request_stop();
    }
  }
}

void Runtime::fail(const std::string& message) {
  log(sdk::LogLevel::error, "", message);
  failed_ = true;
  request_stop();
}

void Runtime::node_finished(Node& node) {
  for (Node* c : node.consumers) {
    if (c->producers_left.fetch_sub(1) == 1) {
      c->queue->close();
    }
  }
  if (node.sink != nullptr) {
    std::lock_guard lock(mu_);
    --sinks_running_;
    cv_.notify_all();
  }
}

int Runtime::run() {
  // Start consumers before producers so nothing is emitted into a component not yet started.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& n = **it;
    sdk::Status s;
    if (n.sink != nullptr) {
      s = n.sink->start(*n.ctx);
    } else if (n.transform != nullptr) {
      s = n.transform->start(*n.ctx);
    } else {
      s = n.source->start(*n.ctx);
    }
    if (!s) {
      log(sdk::LogLevel::error, "",
          n.spec->describe() + " (" + n.spec->plugin + ") failed to start: " + s.message());
      for (auto jt = nodes_.rbegin(); jt != it; ++jt) {
        if ((*jt)->sink != nullptr) {
          (void)(*jt)->sink->flush(std::chrono::milliseconds(0));
        }
      }
      return 1;
    }
    n.started = true;
  }
  log(sdk::LogLevel::info, "",
      "pipeline '" + spec_.file + "' running: " + std::to_string(nodes_.size()) + " components");

  for (auto& n : nodes_) {
    if (n->sink != nullptr) {
      ++sinks_running_;
    }
  }
  joined_ = false;  // threads exist from here until they are joined
  for (auto& np : nodes_) {
    Node& n = *np;
    if (n.sink != nullptr) {
      n.thread = std::thread([this, &n] {
        name_thread("sink", n.spec->id);
        Envelope e;
        while (n.queue->pop(e)) {
          const std::size_t count = e.records.size();
          n.metrics->received().add(count);
          n.sink->write(sdk::Batch{std::move(e.records), 0},
                        sdk::Ack(new BranchAck(std::move(e.ack), n, count)));
        }
        const sdk::Status s = n.sink->flush(spec_.agent.shutdown_timeout);
        if (!s) {
          fail(n.spec->describe() + " failed to flush: " + s.message());
        }
        node_finished(n);
      });
    } else if (n.transform != nullptr) {
      n.thread = std::thread([this, &n] {
        name_thread("tr", n.spec->id);
        Envelope e;
        while (n.queue->pop(e)) {
          const std::size_t before = e.records.size();
          n.metrics->received().add(before);
          const sdk::Status s = n.transform->process(e.records);
          if (!s) {
            n.metrics->errors().add(before);
            n.ctx->log(sdk::LogLevel::error, "batch rejected: " + s.message());
            e.ack->resolve(AckStatus::rejected);
            continue;
          }
          if (e.records.size() < before) {
            n.metrics->dropped().add(before - e.records.size());
          }
          dispatch(n, std::move(e.records), std::move(e.ack));
        }
        node_finished(n);
      });
    }
  }
  for (auto& np : nodes_) {
    Node& n = *np;
    if (n.source != nullptr) {
      n.thread = std::thread([this, &n] {
        name_thread("src", n.spec->id);
        const sdk::Status s = n.source->run();
        if (!s) {
          fail(n.spec->describe() + " (" + n.spec->plugin + ") failed: " + s.message());
        }
        node_finished(n);
      });
    }
  }

  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return sinks_running_ == 0 || stop_.load(); });
  if (sinks_running_ != 0) {
    const auto deadline = Clock::now() + spec_.agent.shutdown_timeout;
    log(sdk::LogLevel::info, "",
        "stopping: draining " + std::to_string(in_flight_.load()) +
            " batches in flight (timeout " +
            std::to_string(spec_.agent.shutdown_timeout.count()) + " ms)");
    if (!cv_.wait_until(lock, deadline, [&] { return sinks_running_ == 0; })) {
      abort_ = true;
      cv_.notify_all();
      lock.unlock();
      for (auto& n : nodes_) {
        if (n->queue) {
          for (auto& e : n->queue->abort()) {
            e.ack->resolve(AckStatus::retryable);
          }
        }
      }
      log(sdk::LogLevel::error, "",
          "shutdown timed out after " + std::to_string(spec_.agent.shutdown_timeout.count()) +
              " ms with " + std::to_string(in_flight_.load()) +
              " batches not acknowledged (they were not confirmed by every sink)");
      return 1;
    }
  }
  lock.unlock();
  for (auto& n : nodes_) {
    if (n->thread.joinable()) {
      n->thread.join();
    }
  }
  joined_ = true;
  if (in_flight_.load() != 0) {
    log(sdk::LogLevel::warn, "",
        std::to_string(in_flight_.load()) + " batches finished without acknowledgement");
  }
  return failed_ ? 1 : 0;
}

}  // namespace webmon::agent
