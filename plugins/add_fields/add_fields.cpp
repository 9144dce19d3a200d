// add_fields transform: adds static labels to every record.
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::add_fields {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

struct Options {
  sdk::Labels fields;
  bool overwrite = true;
};

// Declared once: the host checks the types and fills the defaults; load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "fields",
     .type = OptionType::string_map,
     .default_value = nullptr,
     .required = true,
     .description = "labels to add, e.g. { region: eu-west, team: web }",
     .assign = sdk::bind<&Options::fields>()},
    {.name = "overwrite",
     .type = OptionType::boolean,
     .default_value = "true",
     .required = false,
     .description = "replace a label the record already has (false keeps the record's value)",
     .assign = sdk::bind<&Options::overwrite>()},
};

class AddFields final : public sdk::Transform {
 public:
  AddFields(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)) {
    for (const auto& [k, v] : o_.fields) {
      if (k.empty()) {
        config.find("fields")->fail("option 'fields': label names must not be empty");
      }
    }
  }

 protected:
  sdk::Status on_process(std::vector<sdk::Record>& records) override {
    for (auto& r : records) {
      for (const auto& [k, v] : o_.fields) {
        if (o_.overwrite) {
          r.labels.insert_or_assign(k, v);
        } else {
          r.labels.emplace(k, v);
        }
      }
    }
    return sdk::Status::ok();
  }

 private:
  Options o_;
};

}  // namespace
}  // namespace webmon::plugins::add_fields

WEBMON_PLUGIN_TRANSFORM(webmon::plugins::add_fields::AddFields, "add_fields", "0.1.0",
                        "Adds static labels to every record", webmon::plugins::add_fields::kOptions,
                        webmon::sdk::KindFacts{})
