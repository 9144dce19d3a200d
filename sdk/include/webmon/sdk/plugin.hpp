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
#include "webmon/sdk/kind.hpp"
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
  [[nodiscard]] std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

/// What the host offers every component. Thread-safe; outlives the component.
///
/// ABI: the host implements this interface; a minor SDK release may append virtual functions
/// at the end, never insert or reorder. A plugin calls a function added in minor m only when
/// host_abi_minor() >= m (the SDK's inline helpers do that check for you).
class Context {
 public:
  /// The ABI minor of the host the plugin runs in (>= the plugin's own).
  [[nodiscard]] virtual std::uint32_t host_abi_minor() const noexcept = 0;
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

  /// The declaration of a record kind the agent knows (declared by a loaded plugin or
  /// registered at run time), or nullptr. The pointer stays valid for the agent's lifetime;
  /// a later register_kind() of a newer version makes find_kind() return the newer one.
  [[nodiscard]] virtual const KindSpec* find_kind(std::string_view name) const noexcept = 0;
  /// Makes a kind known at run time (a Kafka consumer learns kinds from message headers). The
  /// host copies the declaration. Refused (with the reason) when it is malformed or
  /// incompatible with the declaration already known for that name (a field changing type).
  virtual Status register_kind(const KindSpec& kind) noexcept = 0;

  // ----- ABI 1.2 (appended) -----
  /// The agent's state directory (`agent.state_dir`; default $STATE_DIRECTORY as systemd sets
  /// it, else /var/lib/webmon): where a plugin keeps files that must survive a restart, e.g.
  /// `<state_dir>/<plugin>-<component id>.json`. It may not exist yet: a plugin creates what it
  /// needs (std::filesystem::create_directories) and says so in an error when it cannot.
  [[nodiscard]] virtual const std::string& state_dir() const noexcept = 0;

  void trace(std::string_view m) noexcept { log(LogLevel::trace, m); }
  void debug(std::string_view m) noexcept { log(LogLevel::debug, m); }
  void info(std::string_view m) noexcept { log(LogLevel::info, m); }
  void warn(std::string_view m) noexcept { log(LogLevel::warn, m); }
  void error(std::string_view m) noexcept { log(LogLevel::error, m); }

 protected:
  ~Context() = default;
};

/// What emit() did with a batch.
enum class EmitResult : std::uint8_t {
  accepted = 0,  ///< taken; one acknowledgement follows
  full = 1,      ///< taken, but a buffer with `when_full: block` is at its limit: call
                 ///< Emitter::wait_writable() (outside any timing-sensitive code) before the
                 ///< next emit; one acknowledgement follows
  dropped = 2,   ///< taken, and a full buffer's policy dropped records (these or older ones;
                 ///< the host counted and logged them); one acknowledgement follows
  refused = 3,   ///< NOT taken: a `block` buffer is at twice its limit; the batch is left
                 ///< unchanged, wait_writable() and emit it again
  stopped = 4,   ///< NOT taken: the agent is aborting; no acknowledgement follows
};

/// Given to sources: hands batches to the pipeline. emit() never blocks on downstream
/// components: a source's own timing (a check's phases) never includes time spent waiting
/// for a sink. Thread-safe.
///
/// ABI: implemented by the host; grows only by appending virtual functions (see Context).
class Emitter {
 public:
  /// Hands a batch to the pipeline (transforms run on the calling thread, then each sink's
  /// buffer takes the records). See EmitResult for what happened.
  virtual EmitResult emit(Batch&& batch) noexcept = 0;
  /// Blocks up to `timeout` until every buffer this source feeds is below its limit; true when
  /// it is (or when stop is requested: check stop_requested()).
  virtual bool wait_writable(std::chrono::milliseconds timeout) noexcept = 0;
  /// SDK 1.4: records of batches the pipeline has finished with, for the source to overwrite
  /// instead of building new ones. Their strings, field vectors and label maps keep their
  /// storage, so a source that assigns into them (`std::string::assign`, a field's value set in
  /// place) allocates nothing for a record like the one it overwrites, and the sink's thread
  /// frees nothing either. Each record holds a finished record's contents: overwrite all of
  /// kind, id, time, fields (resize them) and labels. Empty when the host has none to give:
  /// it keeps finished records only once a source has asked, and at most a few batches'
  /// worth. Thread-safe. Call only when `Context::host_abi_minor() >= 4` (an agent older than
  /// the plugin refuses to load it anyway).
  virtual std::vector<Record> take_spare_records() noexcept { return {}; }

 protected:
  ~Emitter() = default;
};

/// True when the batch was taken by the pipeline (an acknowledgement follows).
inline bool taken(EmitResult r) noexcept { return r <= EmitResult::dropped; }

inline const char* to_string(EmitResult r) noexcept {
  switch (r) {
    case EmitResult::accepted:
      return "accepted";
    case EmitResult::full:
      return "full";
    case EmitResult::dropped:
      return "dropped";
    case EmitResult::refused:
      return "refused";
    case EmitResult::stopped:
      return "stopped";
  }
  return "unknown";
}

/// Emits `batch` and deals with the answer the way most sources should: after `full` it waits
/// until the buffers have room again; after `refused` it waits and emits the same batch again,
/// until it is taken or the agent stops. Returns the last answer (taken(), or `stopped` /
/// `refused` when a stop was requested). Call it after any timing-sensitive work, never inside.
inline EmitResult emit_waiting(Context& ctx, Emitter& emitter, Batch&& batch) noexcept {
  EmitResult r = emitter.emit(std::move(batch));
  while (r == EmitResult::refused && !ctx.stop_requested()) {
    (void)emitter.wait_writable(std::chrono::seconds(1));
    r = emitter.emit(std::move(batch));  // refused left the batch unchanged
  }
  while (r == EmitResult::full && !emitter.wait_writable(std::chrono::seconds(1)) &&
         !ctx.stop_requested()) {
  }
  return r;
}

/// emit_waiting() for a batch of one record (token 0).
inline EmitResult emit_one(Context& ctx, Emitter& emitter, Record&& record) {
  Batch batch;
  batch.records.push_back(std::move(record));
  return emit_waiting(ctx, emitter, std::move(batch));
}

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
//
// ABI: the host calls only the public `final` wrappers, through the vtable. A minor release
// may append a new public wrapper (with its on_* hook) at the END of a class; the host calls
// it only on plugins whose descriptor declares that minor or newer.

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

  virtual Status start(Context& ctx, Emitter& emitter) noexcept final {
    ctx_ = &ctx;
    emitter_ = &emitter;
    return detail::guarded([&] { return on_start(); });
  }
  /// Returns ok when the source has finished (end of input or stop requested).
  virtual Status run() noexcept final {
    return detail::guarded([&] { return on_run(); });
  }
  /// An error (a throwing on_stop_requested) is logged and counted by the host.
  virtual Status request_stop() noexcept final {
    return detail::guarded([&] {
      on_stop_requested();
      return Status::ok();
    });
  }
  /// An error (a throwing on_acknowledge) is logged and counted by the host.
  virtual Status acknowledge(std::uint64_t token, AckStatus status) noexcept final {
    return detail::guarded([&] {
      on_acknowledge(token, status);
      return Status::ok();
    });
  }

 protected:
  [[nodiscard]] Context& ctx() const noexcept { return *ctx_; }
  [[nodiscard]] Emitter& emitter() const noexcept { return *emitter_; }
  virtual Status on_start() { return Status::ok(); }
  virtual Status on_run() = 0;
  /// Wake up run() (e.g. interrupt a poll); ctx().stop_requested() is already true.
  virtual void on_stop_requested() {}
  virtual void on_acknowledge(std::uint64_t /*token*/, AckStatus /*status*/) {}

  // ----- ABI 1.1 (appended: the host calls these only on plugins that declare minor >= 1) --
 public:
  /// The agent received SIGHUP: re-read whatever the source reads from outside its pipeline
  /// options (a targets file, credentials). Called on the host's signal thread, concurrently
  /// with run(); never before start() returns or after run() returns. An error is logged by
  /// the host; the source keeps running with what it had.
  virtual Status reload() noexcept final {
    return detail::guarded([&] { return on_reload(); });
  }

 protected:
  /// Override to support reload (ABI 1.1). The default does nothing and succeeds.
  virtual Status on_reload() { return Status::ok(); }

 private:
  Context* ctx_ = nullptr;
  Emitter* emitter_ = nullptr;
};

/// Runs `body` on a thread the plugin started, so that nothing escapes it: an exception
/// (which would otherwise end the agent with std::terminate) is logged as
/// "<what> threw: <message>" and counted in the component's `plugin_exceptions` counter.
/// Returns false when `body` threw. Usage:
///   worker_ = std::thread([this] { sdk::guard_thread(ctx(), "poller", [this] { poll(); }); });
template <typename F>
bool guard_thread(Context& ctx, std::string_view what, F&& body) noexcept {
  std::string message;
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown exception";
  }
  ctx.counter("plugin_exceptions").add();
  try {
    ctx.error(std::string(what) + " threw: " + message);
  } catch (...) {  // NOLINT(bugprone-empty-catch): building the message ran out of memory
  }
  return false;
}

/// Changes batches in place: modify, add or remove records. The host calls process() on the
/// thread that emitted the batch, one call at a time per transform (it holds a lock).
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
  /// Called once at shutdown, after the last process() (e.g. to save state).
  virtual Status stop() noexcept final {
    return detail::guarded([&] { return on_stop(); });
  }

 protected:
  [[nodiscard]] Context& ctx() const noexcept { return *ctx_; }
  virtual Status on_start() { return Status::ok(); }
  virtual Status on_process(std::vector<Record>& records) = 0;
  virtual Status on_stop() { return Status::ok(); }

 private:
  Context* ctx_ = nullptr;
};

/// Writes batches. The host owns buffering, batching (size and linger), retry with backoff of
/// `retryable` batches, and how many batches are in flight at once; a sink writes what it is
/// given and resolves each batch's Ack.
///
/// Lifecycle: constructed → start() → write() for each batch, from one host thread →
/// flush() once at shutdown → destroyed. write() may resolve the Ack before returning or
/// later from any thread (to pipeline several batches); the batch's records stay valid and
/// unchanged until its Ack is resolved, and must not be touched after. flush() resolves every
/// outstanding Ack within `timeout`.
class Sink {
 public:
  virtual ~Sink() = default;

  virtual Status start(Context& ctx) noexcept final {
    ctx_ = &ctx;
    return detail::guarded([&] { return on_start(); });
  }
  /// An error (returned or thrown) is logged by the host; the Ack, unless on_write stored it
  /// elsewhere, is resolved as retryable when on_write's frame ends.
  virtual Status write(const Batch& batch, Ack&& ack) noexcept final {
    return detail::guarded([&] { return on_write(batch, std::move(ack)); });
  }
  virtual Status flush(std::chrono::milliseconds timeout) noexcept final {
    return detail::guarded([&] { return on_flush(timeout); });
  }

 protected:
  [[nodiscard]] Context& ctx() const noexcept { return *ctx_; }
  virtual Status on_start() { return Status::ok(); }
  /// Takes the Ack by value: keep it until the batch's fate is known, or resolve it before
  /// returning. An Ack dropped unresolved counts as retryable (the host writes the batch
  /// again after a backoff).
  virtual Status on_write(const Batch& batch, Ack ack) = 0;
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

/// Fills one bound member of the plugin's options struct from its (validated) node. Made by
/// the bind helpers of webmon/sdk/options.hpp; nullptr when the option is not bound.
using OptionAssign = void (*)(void* target, const ConfigNode& value);

/// One option a plugin accepts. Plain data, usually a static constexpr array.
///
/// ABI: read by the host with the stride in PluginDescriptor::option_size; members are only
/// ever appended.
struct OptionSpec {
  const char* name;
  OptionType type;
  const char* default_value;  ///< text as it would be written in YAML; nullptr = no default
  bool required;
  const char* description;
  const OptionSpec* children = nullptr;  ///< for object / object_list
  std::size_t child_count = 0;
  bool secret = false;  ///< never logged or printed (passwords, tokens)
  /// Inclusive bounds as YAML text, for integer, number, duration and size options (also
  /// the number of items of lists); nullptr = unbounded.
  const char* min = nullptr;
  const char* max = nullptr;
  /// The allowed values of a string option (or of each item of a string list), separated by
  /// '|' ("block|drop_oldest|drop_newest"); nullptr = any.
  const char* choices = nullptr;
  /// Where the value goes in the plugin's options struct (see webmon/sdk/options.hpp).
  OptionAssign assign = nullptr;
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

/// What the entry point returns: plain constant data.
///
/// ABI: the host reads `struct_size`, `abi_major` and `abi_minor` first and reads nothing a
/// plugin built for a newer minor might have (it refuses such plugins); members are only ever
/// appended, and the host reads a member only when `struct_size` covers it. Arrays are read
/// with the strides given here, so their element structs may grow too.
struct PluginDescriptor {
  std::uint32_t struct_size;  ///< sizeof(PluginDescriptor) as the plugin was compiled
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  const char* build_key;
  const char* name;
  PluginKind kind;
  const char* version;
  const char* description;
  const OptionSpec* options;
  std::size_t option_count;
  std::uint32_t option_size;          ///< sizeof(OptionSpec) as the plugin was compiled
  SourceFactory create_source;        ///< set when kind == source
  TransformFactory create_transform;  ///< set when kind == transform
  SinkFactory create_sink;            ///< set when kind == sink
  /// Record kinds this source or transform emits (a transform's output also carries its
  /// inputs' kinds). A source whose kinds are only known at run time declares make_any_kind().
  const KindSpec* emits;
  std::size_t emit_count;
  std::uint32_t kind_size;  ///< sizeof(KindSpec) as the plugin was compiled
  /// Kind names this transform or sink accepts; none = every kind.
  const char* const* accepts;
  std::size_t accept_count;
  /// Fields every kind reaching this transform or sink must declare, with these types (e.g.
  /// `success: bool` for an alerting transform). Nullability is not checked.
  const FieldSpec* requires_fields;
  std::size_t requires_count;
  std::uint32_t field_size;  ///< sizeof(FieldSpec) as the plugin was compiled
};

/// A plugin's record-kind facts for the descriptor (all optional; see PluginDescriptor).
struct KindFacts {
  const KindSpec* emits = nullptr;
  std::size_t emit_count = 0;
  const char* const* accepts = nullptr;
  std::size_t accept_count = 0;
  const FieldSpec* requires_fields = nullptr;
  std::size_t requires_count = 0;
};

/// Builds KindFacts from static arrays: emits(kKinds), accepts(kNames), requires_fields(kFields).
template <std::size_t N>
constexpr KindFacts emits(const KindSpec (&kinds)[N]) noexcept {
  return KindFacts{kinds, N, nullptr, 0, nullptr, 0};
}
template <std::size_t N>
constexpr KindFacts accepts(const char* const (&names)[N]) noexcept {
  return KindFacts{nullptr, 0, names, N, nullptr, 0};
}
template <std::size_t N>
constexpr KindFacts requires_fields(const FieldSpec (&fields)[N]) noexcept {
  return KindFacts{nullptr, 0, nullptr, 0, fields, N};
}
/// Combines facts (e.g. a transform that requires fields and emits a kind).
constexpr KindFacts operator|(KindFacts a, const KindFacts& b) noexcept {
  if (b.emits != nullptr) {
    a.emits = b.emits;
    a.emit_count = b.emit_count;
  }
  if (b.accepts != nullptr) {
    a.accepts = b.accepts;
    a.accept_count = b.accept_count;
  }
  if (b.requires_fields != nullptr) {
    a.requires_fields = b.requires_fields;
    a.requires_count = b.requires_count;
  }
  return a;
}

/// A static stamp every plugin exports next to its entry point. The host reads it from the
/// file's dynamic symbol table BEFORE loading the file, so that a file which is not a
/// compatible webmon plugin never runs any code in the agent.
struct AbiStamp {
  char magic[8];  ///< "WEBMONP" and a NUL
  std::uint32_t struct_size;
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  char build_key[64];  ///< NUL-terminated
};

/// The exported symbols' names and the entry point's signature.
#define WEBMON_PLUGIN_ENTRY_NAME "webmon_plugin_entry"
#define WEBMON_PLUGIN_STAMP_NAME "webmon_plugin_abi_stamp"
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
template <std::size_t N>
constexpr const OptionSpec* options_of(const OptionSpec (&options)[N]) noexcept {
  return options;
}
struct NoOptions {};
constexpr std::size_t count(NoOptions /*none*/) noexcept { return 0; }
constexpr const OptionSpec* options_of(NoOptions /*none*/) noexcept { return nullptr; }
}  // namespace detail

/// For a plugin that takes no options: WEBMON_PLUGIN_SINK(..., webmon::sdk::kNoOptions, ...).
inline constexpr detail::NoOptions kNoOptions{};

}  // namespace webmon::sdk

#define WEBMON_PLUGIN_DEFINE_(NAME, KIND, VERSION, DESCRIPTION, OPTIONS, FACTS, SRC, TR, SK)       \
  extern "C" WEBMON_EXPORT const ::webmon::sdk::AbiStamp webmon_plugin_abi_stamp;                  \
  extern "C" WEBMON_EXPORT const ::webmon::sdk::AbiStamp webmon_plugin_abi_stamp{                  \
      "WEBMONP", sizeof(::webmon::sdk::AbiStamp), WEBMON_SDK_ABI_MAJOR, WEBMON_SDK_ABI_MINOR,      \
      WEBMON_SDK_BUILD_KEY};                                                                       \
  extern "C" WEBMON_EXPORT const ::webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept { \
    static constexpr ::webmon::sdk::KindFacts facts = (FACTS);                                     \
    static const ::webmon::sdk::PluginDescriptor descriptor{                                       \
        sizeof(::webmon::sdk::PluginDescriptor),                                                   \
        WEBMON_SDK_ABI_MAJOR,                                                                      \
        WEBMON_SDK_ABI_MINOR,                                                                      \
        WEBMON_SDK_BUILD_KEY,                                                                      \
        NAME,                                                                                      \
        ::webmon::sdk::PluginKind::KIND,                                                           \
        VERSION,                                                                                   \
        DESCRIPTION,                                                                               \
        ::webmon::sdk::detail::options_of(OPTIONS),                                                \
        ::webmon::sdk::detail::count(OPTIONS),                                                     \
        sizeof(::webmon::sdk::OptionSpec),                                                         \
        SRC,                                                                                       \
        TR,                                                                                        \
        SK,                                                                                        \
        facts.emits,                                                                               \
        facts.emit_count,                                                                          \
        sizeof(::webmon::sdk::KindSpec),                                                           \
        facts.accepts,                                                                             \
        facts.accept_count,                                                                        \
        facts.requires_fields,                                                                     \
        facts.requires_count,                                                                      \
        sizeof(::webmon::sdk::FieldSpec)};                                                         \
    return &descriptor;                                                                            \
  }

/// Exports a source plugin. CLASS derives from webmon::sdk::Source and has a constructor
/// CLASS(const webmon::sdk::ConfigNode&, webmon::sdk::Context&) that may throw on bad config.
/// OPTIONS is a static array of webmon::sdk::OptionSpec (or webmon::sdk::kNoOptions).
/// KINDS is webmon::sdk::emits(kKinds): the record kinds it emits.
#define WEBMON_PLUGIN_SOURCE(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS, KINDS)                  \
  WEBMON_PLUGIN_DEFINE_(NAME, source, VERSION, DESCRIPTION, OPTIONS, KINDS,                      \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Source, CLASS>), nullptr, \
                        nullptr)
/// Exports a transform plugin (see WEBMON_PLUGIN_SOURCE). FACTS combines emits(),
/// accepts() and requires_fields() with '|', or is webmon::sdk::KindFacts{} (any kind in,
/// nothing new out).
#define WEBMON_PLUGIN_TRANSFORM(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS, FACTS)         \
  WEBMON_PLUGIN_DEFINE_(NAME, transform, VERSION, DESCRIPTION, OPTIONS, FACTS, nullptr,    \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Transform, CLASS>), \
                        nullptr)
/// Exports a sink plugin (see WEBMON_PLUGIN_SOURCE). FACTS is accepts() and/or
/// requires_fields(), or webmon::sdk::KindFacts{} (takes every kind).
#define WEBMON_PLUGIN_SINK(CLASS, NAME, VERSION, DESCRIPTION, OPTIONS, FACTS)               \
  WEBMON_PLUGIN_DEFINE_(NAME, sink, VERSION, DESCRIPTION, OPTIONS, FACTS, nullptr, nullptr, \
                        (&::webmon::sdk::detail::create<::webmon::sdk::Sink, CLASS>))
