// add_fields transform: adds static labels to every record.
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::add_fields {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

constexpr OptionSpec kOptions[] = {
    {"fields", OptionType::string_map, nullptr, true,
     "labels to add, e.g. { region: eu-west, team: web }"},
    {"overwrite", OptionType::boolean, "true", false,
     "replace a label the record already has (false keeps the record's value)"},
};

class AddFields final : public sdk::Transform {
 public:
  AddFields(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : fields_(config.find("fields")->as_string_map()),
        overwrite_(config.get_bool("overwrite", true)) {
    for (const auto& [k, v] : fields_) {
      if (k.empty()) {
        config.find("fields")->fail("option 'fields': label names must not be empty");
      }
    }
  }

 protected:
  sdk::Status on_process(std::vector<sdk::Record>& records) override {
    for (auto& r : records) {
      for (const auto& [k, v] : fields_) {
        if (overwrite_) {
          r.labels.insert_or_assign(k, v);
        } else {
          r.labels.emplace(k, v);
        }
      }
    }
    return sdk::Status::ok();
  }

 private:
  sdk::Labels fields_;
  bool overwrite_;
};

}  // namespace
}  // namespace webmon::plugins::add_fields

WEBMON_PLUGIN_TRANSFORM(webmon::plugins::add_fields::AddFields, "add_fields", "0.1.0",
                        "Adds static labels to every record",
                        webmon::plugins::add_fields::kOptions, webmon::sdk::KindFacts{})
