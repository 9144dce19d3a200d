// A transform built against the FROZEN SDK 1.0 headers: drops records whose seq is a multiple
// of 3 and labels the others abi=1.0 (30 records in → 20 out).
#include <algorithm>
#include <webmon/sdk/sdk.hpp>

namespace {

namespace sdk = webmon::sdk;

class Abi10Transform final : public sdk::Transform {
 public:
  Abi10Transform(const sdk::ConfigNode& /*config*/, sdk::Context& /*ctx*/) {}

 protected:
  sdk::Status on_process(std::vector<sdk::Record>& records) override {
    const auto before = records.size();
    std::erase_if(records, [](const sdk::Record& r) {
      const auto* seq = r.get<std::int64_t>("seq");
      return seq != nullptr && *seq % 3 == 0;
    });
    ctx().counter("dropped_by_rule").add(before - records.size());
    for (auto& r : records) {
      r.labels["abi"] = "1.0";
    }
    return sdk::Status::ok();
  }
  sdk::Status on_stop() override {
    ctx().info("abi10_transform stopped");
    return sdk::Status::ok();
  }
};

constexpr const char* kAccepts[] = {"abi_probe"};

}  // namespace

WEBMON_PLUGIN_TRANSFORM(Abi10Transform, "abi10_transform", "1.0.0",
                        "ABI test: a transform built for SDK 1.0", webmon::sdk::kNoOptions,
                        webmon::sdk::accepts(kAccepts))
