// A sink built against the FROZEN SDK 1.0 headers: counts the records it is given (counter
// `seen`, and those labelled abi=1.0 in `labelled`) and acknowledges them as delivered.
#include <webmon/sdk/sdk.hpp>

namespace {

namespace sdk = webmon::sdk;

class Abi10Sink final : public sdk::Sink {
 public:
  Abi10Sink(const sdk::ConfigNode& /*config*/, sdk::Context& /*ctx*/) {}

 protected:
  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override {
    std::uint64_t labelled = 0;
    for (const auto& r : batch.records) {
      auto it = r.labels.find("abi");
      labelled += (it != r.labels.end() && it->second == "1.0") ? 1 : 0;
    }
    ctx().counter("seen").add(batch.records.size());
    ctx().counter("labelled").add(labelled);
    ack.resolve(sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }
};

}  // namespace

WEBMON_PLUGIN_SINK(Abi10Sink, "abi10_sink", "1.0.0", "ABI test: a sink built for SDK 1.0",
                   webmon::sdk::kNoOptions, webmon::sdk::KindFacts{})
