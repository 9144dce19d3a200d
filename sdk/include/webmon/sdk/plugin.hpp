// The plugin boundary: the host context, the three component interfaces, acknowledgements,
// the options table, the descriptor and the export macros.
//
// Rules every plugin follows (docs/plugins.md explains them):
//  * One shared object exports exactly one entry point, made by WEBMON_PLUGIN_SOURCE /
//    WEBMON_PLUGIN_TRANSFORM / WEBMON_PLUGIN_SINK. The host checks the descriptor's ABI
//    version and build key before it calls anything else.
//  * No exception crosses the boundary. The host calls only the public `noexcept` functions of
//    Source, Transform and Sink; they are defined here, inline, and therefore compiled into the
//    plugin, where they catch whatever the plugin's own `on_*` overrides throw.
//  * Everything the host hands a plugin (Context, Ack, Counter) outlives the component object.
//    The host keeps the shared object loaded until every object it created is destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/record.hpp"
#include "webmon/sdk/version.hpp"

#if defined(_WIN32)
#define WEBMON_EXPORT __declspec(dllexport)
#else
#define WEBMON_EXPORT __attribute__((visibility("default")))
#endif

namespace webmon::sdk {

// ---------------------------------------------------------------------------------------------
// Results

/// Success, or a failure with a one-line message (no trailing newline).
class Status {
 public:
  Status() = default;
  static Status ok() { return {}; }
  static Status error(std::string message) { return Status(std::move(message)); }
  [[nodiscard]] bool is_ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

/// How a sink resolved a batch. Ordered: when several sinks resolve one batch the worst
/// (largest) wins.
enum class AckStatus : std::uint8_t {
  delivered = 0,  ///< stored durably (or deliberately dropped by a transform)
  retryable = 1,  ///< not stored now; the same batch may succeed later
  rejected = 2,   ///< never storable as it is
};

inline const char* to_string(AckStatus s) noexcept {
  switch (s) {
    case AckStatus::delivered:
      return "delivered";
    case AckStatus::retryable:
      return "retryable";
    case AckStatus::rejected:
      return "rejected";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Host services

enum class LogLevel : std::uint8_t { trace = 0, debug, info, warn, error };

/// A monotonically increasing count owned by the host; exported as a Prometheus counter.
struct Counter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) noexcept { value.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value.load(std::memory_order_relaxed);
  }
};

/// What the host offers every component. Thread-safe; outlives the component.
class Context {
 public:
  /// The component id from the pipeline file (e.g. "checks").
  [[nodiscard]] virtual const std::string& component_id() const noexcept = 0;
  /// The agent's name (agent.name in the pipeline file).
  [[nodiscard]] virtual const std::string& agent_name() const noexcept = 0;

  /// Logs one line through the agent's logger, tagged with the component id.
  virtual void log(LogLevel level, std::string_view message) noexcept = 0;
  /// Whether the given level is enabled (to skip building expensive messages).
  [[nodiscard]] virtual bool log_enabled(LogLevel level) const noexcept = 0;

  /// A counter of this component, created on first use. "received", "sent", "errors" and
  /// "dropped" are the standard ones the host also maintains; any other name is the plugin's
  /// own. Names are [a-z0-9_]. The reference stays valid for the component's lifetime.
  virtual Counter& counter(std::string_view name) noexcept = 0;

  /// True once the agent is stopping (signal, end of input, or fatal error).
  [[nodiscard]] virtual bool stop_requested() const noexcept = 0;
  /// Sleeps up to `timeout`, returning early with true when stop is requested.
  virtual bool wait_for_stop(std::chrono::milliseconds timeout) noexcept = 0;

  void trace(std::string_view m) noexcept { log(LogLevel::trace, m); }
  void debug(std::string_view m) noexcept { log(LogLevel::debug, m); }
  void info(std::string_view m) noexcept { log(LogLevel::info, m); }
  void warn(std::string_view m) noexcept { log(LogLevel::warn, m); }
  void error(std::string_view m) noexcept { log(LogLevel::error, m); }

 protected:
  ~Context() = default;
};

/// Given to sources: emitting batches into the pipeline.
class SourceContext : public Context {
 public:
  /// Hands a batch to the pipeline. Blocks while downstream queues are full (backpressure).
  /// Returns true when the pipeline took the batch: exactly one Source::acknowledge() with
  /// the batch's token follows, from any thread. Returns false only when the agent is
  /// aborting; the batch was not taken and will not be acknowledged.
  virtual bool emit(Batch&& batch) noexcept = 0;

 protected:
  ~SourceContext() = default;
};

/// The host's side of one batch's acknowledgement (implemented by the host).
class AckTarget {
 public:
  /// Resolves the batch for this sink and releases the target. Called exactly once.
  virtual void resolve(AckStatus status) noexcept = 0;

 protected:
  ~AckTarget() = default;
};

/// A sink's obligation to resolve one batch: call `resolve()` exactly once, from any thread,
/// when the batch's fate is known. Destroying an unresolved Ack resolves it as retryable.
class Ack {
 public:
  Ack() = default;
  explicit Ack(AckTarget* target) noexcept : target_(target) {}
  Ack(Ack&& other) noexcept : target_(std::exchange(other.target_, nullptr)) {}
  Ack& operator=(Ack&& other) noexcept {
    if (this != &other) {
      reset();
      target_ = std::exchange(other.target_, nullptr);
    }
    return *this;
  }
  Ack(const Ack&) = delete;
  Ack& operator=(const Ack&) = delete;
  ~Ack() { reset(); }

  void resolve(AckStatus status) noexcept {
    if (target_ != nullptr) {
      std::exchange(target_, nullptr)->resolve(status);
    }
  }
  [[nodiscard]] bool pending() const noexcept { return target_ != nullptr; }

 private:
  void reset() noexcept { resolve(AckStatus::retryable); }
  AckTarget* target_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Components. Plugins derive from one of these and override the protected on_* functions;
// they may throw from on_* (the public wrappers turn exceptions into errors).

namespace detail {
template <typename F>
Status guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::error(e.what());
  } catch (...) {
    return Status::error("unknown exception");
  }
}
}  // namespace detail

/// Produces batches. Lifecycle: constructed with its config → start() → run() on a host
/// thread until it returns → destroyed. request_stop() may be called from another thread at
/// any time after start(); run() should then return promptly after emitting what it has.
/// acknowledge() may be called from any thread until the source is destroyed.
class Source {
 public:
  virtual ~Source() = default;

  virtual Status start(SourceContext& ctx) noexcept final {
    ctx_ = &ctx;
    return detail::guarded([&] { return on_start(); });
  }
  /// Returns ok when the source has finished (end of input or stop requested).
  virtual Status run() noexcept final {
    return detail::guarded([&] { return on_run(); });
  }
  virtual void request_stop() noexcept final {
    (void)detail::guarded([&] {
      on_stop_requested();
      return Status::ok();
    });
  }
  virtual void acknowledge(std::uint64_t token, AckStatus status) noexcept final {
    (void)detail::guarded([&] {
      on_acknowledge(token, status);
      return Status::ok();
    });
  }

 protected:
  [[nodiscard]] SourceContext& ctx() const noexcept { return *ctx_; }
  virtual Status on_start() { return Status::ok(); }
  virtual Status on_run() = 0;
  /// Wake up run() (e.g. interrupt a poll); ctx().stop_requested() is already true.
  virtual void on_stop_requested() {}
  virtual void on_acknowledge(std::uint64_t /*token*/, AckStatus /*status*/) {}

 private:
  SourceContext* ctx_ = nullptr;
};

/// Changes batches in place: modify, add or remove records. Called from one host thread.
/// A record removed here counts as delivered for its source.
class Transform {
 public:
  virtual ~Transform() = default;

  virtual Status start(Context& ctx) noexcept final {
    ctx_ = &ctx;
    return detail::guarded([&] { return on_start(); });
  }
  /// An error drops the batch's records for this branch and resolves them as rejected.
  virtual Status process(std::vector<Record>& records) noexcept final {
    return detail::guarded([&] { return on_process(records); });
  }

 protected:
  [[nodiscard]] Context& ctx() const noexcept { return *ctx_; }
  virtual Status on_start() { return Status::ok(); }
  virtual Status on_process(std::vector<Record>& records) = 0;

 private:
  Context* ctx_ = nullptr;
};

/// Consumes batches. Lifecycle: constructed → start() → write() for each batch, from one host
/// thread → flush() once at shutdown → destroyed. write() may block to apply backpressure
/// (but not forever: the host drains sinks after stop is requested); it resolves the Ack now
/// or later from any thread. flush()
/// delivers whatever is pending within `timeout` and resolves every outstanding Ack before
/// it returns.
class Sink {
 public:
  virtual ~Sink() = default;

  virtual Status start(Context& ctx) noexcept final {
    ctx_ = &ctx;
    return detail::guarded([&] { return on_start(); });
  }
  /// An error (returned or thrown) is logged; the Ack, unless on_write stored it elsewhere,
  /// is resolved as retryable when on_write's frame ends (the host counts its records as
  /// errors).
  virtual void write(Batch&& batch, Ack&& ack) noexcept final {
    const Status s = detail::guarded([&] { return on_write(std::move(batch), std::move(ack)); });
    if (!s) {
      ctx_->error(s.message());
    }
  }
  virtual Status flush(std::chrono::milliseconds timeout) noexcept final {
    return detail::guarded([&] { return on_flush(timeout); });
  }

 protected:
  [[nodiscard]] Context& ctx() const noexcept { return *ctx_; }
  virtual Status on_start() { return Status::ok(); }
  /// Takes the batch and its Ack by value: keep the Ack until the batch's fate is known, or
  /// resolve it before returning. An Ack dropped unresolved counts as retryable.
  virtual Status on_write(Batch batch, Ack ack) = 0;
  virtual Status on_flush(std::chrono::milliseconds /*timeout*/) { return Status::ok(); }

 private:
  Context* ctx_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Options table and descriptor

enum class OptionType : std::uint8_t {
  boolean,      ///< true / false
  integer,      ///< whole number
  number,       ///< decimal number
  string,       ///< any scalar
  duration,     ///< 250ms, 10s, 5m, 1h, 1d
  size,         ///< 512, 64KiB, 1MiB
  string_list,  ///< list of scalars (a single scalar is accepted as one item)
  string_map,   ///< map of names to scalars
  object,       ///< map checked against `children`
  object_list,  ///< list of maps, each checked against `children`
  any,          ///< not checked by the host
};

inline const char* to_string(OptionType t) noexcept {
  switch (t) {
    case OptionType::boolean:
      return "bool";
    case OptionType::integer:
      return "int";
    case OptionType::number:
      return "number";
    case OptionType::string:
      return "string";
    case OptionType::duration:
      return "duration";
    case OptionType::size:
      return "size";
    case OptionType::string_list:
      return "list of strings";
    case OptionType::string_map:
      return "map of strings";
    case OptionType::object:
      return "map";
    case OptionType::object_list:
      return "list of maps";
    case OptionType::any:
      return "any";
  }
  return "unknown";
}

/// One option a plugin accepts. Plain data, usually a static constexpr array.
struct OptionSpec {
  const char* name;
  OptionType type;
  const char* default_value;  ///< text as it would be written in YAML; nullptr = no default
  bool required;
  const char* description;
  const OptionSpec* children = nullptr;  ///< for object / object_list
  std::size_t child_count = 0;
  bool secret = false;  ///< never logged or printed (passwords, tokens)
};

enum class PluginKind : std::uint32_t { source = 1, transform = 2, sink = 3 };

inline const char* to_string(PluginKind k) noexcept {
  switch (k) {
    case PluginKind::source:
      return "source";
    case PluginKind::transform:
      return "transform";
    case PluginKind::sink:
      return "sink";
  }
  return "unknown";
}

/// Factories: build a component from its (already validated) configuration. On failure they
/// return nullptr and set `error` to a one-line message. Objects are destroyed with `delete`
/// through their virtual destructor, which runs in the plugin.
using SourceFactory = Source* (*)(const ConfigNode& config, Context& ctx, Status& error) noexcept;
using TransformFactory = Transform* (*)(const ConfigNode& config, Context& ctx,
                                        Status& error) noexcept;
using SinkFactory = Sink* (*)(const ConfigNode& config, Context& ctx, Status& error) noexcept;

/// What the entry point returns. The first three members never move: the host reads them to
/// decide whether it may read the rest.
struct PluginDescriptor {
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  const char* build_key;
  const char* name;
  PluginKind kind;
  const char* version;
  const char* description;
  const OptionSpec* options;
  std::size_t option_count;
  SourceFactory create_source;        ///< set when kind == source
  TransformFactory create_transform;  ///< set when kind == transform
  SinkFactory create_sink;            ///< set when kind == sink
};

/// The exported symbol's name and signature.
#define WEBMON_PLUGIN_ENTRY_NAME "webmon_plugin_entry"
using PluginEntry = const PluginDescriptor* (*)() noexcept;

namespace detail {
template <typename Base, typename T>
Base* create(const ConfigNode& config, Context& ctx, Status& error) noexcept {
  try {
    return new T(config, ctx);
  } catch (const std::exception& e) {
    error = Status::error(e.what());
  } catch (...) {
    error = Status::error("unknown exception while creating the component");
  }
  return nullptr;
}

template <std::size_t N>
constexpr std::size_t count(const OptionSpec (&/*options*/)[N]) noexcept {
  return N;
}
}  // namespace detail

}  // namespace webmon::sdk

#define WEBMON_PLUGIN_DEFINE_(CLASS, NAME, KIND, VERSION, DESCRIPTION, OPTIONS, SRC, TR, SK) \
  extern "C" WEBMON_EXPORT const ::webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept { \
    static const ::webmon::sdk::PluginDescriptor descriptor{                                   \
        WEBMON_SDK_ABI_MAJOR, WEBMON_SDK_ABI_MINOR, WEBMON_SDK_BUILD_KEY, NAME,                \
        ::webmon::sdk::PluginKind::KIND, VERSION, DESCRIPTION, OPTIONS,                        \
        ::webmon::sdk::detail::count(OPTIONS), SRC, TR, SK};                                   \
    return &descriptor;                                                                        \
  }

/// Exports a source plugin. CLASS derives from webmon::sdk::Source and has a constructor
/// CLASS(const webmon::sdk::ConfigNode&, webmon::sdk::Context&) that may throw on bad config.
/// OPTIONS is a static array of webmon::sdk::OptionSpec.
#define WEBMON_PLUGIN_SOURCE(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS)                     \
  WEBMON_PLUGIN_DEFINE_(CLASS, NAME, source, VERSION, DESCRIPTION, OPTIONS,                  \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Source, CLASS>), nullptr, \
                        nullptr)
/// Exports a transform plugin (see WEBMON_PLUGIN_SOURCE).
#define WEBMON_PLUGIN_TRANSFORM(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS)                    \
  WEBMON_PLUGIN_DEFINE_(CLASS, NAME, transform, VERSION, DESCRIPTION, OPTIONS, nullptr,        \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Transform, CLASS>), nullptr)
/// Exports a sink plugin (see WEBMON_PLUGIN_SOURCE).
#define WEBMON_PLUGIN_SINK(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS)                       \
  WEBMON_PLUGIN_DEFINE_(CLASS, NAME, sink, VERSION, DESCRIPTION, OPTIONS, nullptr, nullptr,  \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Sink, CLASS>))
