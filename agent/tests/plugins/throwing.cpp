// A sink whose every call throws: the SDK wrappers must turn that into errors inside the
// plugin, never an exception crossing into the host. Also a transform that throws.
#include <stdexcept>

#include "webmon/sdk/sdk.hpp"

namespace {

constexpr webmon::sdk::OptionSpec kOptions[] = {
    {"throw_in", webmon::sdk::OptionType::string, "write", false,
     "where to throw: constructor, start, write"},
};

class Throwing final : public webmon::sdk::Sink {
 public:
  Throwing(const webmon::sdk::ConfigNode& config, webmon::sdk::Context& /*ctx*/)
      : where_(config.get_string("throw_in", "write")) {
    if (where_ == "constructor") {
      throw std::runtime_error("thrown from the constructor");
    }
  }

 protected:
  webmon::sdk::Status on_start() override {
    if (where_ == "start") {
      throw std::runtime_error("thrown from on_start");
    }
    return webmon::sdk::Status::ok();
  }
  webmon::sdk::Status on_write(const webmon::sdk::Batch& /*batch*/,
                               webmon::sdk::Ack /*ack*/) override {
    throw std::logic_error("thrown from on_write");
  }

 private:
  std::string where_;
};

}  // namespace

WEBMON_PLUGIN_SINK(Throwing, "throwing", "0.0.1", "test sink that throws", kOptions,
                   webmon::sdk::KindFacts{})
