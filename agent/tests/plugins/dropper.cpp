// A test transform that drops records: keeps every Nth record of each batch (0 = drops all).
#include "webmon/sdk/sdk.hpp"

namespace {

constexpr webmon::sdk::OptionSpec kOptions[] = {
    {"keep_every", webmon::sdk::OptionType::integer, "0", false,
     "keep every Nth record of a batch; 0 drops all"},
};

class Dropper final : public webmon::sdk::Transform {
 public:
  Dropper(const webmon::sdk::ConfigNode& config, webmon::sdk::Context& /*ctx*/)
      : keep_every_(config.get_int("keep_every", 0)) {}

 protected:
  webmon::sdk::Status on_process(std::vector<webmon::sdk::Record>& records) override {
    std::vector<webmon::sdk::Record> kept;
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (keep_every_ > 0 && i % static_cast<std::size_t>(keep_every_) == 0) {
        kept.push_back(std::move(records[i]));
      }
    }
    records = std::move(kept);
    return webmon::sdk::Status::ok();
  }

 private:
  std::int64_t keep_every_;
};

}  // namespace

WEBMON_PLUGIN_TRANSFORM(Dropper, "dropper", "0.0.1", "test transform that drops records", kOptions,
                        webmon::sdk::KindFacts{})
