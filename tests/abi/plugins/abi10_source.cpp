// A source built against the FROZEN SDK 1.0 headers (tests/abi/sdk-1.0): emits `count`
// records of kind abi_probe in batches of 10, then (with hold: true) waits for the stop.
// Its class declares one virtual function of its own, canary(), which the compiler places in
// the vtable slot where SDK 1.1 put Source::reload(): if the agent called reload() on this
// 1.0 plugin, canary() would run and count `canary_called`.
#include <chrono>
#include <cstdint>
#include <webmon/sdk/sdk.hpp>

namespace {

namespace sdk = webmon::sdk;

constexpr sdk::OptionSpec kOptions[] = {
    {"count", sdk::OptionType::integer, "30", false, "records to emit"},
    {"hold", sdk::OptionType::boolean, "false", false, "after emitting, wait for the stop"},
};
constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "a name"},
    {"seq", sdk::FieldType::int64, false, "", "0, 1, 2, ..."},
};
constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("abi_probe", 1, kFields, "target", "records of the ABI test")};

class Abi10Source : public sdk::Source {
 public:
  Abi10Source(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : count_(config.get_int("count", 30)), hold_(config.get_bool("hold", false)) {}

  /// Never called by a correct host (see the file comment).
  virtual sdk::Status canary() noexcept {
    ctx().counter("canary_called").add();
    ctx().error("canary() called: the host called past the end of a 1.0 Source");
    return sdk::Status::ok();
  }

 protected:
  sdk::Status on_run() override {
    std::int64_t seq = 0;
    while (seq < count_ && !ctx().stop_requested()) {
      sdk::Batch batch;
      batch.token = static_cast<std::uint64_t>(seq);
      for (int i = 0; i < 10 && seq < count_; ++i, ++seq) {
        sdk::Record r;
        r.kind = "abi_probe";
        r.time = sdk::now();
        r.id = sdk::make_uuid_v7(r.time);
        r.add("target", std::string("t") + std::to_string(seq % 5));
        r.add("seq", seq);
        batch.records.push_back(std::move(r));
      }
      sdk::EmitResult res = emitter().emit(std::move(batch));
      while (res == sdk::EmitResult::refused && !ctx().stop_requested()) {
        emitter().wait_writable(std::chrono::seconds(1));
        res = emitter().emit(std::move(batch));
      }
      if (res == sdk::EmitResult::full) {
        emitter().wait_writable(std::chrono::seconds(1));
      }
    }
    while (hold_ && !ctx().wait_for_stop(std::chrono::seconds(1))) {
    }
    return sdk::Status::ok();
  }

 private:
  std::int64_t count_;
  bool hold_;
};

}  // namespace

WEBMON_PLUGIN_SOURCE(Abi10Source, "abi10_source", "1.0.0", "ABI test: a source built for SDK 1.0",
                     kOptions, webmon::sdk::emits(kKinds))
