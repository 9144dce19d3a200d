#include "runtime.hpp"

#include <pthread.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "log.hpp"
#include "options.hpp"
#include "webmon/sdk/log_limit.hpp"

namespace webmon::agent {

using sdk::AckStatus;
using sdk::EmitResult;
using Clock = std::chrono::steady_clock;

class HostContext final : public sdk::Context, public sdk::Emitter {
 public:
  HostContext(Runtime& rt, Node& node) : rt_(rt), node_(node) {}
  std::uint32_t host_abi_minor() const noexcept override { return sdk::kAbiMinor; }
  const std::string& component_id() const noexcept override;
  const std::string& agent_name() const noexcept override { return rt_.spec_.agent.name; }
  const std::string& state_dir() const noexcept override { return rt_.spec_.agent.state_dir; }
  void log(sdk::LogLevel level, std::string_view message) noexcept override {
    agent::log(level, component_id(), message);
  }
  bool log_enabled(sdk::LogLevel level) const noexcept override {
    return agent::log_enabled(level);
  }
  sdk::Counter& counter(std::string_view name) noexcept override;
  bool stop_requested() const noexcept override;
  bool wait_for_stop(std::chrono::milliseconds timeout) noexcept override;
  const sdk::KindSpec* find_kind(std::string_view name) const noexcept override {
    const OwnedKind* k = rt_.kinds_.find(name);
    return k != nullptr ? &k->spec() : nullptr;
  }
  sdk::Status register_kind(const sdk::KindSpec& kind) noexcept override;

  EmitResult emit(sdk::Batch&& batch) noexcept override;
  bool wait_writable(std::chrono::milliseconds timeout) noexcept override;
  std::vector<sdk::Record> take_spare_records() noexcept override {
    return rt_.record_pool_.take();
  }

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

struct Node final : AckReceiver {
  const ComponentSpec* spec = nullptr;
  LoadedPlugin plugin;
  ComponentMetrics* metrics = nullptr;
  std::unique_ptr<HostContext> ctx;
  sdk::Source* source = nullptr;
  sdk::Transform* transform = nullptr;
  sdk::Sink* sink = nullptr;
  std::unique_ptr<SinkDelivery> delivery;  // sinks
  std::mutex transform_mu;                 // transforms: one process() at a time
  std::vector<Node*> consumers;
  std::vector<SinkDelivery*> reachable;  // sources: the sinks their batches reach
  std::atomic<int> producers_left{0};
  std::atomic<bool> started{false};
  std::atomic<bool> running{false};  // sources: between start() and the end of run()
  std::thread thread;
  std::vector<const OwnedKind*> declared;  // kinds this source or transform emits
  std::mutex declared_mu;                  // declared grows when the component registers kinds
  sdk::LogLimiter limiter;

  void acknowledged(std::uint64_t token, AckStatus status) noexcept override {
    const sdk::Status s = source->acknowledge(token, status);
    if (!s) {
      metrics->counter("plugin_exceptions").add();
      limiter.log(*ctx, sdk::LogLevel::error, "ack", "on_acknowledge threw: " + s.message());
    }
  }

  /// A kind the component registered at run time (ctx().register_kind) is one it emits too,
  /// when it declares its kinds (a component that declares `*` is not checked at all).
  void add_registered(const OwnedKind* kind) {
    const std::lock_guard lock(declared_mu);
    if (kind == nullptr || declared.empty()) {
      return;
    }
    for (const OwnedKind*& k : declared) {
      if (k->spec().name == kind->spec().name) {
        k = kind;  // a newer version replaces the one the component started with
        return;
      }
    }
    declared.push_back(kind);
  }

  /// Counts and logs records that do not match the kind this component declared for them.
  void check_records(const std::vector<sdk::Record>& records) {
    const std::lock_guard lock(declared_mu);
    if (declared.empty()) {
      return;
    }
    for (const auto& r : records) {
      const OwnedKind* kind = nullptr;
      for (const OwnedKind* k : declared) {
        if (r.kind == k->spec().name) {
          kind = k;
          break;
        }
      }
      std::optional<std::string> problem;
      if (kind == nullptr) {
        if (transform != nullptr) {
          continue;  // a transform passes its inputs' kinds on: checked where they were emitted
        }
        problem = "kind '" + r.kind + "' is not among the kinds it declares";
      } else {
        problem = check_record(r, *kind);
      }
      if (problem) {
        metrics->counter("schema_mismatch").add();
        limiter.log(*ctx, sdk::LogLevel::warn, "schema",
                    "record " + r.id +
                        " does not match its declaration (passed on; a sink "
                        "may reject it): " +
                        *problem);
      }
    }
  }

  ~Node() {
    // Components first (their destructors run plugin code), then the library reference.
    delivery.reset();
    delete source;
    delete transform;
    delete sink;
    ctx.reset();
  }
};

sdk::Status HostContext::register_kind(const sdk::KindSpec& kind) noexcept {
  try {
    if (auto problem = rt_.kinds_.add(kind)) {
      return sdk::Status::error(*problem);
    }
    node_.add_registered(rt_.kinds_.find(kind.name));
    return sdk::Status::ok();
  } catch (const std::exception& e) {
    return sdk::Status::error(e.what());
  }
}

namespace {

std::string kind_name(sdk::PluginKind k) { return sdk::to_string(k); }

EmitResult worse(EmitResult a, EmitResult b) {
  // refused/stopped > dropped > full > accepted
  auto rank = [](EmitResult r) {
    switch (r) {
      case EmitResult::accepted:
        return 0;
      case EmitResult::full:
        return 1;
      case EmitResult::dropped:
        return 2;
      case EmitResult::refused:
      case EmitResult::stopped:
        return 3;
    }
    return 0;
  };
  return rank(b) > rank(a) ? b : a;
}

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

EmitResult HostContext::emit(sdk::Batch&& batch) noexcept {
  if (node_.spec->section != sdk::PluginKind::source || rt_.abort_.load()) {
    return EmitResult::stopped;
  }
  // Refused before anything is taken, so the source keeps its batch whole.
  for (SinkDelivery* d : node_.reachable) {
    if (d->would_refuse()) {
      node_.metrics->counter("emit_refused").add();
      return EmitResult::refused;
    }
  }
  try {
    node_.check_records(batch.records);
    auto ack = std::make_shared<AckState>(node_, batch.token, rt_.in_flight_);
    const EmitResult r = rt_.dispatch(node_, std::move(batch.records), std::move(ack));
    if (r == EmitResult::full || r == EmitResult::dropped) {
      node_.metrics->counter(r == EmitResult::full ? "emit_full" : "emit_dropped").add();
    }
    return r;
  } catch (const std::exception& e) {
    log(sdk::LogLevel::error, std::string("emit failed: ") + e.what());
    return EmitResult::stopped;
  }
}

bool HostContext::wait_writable(std::chrono::milliseconds timeout) noexcept {
  const auto deadline = Clock::now() + timeout;
  bool ok = true;
  for (SinkDelivery* d : node_.reachable) {
    ok = d->wait_writable(deadline, rt_.stop_) && ok;
  }
  return ok;
}

EmitResult Runtime::dispatch(Node& from, std::vector<sdk::Record>&& records,
                             std::shared_ptr<AckState> ack) {
  if (records.empty()) {
    ack->resolve(AckStatus::delivered);
    return EmitResult::accepted;
  }
  from.metrics->sent().add(records.size());
  EmitResult result = EmitResult::accepted;
  const std::size_t k = from.consumers.size();
  for (std::size_t i = 0; i < k; ++i) {
    std::vector<sdk::Record> copy;
    std::shared_ptr<AckState> share;
    if (i + 1 < k) {     // only the last consumer takes the originals (moved below)
      ack->add_share();  // NOLINT(bugprone-use-after-move): moved in the last pass only
      copy = records;    // NOLINT(bugprone-use-after-move): moved in the last pass only
      share = ack;
    } else {
      copy = std::move(records);
      share = std::move(ack);
    }
    Node& to = *from.consumers[i];
    EmitResult r = EmitResult::accepted;
    if (to.transform != nullptr) {
      r = run_transform(to, std::move(copy), std::move(share));
    } else {
      r = to.delivery->push(std::move(copy), share);
      if (r == EmitResult::refused || r == EmitResult::stopped) {
        share->resolve(AckStatus::retryable);
      }
    }
    result = worse(result, r);
  }
  return result;
}

EmitResult Runtime::run_transform(Node& node, std::vector<sdk::Record>&& records,
                                  std::shared_ptr<AckState> ack) {
  const std::size_t before = records.size();
  node.metrics->received().add(before);
  sdk::Status s;
  {
    std::lock_guard lock(node.transform_mu);
    s = node.transform->process(records);
  }
  if (!s) {
    node.metrics->errors().add(before);
    node.limiter.log(*node.ctx, sdk::LogLevel::error, "process", "batch rejected: " + s.message());
    ack->resolve(AckStatus::rejected);
    return EmitResult::accepted;
  }
  if (records.size() < before) {
    node.metrics->dropped().add(before - records.size());
  }
  node.check_records(records);
  return dispatch(node, std::move(records), std::move(ack));
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
    for (const auto& k : node->plugin.info->kinds) {
      if (auto problem = kinds_.add(k->spec())) {
        throw sdk::ConfigError(c->plugin_where.str() + ": " + who + ": " + *problem +
                               " (another plugin of this pipeline declares it differently)");
      }
      node->declared.push_back(kinds_.find(k->spec().name));
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
      std::string msg =
          error ? std::string("the plugin refused its configuration") : error.message();
      // Plugin messages that start with a position keep it; others get the component's.
      if (msg.rfind(spec_.file + ":", 0) == 0) {
        const std::size_t sep = msg.find(": ");
        msg = msg.substr(0, sep) + ": " + who + ": " + msg.substr(sep + 2);
      } else {
        msg = c->where.str() + ": " + who + ": " + msg;
      }
      throw sdk::ConfigError(msg);
    }
    if (node->sink != nullptr) {
      node->delivery =
          std::make_unique<SinkDelivery>(c->delivery, *node->sink, *node->metrics, *node->ctx);
      node->delivery->set_record_pool(&record_pool_);
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
  for (auto& n : nodes_) {
    if (n->source == nullptr) {
      continue;
    }
    std::set<SinkDelivery*> seen;
    auto walk = [&](auto&& self, Node& at) -> void {
      for (Node* c : at.consumers) {
        if (c->delivery && seen.insert(c->delivery.get()).second) {
          n->reachable.push_back(c->delivery.get());
        }
        self(self, *c);
      }
    };
    walk(walk, *n);
  }
  check_kinds();
}

std::vector<std::pair<std::string, std::vector<std::string>>> Runtime::edge_kinds() const {
  std::map<const Node*, std::set<std::string>> out_kinds;
  std::vector<std::pair<std::string, std::vector<std::string>>> result;
  for (const auto& n : nodes_) {
    std::set<std::string> in;
    for (const auto& input : n->spec->inputs) {
      for (const auto& m : nodes_) {
        if (m->spec->id == input) {
          in.insert(out_kinds[m.get()].begin(), out_kinds[m.get()].end());
        }
      }
    }
    std::set<std::string> out = in;
    for (const auto& k : n->plugin.info->kinds) {
      out.insert(k->spec().name);
    }
    if (n->plugin.info->emits_any) {
      out.insert(std::string(sdk::kAnyKind));
    }
    out_kinds[n.get()] = out;
    if (n->source == nullptr) {
      result.emplace_back(n->spec->id, std::vector<std::string>(in.begin(), in.end()));
    }
  }
  return result;
}

void Runtime::check_kinds() {
  for (const auto& [id, kinds] : edge_kinds()) {
    const Node* node = nullptr;
    for (const auto& n : nodes_) {
      if (n->spec->id == id) {
        node = n.get();
      }
    }
    if (node == nullptr) {
      continue;  // edge_kinds() names only nodes of this runtime
    }
    std::string list;
    for (const auto& k : kinds) {
      list += (list.empty() ? "" : ", ") + k;
    }
    log(sdk::LogLevel::debug, "",
        node->spec->describe() + " receives record kinds: " + (list.empty() ? "(none)" : list));
    const PluginInfo& info = *node->plugin.info;
    const std::string who = node->spec->describe() + " (" + node->spec->plugin + ")";
    for (const auto& k : kinds) {
      if (k == sdk::kAnyKind) {
        continue;  // decided at run time: records are checked as they come
      }
      if (!info.accepts.empty() && std::none_of(info.accepts.begin(), info.accepts.end(),
                                                [&](const char* a) { return k == a; })) {
        std::string accepted;
        for (const char* a : info.accepts) {
          accepted += (accepted.empty() ? "" : ", ") + std::string(a);
        }
        throw sdk::ConfigError(node->spec->input_where.front().str() + ": " + who +
                               " cannot take records of kind '" + k +
                               "' that reach it through its inputs (it accepts: " + accepted + ")");
      }
      const OwnedKind* kind = kinds_.find(k);
      for (const auto& req : info.requires_fields) {
        const sdk::FieldSpec* f = kind != nullptr ? kind->find(req.name) : nullptr;
        if (f == nullptr || f->type != req.type) {
          throw sdk::ConfigError(node->spec->input_where.front().str() + ": " + who +
                                 " cannot take records of kind '" + k + "': it needs a field '" +
                                 req.name + "' of type " + sdk::to_string(req.type) + ", which '" +
                                 k + "' does not declare");
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
      const sdk::Status s = n->source->request_stop();
      if (!s) {
        n->metrics->counter("plugin_exceptions").add();
        n->ctx->error("on_stop_requested threw: " + s.message());
      }
    }
  }
  const auto drain_until = Clock::now() + spec_.agent.shutdown_timeout / 2;
  for (auto& n : nodes_) {
    if (n->delivery) {
      n->delivery->stop(drain_until);
    }
  }
}

Runtime::ReloadResult Runtime::reload() noexcept {
  // The first minor whose Source has reload(); a plugin built for an older minor has no such
  // virtual function, so calling it would jump to whatever follows its vtable.
  constexpr std::uint32_t kReloadMinor = 1;
  ReloadResult result;
  std::string skipped;
  for (auto& n : nodes_) {
    if (n->source == nullptr || !n->running.load()) {
      continue;
    }
    if (n->plugin.descriptor->abi_minor < kReloadMinor) {
      ++result.skipped;
      skipped += (skipped.empty() ? "" : ", ") + n->spec->id;
      continue;
    }
    const sdk::Status s = n->source->reload();
    if (s) {
      ++result.reloaded;
    } else {
      ++result.failed;
      n->metrics->counter("errors").add();
      n->ctx->error("reload failed: " + s.message());
    }
  }
  std::string line = "reload: " + std::to_string(result.reloaded) + " source(s) reloaded, " +
                     std::to_string(result.failed) + " failed, " + std::to_string(result.skipped) +
                     " skipped";
  if (!skipped.empty()) {
    line += " (" + skipped + ": built for SDK ABI 1.0, which has no reload)";
  }
  log(result.failed > 0 ? sdk::LogLevel::warn : sdk::LogLevel::info, "", line);
  return result;
}

void Runtime::fail(const std::string& message) {
  log(sdk::LogLevel::error, "", message);
  failed_ = true;
  request_stop();
}

void Runtime::node_finished(Node& node) {
  for (Node* c : node.consumers) {
    if (c->producers_left.fetch_sub(1) == 1) {
      if (c->transform != nullptr) {
        const sdk::Status s = c->transform->stop();
        if (!s) {
          c->ctx->error("stop failed: " + s.message());
        }
        node_finished(*c);
      } else if (c->delivery) {
        c->delivery->close();
      }
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
      try {
        n.delivery->open();
      } catch (const std::exception& e) {
        s = sdk::Status::error(e.what());
      }
      if (s) {
        s = n.sink->start(*n.ctx);
      }
    } else if (n.transform != nullptr) {
      s = n.transform->start(*n.ctx);
    } else {
      s = n.source->start(*n.ctx, *n.ctx);
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
      SinkDelivery* d = n->delivery.get();
      n->metrics->set_gauges([d] { return d->gauges(); });
    }
  }
  joined_ = false;  // threads exist from here until they are joined
  for (auto& np : nodes_) {
    Node& n = *np;
    if (n.sink != nullptr) {
      n.thread = std::thread([this, &n] {
        name_thread("sink", n.spec->id);
        n.delivery->run();
        // A disk buffer stopped on a signal leaves its records in the log: give what is in
        // flight part of the timeout, the rest stays for the next start.
        const auto timeout = stop_.load() && n.delivery->disk()
                                 ? std::min<std::chrono::milliseconds>(
                                       spec_.agent.shutdown_timeout / 4, std::chrono::seconds(5))
                                 : spec_.agent.shutdown_timeout;
        const sdk::Status s = n.sink->flush(timeout);
        if (!s && stop_.load() && n.delivery->disk()) {
          // Not a failure: what the sink could not confirm is still in the disk buffer.
          n.ctx->warn("flush on stop: " + s.message() + " (kept in the disk buffer)");
        } else if (!s) {
          fail(n.spec->describe() + " failed to flush: " + s.message());
        }
        node_finished(n);
      });
    }
  }
  for (auto& np : nodes_) {
    Node& n = *np;
    if (n.source != nullptr) {
      n.running = true;
      n.thread = std::thread([this, &n] {
        name_thread("src", n.spec->id);
        const sdk::Status s = n.source->run();
        n.running = false;
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
        "stopping: draining " + std::to_string(in_flight_.load()) + " batches in flight (timeout " +
            std::to_string(spec_.agent.shutdown_timeout.count()) + " ms)");
    if (!cv_.wait_until(lock, deadline, [&] { return sinks_running_ == 0; })) {
      abort_ = true;
      cv_.notify_all();
      lock.unlock();
      bool lost_any = false;
      for (auto& n : nodes_) {
        if (!n->delivery) {
          continue;
        }
        const std::size_t left = n->delivery->abort();
        if (left == 0) {
          continue;
        }
        if (n->delivery->disk()) {
          log(sdk::LogLevel::warn, n->spec->id,
              std::to_string(left) + " records remain in the disk buffer " + n->delivery->path() +
                  " (not delivered); they are sent at the next start");
        } else {
          lost_any = true;
          log(sdk::LogLevel::error, n->spec->id,
              std::to_string(left) +
                  " records not delivered are LOST (memory buffer; use "
                  "buffer: {type: disk} to keep them across restarts)");
        }
      }
      log(sdk::LogLevel::error, "",
          "shutdown timed out after " + std::to_string(spec_.agent.shutdown_timeout.count()) +
              " ms with " + std::to_string(in_flight_.load()) + " batches not acknowledged");
      return lost_any || failed_ ? 1 : 0;
    }
  }
  lock.unlock();
  for (auto& n : nodes_) {
    if (n->thread.joinable()) {
      n->thread.join();
    }
  }
  joined_ = true;
  for (auto& n : nodes_) {
    if (n->delivery && n->delivery->disk()) {
      const std::size_t left = n->delivery->pending_records();
      if (left > 0) {
        log(sdk::LogLevel::info, n->spec->id,
            std::to_string(left) + " records remain in the disk buffer " + n->delivery->path() +
                "; they are sent at the next start");
      }
    }
  }
  if (in_flight_.load() != 0) {
    log(sdk::LogLevel::warn, "",
        std::to_string(in_flight_.load()) + " batches finished without acknowledgement");
  }
  return failed_ ? 1 : 0;
}

}  // namespace webmon::agent
