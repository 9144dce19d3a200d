// field_filter: an example transform plugin. Records whose field `field` has the value
// `equals` are dropped (action: drop) or labelled `label=true` (action: tag); every other
// record passes unchanged. Counter `matched`. Runs on the emitting source's thread, one call
// at a time: no locking needed for its own state.
#include <string>
#include <variant>
#include <vector>
#include <webmon/sdk/sdk.hpp>

namespace sdk = webmon::sdk;

namespace {

struct Options {
  std::string field;
  std::string equals;
  std::string action;
  std::string label;
};

constexpr sdk::OptionSpec kOptions[] = {
    {.name = "field",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "the field to compare",
     .assign = sdk::bind<&Options::field>()},
    {.name = "equals",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "the value that matches, as YAML text (true, 500, ok)",
     .assign = sdk::bind<&Options::equals>()},
    {.name = "action",
     .type = sdk::OptionType::string,
     .default_value = "tag",
     .required = false,
     .description = "what happens to a matching record",
     .choices = "tag|drop",
     .assign = sdk::bind<&Options::action>()},
    {.name = "label",
     .type = sdk::OptionType::string,
     .default_value = "matched",
     .required = false,
     .description = "the label set to \"true\" on matching records (tag)",
     .assign = sdk::bind<&Options::label>()},
};

/// The value as the text it would have in YAML, for comparison with `equals`.
std::string text_of(const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::boolean:
      return std::get<bool>(v) ? "true" : "false";
    case sdk::ValueType::integer:
      return std::to_string(std::get<std::int64_t>(v));
    case sdk::ValueType::string:
      return std::get<std::string>(v);
    default:
      return {};  // null, double and timestamp fields never match
  }
}

class FieldFilter final : public sdk::Transform {
 public:
  FieldFilter(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)), drop_(o_.action == "drop") {}

 protected:
  sdk::Status on_process(std::vector<sdk::Record>& records) override {
    std::uint64_t matched = 0;
    std::erase_if(records, [&](sdk::Record& r) {
      const sdk::Value* v = r.find(o_.field);
      if (v == nullptr || text_of(*v) != o_.equals) {
        return false;
      }
      ++matched;
      if (!drop_) {
        r.labels[o_.label] = "true";
      }
      return drop_;  // a dropped record counts as delivered for its source
    });
    ctx().counter("matched").add(matched);
    return sdk::Status::ok();
  }

 private:
  Options o_;
  bool drop_;
};

}  // namespace

WEBMON_PLUGIN_TRANSFORM(FieldFilter, "field_filter", "1.0.0",
                        "Drops or labels records whose field has a given value (example)", kOptions,
                        webmon::sdk::KindFacts{})
