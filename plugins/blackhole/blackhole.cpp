// blackhole sink: counts and discards records (benchmarks, tests). An optional delay per
// batch simulates a slow sink.
#include <chrono>

#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::blackhole {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

constexpr OptionSpec kOptions[] = {
    {"delay", OptionType::duration, "0", false,
     "time spent on each batch before it is acknowledged (simulates a slow sink)"},
    {"status", OptionType::string, "delivered", false,
     "how every batch is acknowledged: delivered, retryable or rejected (for tests)"},
};

class Blackhole final : public sdk::Sink {
 public:
  Blackhole(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : delay_(config.get_duration("delay", std::chrono::milliseconds(0))) {
    const std::string status = config.get_string("status", "delivered");
    if (status == "delivered") {
      status_ = sdk::AckStatus::delivered;
    } else if (status == "retryable") {
      status_ = sdk::AckStatus::retryable;
    } else if (status == "rejected") {
      status_ = sdk::AckStatus::rejected;
    } else {
      config.find("status")->fail("option 'status': expected delivered, retryable or rejected");
    }
  }

 protected:
  sdk::Status on_write(const sdk::Batch& /*batch*/, sdk::Ack ack) override {
    if (delay_.count() > 0) {
      ctx().wait_for_stop(delay_);
    }
    ack.resolve(status_);
    return sdk::Status::ok();
  }

 private:
  std::chrono::milliseconds delay_;
  sdk::AckStatus status_ = sdk::AckStatus::delivered;
};

}  // namespace
}  // namespace webmon::plugins::blackhole

WEBMON_PLUGIN_SINK(webmon::plugins::blackhole::Blackhole, "blackhole", "0.1.0",
                   "Counts and discards records (benchmarks, tests)",
                   webmon::plugins::blackhole::kOptions, webmon::sdk::KindFacts{})
