// alert transform: turns check results (any kind with `success` and `target`) into `alert`
// records — firing once an incident is confirmed, resolved once it is over — with thresholds,
// several locations, repeats, silences, and state kept in a file across restarts.
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "engine.hpp"
#include "state_file.hpp"
#include "webmon/notify/alert_kind.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/sdk.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::plugins::alert {
namespace {

using namespace std::string_view_literals;

using sdk::FieldSpec;
using sdk::FieldType;
using sdk::OptionSpec;
using sdk::OptionType;

struct Override {
  std::string target;
  std::optional<int> failure_threshold;
  std::optional<int> success_threshold;
  std::optional<int> min_locations;
};

struct Options {
  int failure_threshold = 3;
  int success_threshold = 2;
  int min_locations = 1;
  std::chrono::milliseconds repeat_interval{0};
  std::chrono::milliseconds location_expiry{0};
  std::vector<Override> overrides;
  bool pass_through = true;
  std::string state_file;
  std::string location_label;
  std::chrono::milliseconds save_interval{5000};
};

constexpr OptionSpec kOverrideOptions[] = {
    {.name = "target",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "target name (the records' `target`)",
     .assign = sdk::bind<&Override::target>()},
    {.name = "failure_threshold",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = false,
     .description = "this target's failure_threshold",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Override::failure_threshold>()},
    {.name = "success_threshold",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = false,
     .description = "this target's success_threshold",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Override::success_threshold>()},
    {.name = "min_locations",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = false,
     .description = "this target's min_locations",
     .min = "1",
     .max = "10000",
     .assign = sdk::bind<&Override::min_locations>()},
};

constexpr OptionSpec kSilenceOptions[] = {
    {.name = "start",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "RFC 3339 time the window opens, e.g. 2026-12-24T18:00:00Z"},
    {.name = "end",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "RFC 3339 time the window closes (exclusive)"},
    {.name = "targets",
     .type = OptionType::string_list,
     .default_value = nullptr,
     .required = false,
     .description = "target names, or prefixes ending in '*'; default: every target"},
    {.name = "labels",
     .type = OptionType::string_map,
     .default_value = nullptr,
     .required = false,
     .description = "labels a result must all have; default: any"},
    {.name = "comment",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "why (for the reader of the file)"},
};

constexpr OptionSpec kOptions[] = {
    {.name = "failure_threshold",
     .type = OptionType::integer,
     .default_value = "3",
     .required = false,
     .description = "consecutive failed checks before a location counts as failing "
                    "(label alert_failure_threshold overrides it per target)",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Options::failure_threshold>()},
    {.name = "success_threshold",
     .type = OptionType::integer,
     .default_value = "2",
     .required = false,
     .description = "consecutive successful checks before a failing location counts as ok "
                    "again (label alert_success_threshold)",
     .min = "1",
     .max = "1000000",
     .assign = sdk::bind<&Options::success_threshold>()},
    {.name = "min_locations",
     .type = OptionType::integer,
     .default_value = "1",
     .required = false,
     .description = "agents (the records' `agent`) that must see the target failing before it "
                    "fires (label alert_min_locations)",
     .min = "1",
     .max = "10000",
     .assign = sdk::bind<&Options::min_locations>()},
    {.name = "repeat_interval",
     .type = OptionType::duration,
     .default_value = "0",
     .required = false,
     .description = "send `firing` again while still firing, this long after the last one "
                    "(record time); 0 = once per incident",
     .assign = sdk::bind<&Options::repeat_interval>()},
    {.name = "location_expiry",
     .type = OptionType::duration,
     .default_value = "0",
     .required = false,
     .description = "a location with no result for this long (record time) no longer counts "
                    "towards min_locations; 0 = never",
     .assign = sdk::bind<&Options::location_expiry>()},
    {.name = "overrides",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "per-target thresholds",
     .children = kOverrideOptions,
     .child_count = std::size(kOverrideOptions),
     .assign = sdk::bind_each<&Options::overrides, kOverrideOptions>()},
    {.name = "silences",
     .type = OptionType::object_list,
     .default_value = nullptr,
     .required = false,
     .description = "time windows during which nothing is sent (state is kept)",
     .children = kSilenceOptions,
     .child_count = std::size(kSilenceOptions)},
    {.name = "location_label",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "take a result's location from this label instead of its `agent` field "
                    "(one agent checking through several network paths)",
     .assign = sdk::bind<&Options::location_label>()},
    {.name = "pass_through",
     .type = OptionType::boolean,
     .default_value = "true",
     .required = false,
     .description = "pass the check results on unchanged (false: only alert records leave)",
     .assign = sdk::bind<&Options::pass_through>()},
    {.name = "state_file",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "where the state is kept across restarts (default: "
                    "<agent.state_dir>/alert-<component id>.json)",
     .assign = sdk::bind<&Options::state_file>()},
    {.name = "save_interval",
     .type = OptionType::duration,
     .default_value = "5s",
     .required = false,
     .description = "how often counters are saved; firing/resolved decisions are saved at once",
     .min = "10ms",
     .max = "1h",
     .assign = sdk::bind<&Options::save_interval>()},
};

/// What every kind reaching the transform must declare.
constexpr FieldSpec kRequired[] = {
    {"success", FieldType::boolean, false, "", "whether the check succeeded"},
    {"target", FieldType::string, false, "", "what was checked"},
};

constexpr sdk::KindSpec kEmits[] = {notify::kAlertKind};

std::vector<Silence> parse_silences(const sdk::ConfigNode* node) {
  std::vector<Silence> out;
  if (node == nullptr || node->is_null()) {
    return out;
  }
  if (!node->is_list()) {
    node->fail("option 'silences': expected a list of maps");
  }
  for (const auto& item : node->items()) {
    if (!item.is_map()) {
      item.fail("option 'silences': expected a map with start and end");
    }
    Silence s;
    for (const char* key : {"start", "end"}) {
      const sdk::ConfigNode* t = item.find(key);
      if (t == nullptr || t->is_null()) {
        item.fail(std::string("silence: missing '") + key + "'");
      }
      auto ts = parse_rfc3339(t->as_string());
      if (!ts) {
        t->fail(std::string("silence '") + key + "': '" + t->text() +
                "' is not an RFC 3339 time; write e.g. 2026-12-24T18:00:00Z");
      }
      (std::string_view(key) == "start" ? s.start : s.end) = *ts;
    }
    if (!(s.start < s.end)) {
      item.find("end")->fail("silence: 'end' must be after 'start'");
    }
    if (const auto* t = item.find("targets"); t != nullptr && !t->is_null()) {
      s.targets = t->as_string_list();
    }
    if (const auto* l = item.find("labels"); l != nullptr && !l->is_null()) {
      for (auto& [k, v] : l->as_string_map()) {
        s.labels.emplace(k, v);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

class Alert final : public sdk::Transform {
 public:
  Alert(const sdk::ConfigNode& config, sdk::Context& ctx)
      : options_(sdk::load_options<Options>(config, kOptions)),
        engine_(make_config(config), [](sdk::Timestamp at) { return sdk::make_uuid_v7(at); }),
        agent_(ctx.agent_name()) {
    for (const auto& o : options_.overrides) {
      Thresholds t{options_.failure_threshold, options_.success_threshold, options_.min_locations};
      t.failure = o.failure_threshold.value_or(t.failure);
      t.success = o.success_threshold.value_or(t.success);
      t.min_locations = o.min_locations.value_or(t.min_locations);
      overrides_.insert_or_assign(o.target, t);
    }
    if (options_.state_file.empty()) {
      options_.state_file = ctx.state_dir() + "/alert-" + ctx.component_id() + ".json";
    }
  }

 protected:
  sdk::Status on_start() override {
    try {
      const std::size_t n = load_state(engine_, options_.state_file);
      save_state(engine_, options_.state_file);  // proves the path is writable now
      ctx().info("state file " + options_.state_file + ": " + std::to_string(n) +
                 " target(s) restored");
    } catch (const std::exception& e) {
      return sdk::Status::error(std::string("option 'state_file': ") + e.what());
    }
    last_save_ = std::chrono::steady_clock::now();
    return sdk::Status::ok();
  }

  sdk::Status on_process(std::vector<sdk::Record>& records) override {
    std::vector<sdk::Record> alerts;
    bool save_now = false;
    bool observed = false;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      sdk::Record& r = records[i];
      // One pass over the fields, stopping once the six it reads were seen (a check result
      // has ~25; http_check's come first). string_view compares sizes before bytes.
      const bool* success = nullptr;
      const std::string* target = nullptr;
      const std::string* agent = nullptr;
      Observation o;
      int seen = 0;
      for (const auto& f : r.fields) {
        const std::string_view n = f.name;
        if (n == "success"sv) {
          success = std::get_if<bool>(&f.value);
        } else if (n == "target"sv) {
          target = std::get_if<std::string>(&f.value);
        } else if (n == "agent"sv) {
          agent = std::get_if<std::string>(&f.value);
        } else if (n == "error"sv) {
          o.error = std::get_if<std::string>(&f.value);
        } else if (n == "error_message"sv) {
          o.error_message = std::get_if<std::string>(&f.value);
        } else if (n == "status_code"sv) {
          if (const auto* code = std::get_if<std::int64_t>(&f.value)) {
            o.status_code = *code;
          }
        } else {
          continue;
        }
        if (++seen == 6) {
          break;
        }
      }
      const bool check = success != nullptr && target != nullptr;
      if (check) {
        observed = true;
        o.kind = r.kind;
        o.target = *target;
        if (options_.location_label.empty()) {
          o.location = agent != nullptr ? std::string_view(*agent) : std::string_view();
        } else {
          auto it = r.labels.find(options_.location_label);
          o.location = it != r.labels.end() ? std::string_view(it->second) : std::string_view();
        }
        o.success = *success;
        o.time = r.time;
        o.labels = &r.labels;
        o.thresholds = thresholds_for(*target, r.labels);
        notes_.clear();
        save_now |= engine_.observe(o, notes_);
        for (auto& n : notes_) {
          alerts.push_back(to_record(n, r.labels));
        }
      }
      if (!check || options_.pass_through) {
        if (kept != i) {
          records[kept] = std::move(r);
        }
        ++kept;
      }
    }
    records.resize(kept);
    for (auto& a : alerts) {
      ctx()
          .counter(a.get<std::string>("state")->front() == 'f' ? "alerts_firing"
                                                               : "alerts_resolved")
          .add();
      records.push_back(std::move(a));
    }
    dirty_ |= observed;
    const auto now = std::chrono::steady_clock::now();
    if (save_now || (dirty_ && now - last_save_ >= options_.save_interval)) {
      save(now);
    }
    return sdk::Status::ok();
  }

  sdk::Status on_stop() override {
    save(std::chrono::steady_clock::now());
    return sdk::Status::ok();
  }

 private:
  static EngineConfig make_config(const sdk::ConfigNode& config) {
    const auto o = sdk::load_options<Options>(config, kOptions);
    EngineConfig c;
    c.defaults = {o.failure_threshold, o.success_threshold, o.min_locations};
    c.repeat_interval = o.repeat_interval;
    c.location_expiry = o.location_expiry;
    c.silences = parse_silences(config.find("silences"));
    return c;
  }

  Thresholds thresholds_for(const std::string& target, const sdk::Labels& labels) {
    Thresholds t{options_.failure_threshold, options_.success_threshold, options_.min_locations};
    if (!overrides_.empty()) {
      if (auto it = overrides_.find(target); it != overrides_.end()) {
        t = it->second;
      }
    }
    if (!labels.empty()) {
      label_value(labels, "alert_failure_threshold", t.failure);
      label_value(labels, "alert_success_threshold", t.success);
      label_value(labels, "alert_min_locations", t.min_locations);
    }
    return t;
  }

  void label_value(const sdk::Labels& labels, std::string_view name, int& out) {
    auto it = labels.find(name);
    if (it == labels.end()) {
      return;
    }
    auto v = sdk::parse_int(it->second);
    if (!v || *v < 1 || *v > 1'000'000) {
      limiter_.log(ctx(), sdk::LogLevel::warn, "label",
                   "label " + std::string(name) + "='" + it->second +
                       "' is not a whole number from 1 to 1000000; the option's value is used");
      return;
    }
    out = static_cast<int>(*v);
  }

  sdk::Record to_record(const Notification& n, const sdk::Labels& labels) const {
    sdk::Record r;
    r.kind = "alert";
    r.id = sdk::make_uuid_v7(n.at);
    r.time = n.at;
    r.fields.reserve(std::size(notify::kAlertFields));
    r.add("target", n.target);
    r.add("check_kind", n.check_kind);
    r.add("state", std::string(n.firing ? "firing" : "resolved"));
    r.add("incident_id", n.incident_id);
    r.add("since", n.since);
    r.add("duration_ms", (n.at.micros - n.since.micros) / 1000);
    r.add("consecutive_failures", n.consecutive_failures);
    r.add("locations_failing", n.locations_failing);
    r.add("repeat", n.repeat);
    r.add("last_error", n.last_error ? sdk::Value(*n.last_error) : sdk::Value());
    r.add("last_error_message",
          n.last_error_message ? sdk::Value(*n.last_error_message) : sdk::Value());
    r.add("last_status_code", n.last_status_code ? sdk::Value(*n.last_status_code) : sdk::Value());
    r.add("agent", agent_);
    r.labels = labels;
    return r;
  }

  void save(std::chrono::steady_clock::time_point now) {
    try {
      save_state(engine_, options_.state_file);
      ctx().counter("state_saves").add();
      dirty_ = false;
    } catch (const std::exception& e) {
      ctx().counter("state_save_errors").add();
      limiter_.log(ctx(), sdk::LogLevel::error, "save", e.what());
    }
    last_save_ = now;
  }

  Options options_;
  Engine engine_;
  std::string agent_;
  std::map<std::string, Thresholds, std::less<>> overrides_;
  std::vector<Notification> notes_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_save_{};
  sdk::LogLimiter limiter_;
};

}  // namespace
}  // namespace webmon::plugins::alert

WEBMON_PLUGIN_TRANSFORM(webmon::plugins::alert::Alert, "alert", "1.0.0",
                        "Alerts from check results: thresholds, locations, repeats, silences",
                        webmon::plugins::alert::kOptions,
                        webmon::sdk::requires_fields(webmon::plugins::alert::kRequired) |
                            webmon::sdk::emits(webmon::plugins::alert::kEmits))
