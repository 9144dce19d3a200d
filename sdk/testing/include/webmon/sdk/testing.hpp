// webmon::sdk_testing — unit-test a plugin without the agent.
//
//   #include <webmon/sdk/testing.hpp>
//   namespace wt = webmon::sdk::testing;
//   wt::FakeContext ctx;                                  // logs, counters, kinds, emit
//   auto config = wt::config({{"prefix", "shop-"}});     // a ConfigNode map of scalars
//   MySink sink(config, ctx);  sink.start(ctx);
//   wt::AckLog acks;  sink.write(batch, acks.make());   acks.count(AckStatus::delivered)
//
//   MySource src(config, ctx);  src.start(ctx, ctx);
//   wt::run_source(src, ctx, [&] { return ctx.records().size() >= 3; });  // stops it
//
// Everything here is header-only and depends on the standard library and the SDK only. The
// fake clock (ManualClock) drives sdk::Scheduler without sleeping.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "webmon/sdk/sdk.hpp"

namespace webmon::sdk::testing {

/// A ConfigNode map of scalars: config({{"port", "80"}, {"host", "a"}}).
inline ConfigNode config(std::initializer_list<std::pair<std::string, std::string>> entries,
                         const std::string& file = "test.yaml") {
  ConfigNode map = ConfigNode::make_map({file, 1, 1});
  int line = 1;
  for (const auto& [k, v] : entries) {
    map.set(k, ConfigNode(v, {file, ++line, 3}));
  }
  return map;
}

/// The host as a test sees it: a Context and an Emitter that records everything.
class FakeContext final : public Context, public Emitter {
 public:
  explicit FakeContext(std::string id = "test", std::string agent = "test-agent")
      : id_(std::move(id)), agent_(std::move(agent)) {}

  /// What state_dir() returns (default: the current directory, ".").
  void set_state_dir(std::string dir) { state_dir_ = std::move(dir); }

  // Context
  std::uint32_t host_abi_minor() const noexcept override { return kAbiMinor; }
  const std::string& component_id() const noexcept override { return id_; }
  const std::string& agent_name() const noexcept override { return agent_; }
  void log(LogLevel level, std::string_view message) noexcept override {
    std::lock_guard lock(mu_);
    static constexpr const char* kTag[] = {"T ", "D ", "I ", "W ", "E "};
    logs_.push_back(std::string(kTag[static_cast<int>(level)]) + std::string(message));
  }
  bool log_enabled(LogLevel /*level*/) const noexcept override { return true; }
  const std::string& state_dir() const noexcept override { return state_dir_; }
  Counter& counter(std::string_view name) noexcept override {
    std::lock_guard lock(mu_);
    auto& c = counters_[std::string(name)];
    if (!c) {
      c = std::make_unique<Counter>();
    }
    return *c;
  }
  bool stop_requested() const noexcept override { return stop_.load(); }
  bool wait_for_stop(std::chrono::milliseconds timeout) noexcept override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stop_.load(); });
  }
  const KindSpec* find_kind(std::string_view name) const noexcept override {
    std::lock_guard lock(mu_);
    // The newest registration of the name; older copies stay valid, as in the agent.
    for (auto it = kinds_.rbegin(); it != kinds_.rend(); ++it) {
      if (name == it->spec.name) {
        return &it->spec;
      }
    }
    return nullptr;
  }
  /// Copies the declaration, like the agent (the caller's storage may go away after the call;
  /// pointers find_kind returned stay valid). Unlike the agent it checks nothing.
  Status register_kind(const KindSpec& kind) noexcept override {
    try {
      std::lock_guard lock(mu_);
      OwnedKind& k = kinds_.emplace_back();
      k.spec = kind;
      k.spec.struct_size = sizeof(KindSpec);
      k.spec.name = k.keep(kind.name);
      k.spec.key_field = k.keep(kind.key_field);
      k.spec.description = k.keep(kind.description);
      const auto* base = static_cast<const unsigned char*>(static_cast<const void*>(kind.fields));
      for (std::size_t i = 0; i < kind.field_count; ++i) {
        FieldSpec f{};
        std::memcpy(&f, base + i * kind.field_size,
                    std::min<std::size_t>(kind.field_size, sizeof(FieldSpec)));
        f.name = k.keep(f.name);
        f.unit = k.keep(f.unit);
        f.description = k.keep(f.description);
        k.fields.push_back(f);
      }
      k.spec.fields = k.fields.data();
      k.spec.field_size = sizeof(FieldSpec);
      return Status::ok();
    } catch (const std::exception& e) {
      return Status::error(e.what());
    }
  }

  // Emitter
  EmitResult emit(Batch&& batch) noexcept override {
    std::lock_guard lock(mu_);
    if (stop_.load() && refuse_after_stop_) {
      return EmitResult::stopped;
    }
    if (emit_result_ == EmitResult::refused || emit_result_ == EmitResult::stopped) {
      return emit_result_;
    }
    for (auto& r : batch.records) {
      records_.push_back(std::move(r));
    }
    tokens_.push_back(batch.token);
    cv_.notify_all();
    return emit_result_;
  }
  bool wait_writable(std::chrono::milliseconds /*timeout*/) noexcept override { return true; }
  std::vector<Record> take_spare_records() noexcept override {
    std::lock_guard lock(mu_);
    if (spare_.empty()) {
      return {};
    }
    std::vector<Record> out = std::move(spare_.front());
    spare_.pop_front();
    spare_taken_ += out.size();
    return out;
  }

  // Test controls and observations
  /// Records take_spare_records() hands out next (one call takes one such vector): test that a
  /// source overwrites every part of a reused record.
  void give_spare_records(std::vector<Record> records) {
    std::lock_guard lock(mu_);
    spare_.push_back(std::move(records));
  }
  /// How many records take_spare_records() has handed out.
  std::size_t spare_taken() {
    std::lock_guard lock(mu_);
    return spare_taken_;
  }
  void request_stop() {
    {
      // Under the lock: a waiter between its check of stop_ and its sleep would miss a
      // notification sent without it (and sleep for its whole timeout).
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }
  /// What emit() answers from now on (accepted by default).
  void set_emit_result(EmitResult r) {
    std::lock_guard lock(mu_);
    emit_result_ = r;
  }
  /// Makes kinds known, as the agent does for the kinds loaded plugins declare.
  void add_kind(const KindSpec& kind) { (void)register_kind(kind); }
  std::uint64_t count(const std::string& counter_name) { return counter(counter_name).get(); }
  std::vector<Record> records() {
    std::lock_guard lock(mu_);
    return records_;
  }
  std::vector<std::uint64_t> tokens() {
    std::lock_guard lock(mu_);
    return tokens_;
  }
  /// Waits until `pred(records)` holds or `timeout` passes (the timeout only bounds a hang).
  bool wait_records(const std::function<bool(const std::vector<Record>&)>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(records_); });
  }
  /// Waits until more than `n` batches were taken or `timeout` passes.
  bool wait_tokens_beyond(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return tokens_.size() > n; });
  }
  std::vector<std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }
  std::string all_logs() {
    std::string s;
    for (const auto& l : logs()) {
      s += l + "\n";
    }
    return s;
  }

 private:
  std::string id_;
  std::string agent_;
  std::string state_dir_ = ".";
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  bool refuse_after_stop_ = false;
  EmitResult emit_result_ = EmitResult::accepted;
  std::vector<std::string> logs_;
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  struct OwnedKind {
    KindSpec spec{};
    std::vector<FieldSpec> fields;
    std::deque<std::string> text;
    const char* keep(const char* s) {
      return s != nullptr ? text.emplace_back(s).c_str() : nullptr;
    }
  };
  std::deque<OwnedKind> kinds_;
  std::deque<std::vector<Record>> spare_;
  std::size_t spare_taken_ = 0;
  std::vector<Record> records_;
  std::vector<std::uint64_t> tokens_;
};

/// A steady clock that moves only when told to, for sdk::Scheduler tests:
///   ManualClock clock;  sched.start(clock.now());
///   clock.advance(5s);  auto slot = sched.start_next(clock.now());
class ManualClock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  [[nodiscard]] TimePoint now() const noexcept { return now_; }
  void advance(std::chrono::microseconds d) noexcept { now_ += d; }
  /// Moves to `t` (never backwards).
  void set(TimePoint t) noexcept { now_ = std::max(now_, t); }

 private:
  TimePoint now_;
};

/// Collects how Acks were resolved.
class AckLog {
 public:
  class Target final : public AckTarget {
   public:
    explicit Target(AckLog& log) : log_(log) {}
    void resolve(AckStatus status) noexcept override {
      AckLog& log = log_;
      delete this;
      log.add(status);
    }

   private:
    ~Target() = default;
    AckLog& log_;
  };

  Ack make() { return Ack(new Target(*this)); }
  void add(AckStatus s) {
    std::lock_guard lock(mu_);
    ++counts_[static_cast<int>(s)];
    cv_.notify_all();
  }
  int count(AckStatus s) {
    std::lock_guard lock(mu_);
    return counts_[static_cast<int>(s)];
  }
  int total() {
    std::lock_guard lock(mu_);
    return counts_[0] + counts_[1] + counts_[2];
  }
  /// Waits until `n` Acks were resolved (any status); the timeout only bounds a hang.
  bool wait_total(int n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return counts_[0] + counts_[1] + counts_[2] >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int counts_[3] = {0, 0, 0};
};

/// Runs `source.run()` on a thread until `done()` holds (checked whenever a batch is emitted
/// and every 10 ms; it may call ctx.records() and ctx.count()) or `timeout` passes, then
/// requests a stop and joins. Returns run()'s status. The source must have been started with
/// `ctx`.
inline Status run_source(Source& source, FakeContext& ctx, const std::function<bool()>& done,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  Status result;
  std::atomic<bool> finished{false};
  std::thread t([&] {
    result = source.run();
    finished = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // done() is called without the context's lock held, so it may use ctx.records() or
  // ctx.count(); a new batch wakes the wait early.
  while (!finished.load() && !done() && std::chrono::steady_clock::now() < deadline) {
    const std::size_t seen = ctx.tokens().size();
    (void)ctx.wait_tokens_beyond(seen, std::chrono::milliseconds(10));
  }
  ctx.request_stop();
  (void)source.request_stop();
  t.join();
  return result;
}

/// Runs a transform over records and returns what it passes on.
inline std::vector<Record> run_transform(Transform& transform, std::vector<Record> records,
                                         Status* status = nullptr) {
  const Status s = transform.process(records);
  if (status != nullptr) {
    *status = s;
  }
  return records;
}

namespace detail {
template <typename T, typename Factory>
std::unique_ptr<T> make(const PluginDescriptor* d, Factory factory, PluginKind kind,
                        const ConfigNode& config, Context& ctx) {
  if (d == nullptr || d->kind != kind || factory == nullptr) {
    throw std::runtime_error(std::string("the plugin is not a ") + to_string(kind));
  }
  Status error;
  std::unique_ptr<T> out(factory(config, ctx, error));
  if (!out) {
    throw std::runtime_error(error.message());
  }
  return out;
}
}  // namespace detail

/// Build a component through the plugin's own factory, as the agent does (the constructor's
/// ConfigError becomes the factory's error). In the test, declare the plugin's entry point and
/// link the plugin's source file into the test executable:
///   extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;
///   auto src = wt::make_source(webmon_plugin_entry(), wt::config({{"port", "80"}}), ctx);
/// Throws std::runtime_error with the factory's one-line message ("test.yaml:3:3: option ...").
inline std::unique_ptr<Source> make_source(const PluginDescriptor* d, const ConfigNode& config,
                                           Context& ctx) {
  return detail::make<Source>(d, d != nullptr ? d->create_source : nullptr, PluginKind::source,
                              config, ctx);
}
inline std::unique_ptr<Transform> make_transform(const PluginDescriptor* d,
                                                 const ConfigNode& config, Context& ctx) {
  return detail::make<Transform>(d, d != nullptr ? d->create_transform : nullptr,
                                 PluginKind::transform, config, ctx);
}
inline std::unique_ptr<Sink> make_sink(const PluginDescriptor* d, const ConfigNode& config,
                                       Context& ctx) {
  return detail::make<Sink>(d, d != nullptr ? d->create_sink : nullptr, PluginKind::sink, config,
                            ctx);
}

/// What the plugin's factory says about a configuration: "" when the component (of the
/// descriptor's kind) is built, else the one-line error ("test.yaml:3:3: option ..."). For
/// tests of options and their messages:
///   EXPECT_EQ(wt::config_error(webmon_plugin_entry(), wt::config({{"port", "0"}})),
///             "test.yaml:3:3: option 'port' must be at least 1, got 0");
inline std::string config_error(const PluginDescriptor* d, const ConfigNode& config) {
  FakeContext ctx;
  try {
    if (d != nullptr && d->kind == PluginKind::source) {
      (void)make_source(d, config, ctx);
    } else if (d != nullptr && d->kind == PluginKind::transform) {
      (void)make_transform(d, config, ctx);
    } else {
      (void)make_sink(d, config, ctx);
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace webmon::sdk::testing
