// status_page sink: the thin SDK adapter. Reads the options, turns records into Checks for
// StatusService (service.hpp), which holds the state, serves the page and writes snapshots.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "service.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::status_page {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

constexpr OptionSpec kOptions[] = {
    {"listen", OptionType::string, "127.0.0.1:8080", false,
     "HOST:PORT the page is served on ([::1]:8080 for IPv6; port 0 = any free port)"},
    {"title", OptionType::string, "Status", false, "page title and heading"},
    {"group_by", OptionType::string, nullptr, false,
     "label whose value groups the targets into sections; none = one table"},
    {"groups", OptionType::string_list, nullptr, false,
     "order of the group sections; groups not listed follow alphabetically"},
    {"default_group", OptionType::string, "Other", false,
     "section of targets without the group_by label (shown last)"},
    {"state_file", OptionType::string, nullptr, false,
     "snapshot file keeping the history across restarts (written atomically); none = memory only"},
    {"history_conninfo", OptionType::string, nullptr, false,
     "PostgreSQL (postgres_sink's database) to rebuild the history from at start: libpq "
     "conninfo or postgresql:// URI; none = snapshot only",
     nullptr, 0, true},
    {"history_schema", OptionType::string, "webmon", false,
     "postgres_sink's schema in that database"},
    {"snapshot_interval", OptionType::duration, "60s", false,
     "how often the snapshot is written when something changed (and always at stop)"},
    {"sparkline_samples", OptionType::integer, "60", false,
     "response times kept per target for the sparkline (1-1000)"},
    {"bar_hours", OptionType::integer, "24", false,
     "hours shown in the uptime bar, one mark per hour (1-168)"},
    {"cert_warn_days", OptionType::integer, "14", false,
     "certificates expiring in fewer days are highlighted"},
    {"stale_after", OptionType::duration, "10m", false,
     "a target without a check for this long is shown as stale"},
    {"flap_changes", OptionType::integer, "4", false,
     "up/down changes among the sparkline samples that make a target flapping (0 = never)"},
    {"refresh", OptionType::duration, "60s", false,
     "the page reloads itself this often (an HTML meta refresh, no script); 0 = never"},
    {"max_targets", OptionType::integer, "100000", false,
     "targets kept at most (memory bound); checks of further targets are counted and ignored"},
};

std::int64_t int_in(const sdk::ConfigNode& config, const char* name, std::int64_t fallback,
                    std::int64_t lo, std::int64_t hi) {
  const std::int64_t v = config.get_int(name, fallback);
  if (v < lo || v > hi) {
    config.find(name)->fail("option '" + std::string(name) + "' must be between " +
                            std::to_string(lo) + " and " + std::to_string(hi));
  }
  return v;
}

ServiceOptions read_options(const sdk::ConfigNode& config) {
  ServiceOptions o;
  const std::string listen = config.get_string("listen", "127.0.0.1:8080");
  std::string error;
  const auto address = parse_listen(listen, error);
  if (!address) {
    const sdk::ConfigNode* node = config.find("listen");
    const std::string message = "option 'listen': " + error + ", got '" + listen + "'";
    if (node != nullptr) {
      node->fail(message);
    }
    config.fail(message);
  }
  o.listen = *address;
  o.page.title = config.get_string("title", "Status");
  o.page.grouped = config.has("group_by");
  if (const auto* groups = config.find("groups"); groups != nullptr && !groups->is_null()) {
    o.page.groups = groups->as_string_list();
  }
  o.page.default_group = config.get_string("default_group", "Other");
  o.state_file = config.get_string("state_file", "");
  if (const std::string conninfo = config.get_string("history_conninfo", ""); !conninfo.empty()) {
    o.history = HistorySource{conninfo, config.get_string("history_schema", "webmon"),
                              config.get_string("group_by", "")};
  }
  o.snapshot_interval = config.get_duration("snapshot_interval", std::chrono::seconds(60));
  if (o.snapshot_interval.count() < 1000) {
    config.find("snapshot_interval")->fail("option 'snapshot_interval' must be at least 1s");
  }
  o.model.sample_capacity =
      static_cast<std::size_t>(int_in(config, "sparkline_samples", 60, 1, 1000));
  o.model.bar_hours = static_cast<std::size_t>(
      int_in(config, "bar_hours", 24, 1, static_cast<std::int64_t>(kBucketCount)));
  o.page.cert_warn_days = static_cast<int>(int_in(config, "cert_warn_days", 14, 0, 3650));
  o.model.stale_after_us =
      config.get_duration("stale_after", std::chrono::minutes(10)).count() * 1000;
  if (o.model.stale_after_us <= 0) {
    config.find("stale_after")->fail("option 'stale_after' must be more than 0");
  }
  const auto flap = int_in(config, "flap_changes", 4, 0, 1000);
  o.model.flap_transitions = flap == 0 ? INT32_MAX : static_cast<int>(flap);
  o.page.refresh_seconds = static_cast<int>(
      std::chrono::ceil<std::chrono::seconds>(config.get_duration("refresh",
                                                                  std::chrono::seconds(60)))
          .count());
  o.model.max_targets =
      static_cast<std::size_t>(int_in(config, "max_targets", 100000, 1, 10'000'000));
  return o;
}

class StatusPageSink final : public sdk::Sink {
 public:
  StatusPageSink(const sdk::ConfigNode& config, sdk::Context& ctx)
      : group_by_(config.get_string("group_by", "")),
        service_(read_options(config), [&ctx](bool is_error, const std::string& message) {
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
  std::string group_by_;
  StatusService service_;
  std::vector<Check> checks_;
};

}  // namespace
}  // namespace webmon::plugins::status_page

WEBMON_PLUGIN_SINK(webmon::plugins::status_page::StatusPageSink, "status_page", "0.1.0",
                   "Serves a status page (HTML with inline SVG, and JSON) of the checks received",
                   webmon::plugins::status_page::kOptions, webmon::sdk::KindFacts{})
