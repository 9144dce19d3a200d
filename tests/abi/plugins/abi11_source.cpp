// A source built against the CURRENT SDK (ABI 1.1): emits nothing, waits for the stop, and
// supports reload() (SIGHUP): each call counts `reloads` and logs a line.
#include <chrono>
#include <webmon/sdk/sdk.hpp>

namespace {

namespace sdk = webmon::sdk;

static_assert(WEBMON_SDK_ABI_MINOR >= 1, "abi11_source needs the SDK with Source::reload()");

constexpr sdk::FieldSpec kFields[] = {{"n", sdk::FieldType::int64, false, "", "a number"}};
constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("abi11_probe", 1, kFields, nullptr, "records of the ABI test")};

class Abi11Source final : public sdk::Source {
 public:
  Abi11Source(const sdk::ConfigNode& /*config*/, sdk::Context& /*ctx*/) {}

 protected:
  sdk::Status on_run() override {
    while (!ctx().wait_for_stop(std::chrono::seconds(1))) {
    }
    return sdk::Status::ok();
  }
  sdk::Status on_reload() override {
    ctx().counter("reloads").add();
    ctx().info("abi11_source reloaded");
    return sdk::Status::ok();
  }
};

}  // namespace

WEBMON_PLUGIN_SOURCE(Abi11Source, "abi11_source", "1.1.0", "ABI test: a source built for SDK 1.1",
                     webmon::sdk::kNoOptions, webmon::sdk::emits(kKinds))
