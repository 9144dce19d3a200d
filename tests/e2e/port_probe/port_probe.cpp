// port_probe: a source plugin written the way a third party would, for the e2e.plugin_kind
// test. It declares its own record kind, `port_probe`, with a field of every type (bool, int,
// double, string, timestamp, labels, and nullable fields that are sometimes null), and emits
// `count` records whose values are a deterministic function of their sequence number 1..count,
// so that the test can compute what must arrive in PostgreSQL. Then it idles until stopped.
//
// Record n (1-based), as the test expects it (tests/e2e/plugin_kind.sh):
//   target       the `target` option
//   seq          n
//   big          9007199254740993 + n   (beyond 2^53: an int must not pass through a double)
//   success      n % 3 != 0
//   total_ms     n * 0.25 + 0.125       (exact in binary)
//   note         probe #n "quoted" ünï\tcode
//   probed_at    2026-01-02T03:04:05.678901Z + n seconds
//   error        null when success, else "failure n"
//   free_bytes   null when n is even, else n * 1000
//   labels       {probe: e2e, parity: even|odd}
#include <string>
#include <webmon/sdk/sdk.hpp>

namespace sdk = webmon::sdk;

namespace {

struct Options {
  std::string target;
  int count = 0;
  std::chrono::milliseconds interval{};
};
constexpr sdk::OptionSpec kOptions[] = {{.name = "target",
                                         .type = sdk::OptionType::string,
                                         .default_value = nullptr,
                                         .required = true,
                                         .description = "target name written into every record",
                                         .assign = sdk::bind<&Options::target>()},
                                        {.name = "count",
                                         .type = sdk::OptionType::integer,
                                         .default_value = "10",
                                         .required = false,
                                         .description = "records to emit before idling",
                                         .min = "1",
                                         .max = "100000",
                                         .assign = sdk::bind<&Options::count>()},
                                        {.name = "interval",
                                         .type = sdk::OptionType::duration,
                                         .default_value = "20ms",
                                         .required = false,
                                         .description = "time between records",
                                         .min = "1ms",
                                         .max = "1h",
                                         .assign = sdk::bind<&Options::interval>()}};

constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"seq", sdk::FieldType::int64, false, "", "sequence number, from 1"},
    {"big", sdk::FieldType::int64, false, "", "an integer beyond 2^53"},
    {"success", sdk::FieldType::boolean, false, "", "the probe succeeded"},
    {"total_ms", sdk::FieldType::float64, false, "ms", "how long the probe took"},
    {"note", sdk::FieldType::string, false, "", "free text with quotes, a tab and non-ASCII"},
    {"probed_at", sdk::FieldType::timestamp, false, "UTC", "when the probe ran"},
    {"error", sdk::FieldType::string, true, "", "why it failed; null on success"},
    {"free_bytes", sdk::FieldType::int64, true, "bytes", "free space; null when unknown"},
    {"labels", sdk::FieldType::string_map, false, "", "probe labels"}};
constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("port_probe", 1, kFields, "target", "one deterministic test probe")};

// 2026-01-02T03:04:05.678901Z in microseconds since the epoch.
constexpr std::int64_t kProbedAtBase = 1767323045678901;

class PortProbe final : public sdk::Source {
 public:
  PortProbe(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)) {}

 protected:
  sdk::Status on_run() override {
    for (std::int64_t n = 1; n <= o_.count && !ctx().stop_requested(); ++n) {
      sdk::Record r = sdk::make_record("port_probe");
      const bool success = n % 3 != 0;
      r.add("target", o_.target);
      r.add("seq", n);
      r.add("big", std::int64_t{9007199254740993} + n);
      r.add("success", success);
      r.add("total_ms", static_cast<double>(n) * 0.25 + 0.125);
      r.add("note", "probe #" + std::to_string(n) + " \"quoted\" \u00fcn\u00ef\tcode");
      r.add("probed_at", sdk::Timestamp{kProbedAtBase + n * 1000000});
      r.add("error", success ? sdk::Value() : sdk::Value("failure " + std::to_string(n)));
      r.add("free_bytes", n % 2 == 0 ? sdk::Value() : sdk::Value(n * 1000));
      r.labels = {{"probe", "e2e"}, {"parity", n % 2 == 0 ? "even" : "odd"}};
      if (!sdk::taken(sdk::emit_one(ctx(), emitter(), std::move(r)))) {
        break;  // stopping
      }
      (void)ctx().wait_for_stop(o_.interval);
    }
    while (!ctx().wait_for_stop(std::chrono::seconds(1))) {
    }
    return sdk::Status::ok();
  }

 private:
  Options o_;
};

}  // namespace

WEBMON_PLUGIN_SOURCE(PortProbe, "port_probe", "1.0.0", "Emits deterministic test probes", kOptions,
                     sdk::emits(kKinds))
