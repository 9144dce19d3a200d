// blackhole sink: counts and discards records (benchmarks, tests). An optional delay per
// batch simulates a slow sink.
#include <chrono>
#include <string>

#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::blackhole {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

struct Options {
  std::chrono::milliseconds delay{};
  std::string status;
};

// Declared once: the host checks the choices and fills the defaults; load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "delay",
     .type = OptionType::duration,
     .default_value = "0",
     .required = false,
     .description = "time spent on each batch before it is acknowledged (simulates a slow sink)",
     .assign = sdk::bind<&Options::delay>()},
    {.name = "status",
     .type = OptionType::string,
     .default_value = "delivered",
     .required = false,
     .description = "how every batch is acknowledged (for tests)",
     .choices = "delivered|retryable|rejected",
     .assign = sdk::bind<&Options::status>()},
};

sdk::AckStatus ack_status(const std::string& name) {
  return name == "rejected"    ? sdk::AckStatus::rejected
         : name == "retryable" ? sdk::AckStatus::retryable
                               : sdk::AckStatus::delivered;
}

class Blackhole final : public sdk::Sink {
 public:
  Blackhole(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)), status_(ack_status(o_.status)) {}

 protected:
  sdk::Status on_write(const sdk::Batch& /*batch*/, sdk::Ack ack) override {
    if (o_.delay.count() > 0) {
      ctx().wait_for_stop(o_.delay);
    }
    ack.resolve(status_);
    return sdk::Status::ok();
  }

 private:
  Options o_;
  sdk::AckStatus status_;
};

}  // namespace
}  // namespace webmon::plugins::blackhole

WEBMON_PLUGIN_SINK(webmon::plugins::blackhole::Blackhole, "blackhole", "0.1.0",
                   "Counts and discards records (benchmarks, tests)",
                   webmon::plugins::blackhole::kOptions, webmon::sdk::KindFacts{})
