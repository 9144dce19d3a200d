// hello_sink: an example out-of-tree webmon plugin. Counts records whose target starts with a
// prefix, and writes one line per batch ("hello_sink: N of M records match") to a file, so a
// test can see that the agent really ran it.
#include <fstream>
#include <string>
#include <webmon/sdk/sdk.hpp>

namespace {

constexpr webmon::sdk::OptionSpec kOptions[] = {
    {"prefix", webmon::sdk::OptionType::string, nullptr, true, "target prefix to count"},
    {"report", webmon::sdk::OptionType::string, "-", false,
     "file receiving one line per batch; - for none"},
};

class HelloSink final : public webmon::sdk::Sink {
 public:
  HelloSink(const webmon::sdk::ConfigNode& config, webmon::sdk::Context& /*ctx*/)
      : prefix_(config.find("prefix")->as_string()), report_(config.get_string("report", "-")) {
    if (prefix_.empty()) {
      config.find("prefix")->fail("option 'prefix' must not be empty");
    }
  }

 protected:
  webmon::sdk::Status on_start() override {
    if (report_ != "-") {
      out_.open(report_, std::ios::app);
      if (!out_) {
        return webmon::sdk::Status::error("cannot open " + report_);
      }
    }
    return webmon::sdk::Status::ok();
  }

  webmon::sdk::Status on_write(const webmon::sdk::Batch& batch, webmon::sdk::Ack ack) override {
    std::size_t matched = 0;
    for (const auto& r : batch.records) {
      const std::string* target = r.get<std::string>("target");
      if (target != nullptr && target->rfind(prefix_, 0) == 0) {
        ++matched;
      }
    }
    ctx().counter("matched").add(matched);
    if (out_.is_open()) {
      out_ << "hello_sink: " << matched << " of " << batch.records.size() << " records match\n";
      out_.flush();
    }
    ack.resolve(webmon::sdk::AckStatus::delivered);
    return webmon::sdk::Status::ok();
  }

 private:
  std::string prefix_;
  std::string report_;
  std::ofstream out_;
};

}  // namespace

WEBMON_PLUGIN_SINK(HelloSink, "hello_sink", "1.0.0", "Counts records by target prefix (example)",
                   kOptions, webmon::sdk::KindFacts{})
