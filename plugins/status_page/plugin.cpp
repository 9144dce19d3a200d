// status_page sink: the thin SDK adapter. Reads the options, turns records into Checks for
// StatusService (service.hpp), which holds the state, serves the page and writes snapshots.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "service.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::status_page {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

/// The options as written; service_options() turns them into the service's options.
struct Options {
  std::string listen;
  std::string title;
  std::optional<std::string> group_by;
  std::vector<std::string> groups;
  std::string default_group;
  std::string state_file;
  std::string history_conninfo;
  std::string history_schema;
  std::chrono::milliseconds snapshot_interval{};
  std::int64_t sparkline_samples = 0;
  std::int64_t bar_hours = 0;
  std::int64_t cert_warn_days = 0;
  std::chrono::milliseconds stale_after{};
  std::int64_t flap_changes = 0;
  std::chrono::milliseconds refresh{};
  std::int64_t max_targets = 0;
};

static_assert(kBucketCount == 168, "bar_hours' max below is the model's kBucketCount");

// Declared once: the host checks types and bounds and fills the defaults; load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "listen",
     .type = OptionType::string,
     .default_value = "127.0.0.1:8080",
     .required = false,
     .description = "HOST:PORT the page is served on ([::1]:8080 for IPv6; port 0 = any free port)",
     .assign = sdk::bind<&Options::listen>()},
    {.name = "title",
     .type = OptionType::string,
     .default_value = "Status",
     .required = false,
     .description = "page title and heading",
     .assign = sdk::bind<&Options::title>()},
    {.name = "group_by",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "label whose value groups the targets into sections; none = one table",
     .assign = sdk::bind<&Options::group_by>()},
    {.name = "groups",
     .type = OptionType::string_list,
     .default_value = nullptr,
     .required = false,
     .description = "order of the group sections; groups not listed follow alphabetically",
     .assign = sdk::bind<&Options::groups>()},
    {.name = "default_group",
     .type = OptionType::string,
     .default_value = "Other",
     .required = false,
     .description = "section of targets without the group_by label (shown last)",
     .assign = sdk::bind<&Options::default_group>()},
    {.name = "state_file",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "snapshot file keeping the history across restarts (written atomically); "
                    "none = memory only",
     .assign = sdk::bind<&Options::state_file>()},
    {.name = "history_conninfo",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "PostgreSQL (postgres_sink's database) to rebuild the history from at start: "
                    "libpq conninfo or postgresql:// URI; none = snapshot only",
     .secret = true,
     .assign = sdk::bind<&Options::history_conninfo>()},
    {.name = "history_schema",
     .type = OptionType::string,
     .default_value = "webmon",
     .required = false,
     .description = "postgres_sink's schema in that database",
     .assign = sdk::bind<&Options::history_schema>()},
    {.name = "snapshot_interval",
     .type = OptionType::duration,
     .default_value = "60s",
     .required = false,
     .description = "how often the snapshot is written when something changed (and always at stop)",
     .min = "1s",
     .assign = sdk::bind<&Options::snapshot_interval>()},
    {.name = "sparkline_samples",
     .type = OptionType::integer,
     .default_value = "60",
     .required = false,
     .description = "response times kept per target for the sparkline (1-1000)",
     .min = "1",
     .max = "1000",
     .assign = sdk::bind<&Options::sparkline_samples>()},
    {.name = "bar_hours",
     .type = OptionType::integer,
     .default_value = "24",
     .required = false,
     .description = "hours shown in the uptime bar, one mark per hour (1-168)",
     .min = "1",
     .max = "168",
     .assign = sdk::bind<&Options::bar_hours>()},
    {.name = "cert_warn_days",
     .type = OptionType::integer,
     .default_value = "14",
     .required = false,
     .description = "certificates expiring in fewer days are highlighted (0-3650)",
     .min = "0",
     .max = "3650",
     .assign = sdk::bind<&Options::cert_warn_days>()},
    {.name = "stale_after",
     .type = OptionType::duration,
     .default_value = "10m",
     .required = false,
     .description = "a target without a check for this long is shown as stale",
     .min = "1ms",
     .assign = sdk::bind<&Options::stale_after>()},
    {.name = "flap_changes",
     .type = OptionType::integer,
     .default_value = "4",
     .required = false,
     .description =
         "up/down changes among the sparkline samples that make a target flapping (0 = never)",
     .min = "0",
     .max = "1000",
     .assign = sdk::bind<&Options::flap_changes>()},
    {.name = "refresh",
     .type = OptionType::duration,
     .default_value = "60s",
     .required = false,
     .description =
         "the page reloads itself this often (an HTML meta refresh, no script); 0 = never",
     .assign = sdk::bind<&Options::refresh>()},
    {.name = "max_targets",
     .type = OptionType::integer,
     .default_value = "100000",
     .required = false,
     .description =
         "targets kept at most (memory bound); checks of further targets are counted and ignored",
     .min = "1",
     .max = "10000000",
     .assign = sdk::bind<&Options::max_targets>()},
};

/// The service's options from the checked ones; a malformed `listen` is a ConfigError.
ServiceOptions service_options(const Options& in, const sdk::ConfigNode& config) {
  ServiceOptions o;
  std::string error;
  const auto address = parse_listen(in.listen, error);
  if (!address) {
    const sdk::ConfigNode* node = config.find("listen");
    const std::string message = "option 'listen': " + error + ", got '" + in.listen + "'";
    if (node != nullptr) {
      node->fail(message);
    }
    config.fail(message);
  }
  o.listen = *address;
  o.page.title = in.title;
  o.page.grouped = in.group_by.has_value();
  o.page.groups = in.groups;
  o.page.default_group = in.default_group;
  o.state_file = in.state_file;
  if (!in.history_conninfo.empty()) {
    o.history = HistorySource{in.history_conninfo, in.history_schema, in.group_by.value_or("")};
  }
  o.snapshot_interval = in.snapshot_interval;
  o.model.sample_capacity = static_cast<std::size_t>(in.sparkline_samples);
  o.model.bar_hours = static_cast<std::size_t>(in.bar_hours);
  o.page.cert_warn_days = static_cast<int>(in.cert_warn_days);
  o.model.stale_after_us = in.stale_after.count() * 1000;
  o.model.flap_transitions = in.flap_changes == 0 ? INT32_MAX : static_cast<int>(in.flap_changes);
  o.page.refresh_seconds =
      static_cast<int>(std::chrono::ceil<std::chrono::seconds>(in.refresh).count());
  o.model.max_targets = static_cast<std::size_t>(in.max_targets);
  return o;
}

class StatusPageSink final : public sdk::Sink {
 public:
  StatusPageSink(const sdk::ConfigNode& config, sdk::Context& ctx)
      : options_(sdk::load_options<Options>(config, kOptions)),
        group_by_(options_.group_by.value_or("")),
        service_(service_options(options_, config),
                 [&ctx](bool is_error, const std::string& message) {
                   ctx.log(is_error ? sdk::LogLevel::error : sdk::LogLevel::info, message);
                 }) {}

 protected:
  sdk::Status on_start() override {
    try {
      service_.start();
    } catch (const StartError& e) {
      return sdk::Status::error(e.what());
    }
    ctx().info("status page on " + service_.url());
    return sdk::Status::ok();
  }

  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override {
    checks_.clear();
    std::uint64_t ignored = 0;
    for (const auto& r : batch.records) {
      const auto* target = r.get<std::string>("target");
      const auto* success = r.get<bool>("success");
      const sdk::Value* rt = r.find("response_time_ms");
      const double* rt_double = rt != nullptr ? std::get_if<double>(rt) : nullptr;
      const std::int64_t* rt_int = rt != nullptr ? std::get_if<std::int64_t>(rt) : nullptr;
      if (target == nullptr || success == nullptr || (rt_double == nullptr && rt_int == nullptr)) {
        ++ignored;
        continue;
      }
      Check c;
      c.target = *target;
      c.time_us = r.time.micros;
      c.success = *success;
      c.response_time_ms = rt_double != nullptr ? *rt_double : static_cast<double>(*rt_int);
      if (const auto* url = r.get<std::string>("url")) {
        c.url = *url;
      }
      if (const auto* error = r.get<std::string>("error")) {
        c.error = *error;
      }
      if (const auto* message = r.get<std::string>("error_message")) {
        c.error_message = *message;
      }
      if (const auto* status = r.get<std::int64_t>("status_code")) {
        c.status_code = static_cast<int>(*status);
      }
      if (const auto* not_after = r.get<sdk::Timestamp>("tls_cert_not_after")) {
        c.cert_not_after_us = not_after->micros;
      }
      if (!group_by_.empty()) {
        if (auto it = r.labels.find(group_by_); it != r.labels.end()) {
          c.group = it->second;
        }
      }
      checks_.push_back(c);
    }
    const ApplyCounts counts = service_.apply(checks_);
    checks_.clear();
    if (ignored > 0) {
      ctx().counter("ignored").add(ignored);
    }
    if (counts.new_targets > 0) {
      ctx().counter("targets").add(counts.new_targets);
    }
    if (counts.too_many_targets > 0) {
      ctx().counter("over_max_targets").add(counts.too_many_targets);
    }
    ack.resolve(sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }

  sdk::Status on_flush(std::chrono::milliseconds /*timeout*/) override {
    service_.stop();  // stops serving and writes the final snapshot
    return sdk::Status::ok();
  }

 private:
  Options options_;
  std::string group_by_;
  StatusService service_;
  std::vector<Check> checks_;
};

}  // namespace
}  // namespace webmon::plugins::status_page

WEBMON_PLUGIN_SINK(webmon::plugins::status_page::StatusPageSink, "status_page", "0.1.0",
                   "Serves a status page (HTML with inline SVG, and JSON) of the checks received",
                   webmon::plugins::status_page::kOptions, webmon::sdk::KindFacts{})
