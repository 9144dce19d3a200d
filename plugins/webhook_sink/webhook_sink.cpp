// webhook_sink: POSTs each record (an alert, or any record) as JSON to a URL — a generic
// body, a {{template}}, or a preset for Slack, Discord, Microsoft Teams or PagerDuty Events
// API v2. A batch is delivered only after a 2xx for every record; 4xx (not 429) rejects it
// with the response's first bytes logged; 5xx, 429 and network errors leave it to the host's
// retry. Records already answered are not sent again when the host retries a batch.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include "webmon/notify/curl_util.hpp"
#include "webmon/notify/template.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::webhook_sink {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

constexpr const char* kPagerDutyUrl = "https://events.pagerduty.com/v2/enqueue";

struct Options {
  std::optional<std::string> url;
  std::string preset;
  std::optional<std::string> body_template;
  std::string template_escape;
  std::string method;
  std::string content_type;
  sdk::Labels headers;
  std::string username;
  std::string password;
  std::string bearer_token;
  std::string routing_key;
  std::string severity;
  bool tls_verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds timeout{};
  double rate_limit = 0;
};

// Declared once: the host checks types, bounds and choices and fills the defaults;
// load_options() binds. `url` has no default in the table: preset pagerduty supplies one.
constexpr OptionSpec kOptions[] = {
    {.name = "url",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "http:// or https:// URL to POST to (required, except with preset "
                    "pagerduty: https://events.pagerduty.com/v2/enqueue); secret (never logged)",
     .secret = true,
     .assign = sdk::bind<&Options::url>()},
    {.name = "preset",
     .type = OptionType::string,
     .default_value = "generic",
     .required = false,
     .description = "body format: generic (the record as JSON), slack, discord, teams, pagerduty",
     .choices = "generic|slack|discord|teams|pagerduty",
     .assign = sdk::bind<&Options::preset>()},
    {.name = "body_template",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "body text with {{placeholders}} (replaces the preset's body)",
     .assign = sdk::bind<&Options::body_template>()},
    {.name = "template_escape",
     .type = OptionType::string,
     .default_value = "json",
     .required = false,
     .description = "how placeholder values are written: json (escaped for a JSON string) or "
                    "none",
     .choices = "json|none",
     .assign = sdk::bind<&Options::template_escape>()},
    {.name = "method",
     .type = OptionType::string,
     .default_value = "POST",
     .required = false,
     .description = "HTTP method",
     .choices = "POST|PUT",
     .assign = sdk::bind<&Options::method>()},
    {.name = "content_type",
     .type = OptionType::string,
     .default_value = "application/json",
     .required = false,
     .description = "Content-Type header of the body",
     .assign = sdk::bind<&Options::content_type>()},
    {.name = "headers",
     .type = OptionType::string_map,
     .default_value = nullptr,
     .required = false,
     .description = "extra request headers (values are secret: never logged)",
     .secret = true,
     .assign = sdk::bind<&Options::headers>()},
    {.name = "username",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "HTTP basic auth user name",
     .assign = sdk::bind<&Options::username>()},
    {.name = "password",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "HTTP basic auth password (use ${VAR})",
     .secret = true,
     .assign = sdk::bind<&Options::password>()},
    {.name = "bearer_token",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "Authorization: Bearer token (use ${VAR})",
     .secret = true,
     .assign = sdk::bind<&Options::bearer_token>()},
    {.name = "routing_key",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "PagerDuty integration key (preset pagerduty; use ${VAR})",
     .secret = true,
     .assign = sdk::bind<&Options::routing_key>()},
    {.name = "severity",
     .type = OptionType::string,
     .default_value = "critical",
     .required = false,
     .description = "PagerDuty event severity",
     .choices = "critical|error|warning|info",
     .assign = sdk::bind<&Options::severity>()},
    WEBMON_NOTIFY_TLS_OPTIONS(Options),
    {.name = "timeout",
     .type = OptionType::duration,
     .default_value = "10s",
     .required = false,
     .description = "whole request, connection included",
     .min = "1ms",
     .max = "10m",
     .assign = sdk::bind<&Options::timeout>()},
    {.name = "rate_limit",
     .type = OptionType::number,
     .default_value = "0",
     .required = false,
     .description = "requests per second to this destination (scheme, host and port, shared "
                    "by every webhook_sink of the agent); 0 = unlimited",
     .min = "0",
     .max = "100000",
     .assign = sdk::bind<&Options::rate_limit>()},
};

/// One token bucket per destination, shared by every webhook_sink instance of the process.
class RateLimiter {
 public:
  /// How long to wait before the next request to `destination` at `rate` per second.
  static std::chrono::microseconds reserve(const std::string& destination, double rate) {
    static std::mutex mu;
    static std::map<std::string, std::chrono::steady_clock::time_point> next;
    const auto now = std::chrono::steady_clock::now();
    const auto interval = std::chrono::microseconds(static_cast<std::int64_t>(1e6 / rate));
    std::lock_guard lock(mu);
    auto& slot = next[destination];
    const auto at = std::max(slot, now);
    slot = at + interval;
    return std::chrono::duration_cast<std::chrono::microseconds>(at - now);
  }
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  constexpr std::size_t kKeep = std::size_t{64} * 1024;  // the first bytes are enough to log
  if (body->size() < kKeep) {
    body->append(data, std::min(size * n, kKeep - body->size()));
  }
  return size * n;
}

class WebhookSink final : public sdk::Sink {
 public:
  WebhookSink(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)),
        tls_(notify::check_tls({o_.tls_verify, o_.ca_file, o_.cert_file, o_.key_file}, config)) {
    notify::curl_init_once();
    url_ = o_.url.value_or(o_.preset == "pagerduty" ? kPagerDutyUrl : "");
    if (url_.empty()) {
      config.fail("missing required option 'url' (the webhook's http:// or https:// URL)");
    }
    if (url_.rfind("http://", 0) != 0 && url_.rfind("https://", 0) != 0) {
      config.find("url")->fail("option 'url': expected an http:// or https:// URL");
    }
    destination_ = notify::loggable_destination(url_);
    url_where_ =
        config.find("url") != nullptr ? config.find("url")->where().str() : config.where().str();
    if (o_.preset == "pagerduty" && o_.routing_key.empty()) {
      config.fail("preset 'pagerduty' needs option 'routing_key' (the integration key)");
    }
    if (o_.body_template) {
      const auto escape =
          o_.template_escape == "json" ? notify::Escape::json : notify::Escape::none;
      template_ = notify::Template(*o_.body_template, escape, *config.find("body_template"));
    }
    headers_.push_back("Content-Type: " + o_.content_type);
    for (const auto& [k, v] : o_.headers) {
      headers_.push_back(k + ": " + v);
    }
    if (!o_.bearer_token.empty() && !o_.username.empty()) {
      config.fail("options 'bearer_token' and 'username' exclude each other: choose one");
    }
  }

  ~WebhookSink() override {
    if (curl_ != nullptr) {
      curl_easy_cleanup(curl_);
    }
    curl_slist_free_all(header_list_);
  }
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

 protected:
  sdk::Status on_start() override {
    curl_ = curl_easy_init();
    if (curl_ == nullptr) {
      return sdk::Status::error("curl_easy_init failed");
    }
    for (const auto& h : headers_) {
      header_list_ = curl_slist_append(header_list_, h.c_str());
    }
    ctx().info("posting to " + destination_ + " (preset " + o_.preset + ")");
    // Say at once when the destination cannot be reached (never fatal: it may come up later,
    // and alerts are retried until it does).
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<std::int64_t>(o_.timeout.count(), 3000)));
    notify::apply_tls(curl_, tls_);
    if (const CURLcode rc = curl_easy_perform(curl_); rc != CURLE_OK) {
      ctx().warn(url_where_ + ": option 'url': cannot reach " + destination_ + " now (" +
                 curl_easy_strerror(rc) + "); alerts are kept and retried until it answers");
    }
    curl_easy_reset(curl_);
    return sdk::Status::ok();
  }

  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override {
    bool retry = false;
    bool rejected = false;
    for (const auto& r : batch.records) {
      if (!r.id.empty() && answered_.contains(r.id)) {
        continue;  // answered in an earlier attempt of this batch
      }
      if (retry) {
        break;  // the destination is failing: the host retries the batch after a backoff
      }
      switch (post(r)) {
        case sdk::AckStatus::delivered:
          remember(r.id);
          break;
        case sdk::AckStatus::rejected:
          remember(r.id);
          rejected = true;
          break;
        case sdk::AckStatus::retryable:
          retry = true;
          break;
      }
    }
    ack.resolve(retry      ? sdk::AckStatus::retryable
                : rejected ? sdk::AckStatus::rejected
                           : sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }

 private:
  std::string body_of(const sdk::Record& r) const {
    if (!template_.empty()) {
      return template_.render(r);
    }
    using nlohmann::json;
    const std::string summary = notify::summary(r);
    const std::string* state = r.get<std::string>("state");
    const bool resolved = r.kind == "alert" && state != nullptr && *state == "resolved";
    if (o_.preset == "slack") {
      return json{{"text", summary}}.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (o_.preset == "discord") {
      return json{{"content", summary.substr(0, 2000)}}.dump(-1, ' ', false,
                                                             json::error_handler_t::replace);
    }
    if (o_.preset == "teams") {
      return json{{"@type", "MessageCard"},
                  {"@context", "https://schema.org/extensions"},
                  {"summary", summary},
                  {"themeColor", resolved ? "2EB886" : "D70000"},
                  {"title", summary}}
          .dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (o_.preset == "pagerduty") {
      const std::string* incident = r.get<std::string>("incident_id");
      const std::string* target = r.get<std::string>("target");
      const std::string* check_kind = r.get<std::string>("check_kind");
      json payload{{"summary", summary.substr(0, 1024)},
                   {"source", target != nullptr ? *target : r.kind},
                   {"severity", o_.severity},
                   {"timestamp", sdk::format_rfc3339(r.time)},
                   {"component", check_kind != nullptr ? *check_kind : r.kind},
                   {"custom_details", json::parse(notify::record_json(r))}};
      return json{{"routing_key", o_.routing_key},
                  {"event_action", resolved ? "resolve" : "trigger"},
                  {"dedup_key", incident != nullptr ? *incident : r.id},
                  {"payload", std::move(payload)}}
          .dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return notify::record_json(r);
  }

  sdk::AckStatus post(const sdk::Record& r) {
    if (o_.rate_limit > 0) {
      const auto wait = RateLimiter::reserve(destination_, o_.rate_limit);
      if (wait.count() > 0) {
        ctx().counter("rate_limited").add();
        std::this_thread::sleep_for(wait);
      }
    }
    const std::string body = body_of(r);
    std::string response;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, o_.method.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, header_list_);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout.count()));
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "webmon-webhook-sink/1.0");
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response);
    if (!o_.username.empty()) {
      curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl_, CURLOPT_USERNAME, o_.username.c_str());
      curl_easy_setopt(curl_, CURLOPT_PASSWORD, o_.password.c_str());
    } else if (!o_.bearer_token.empty()) {
      curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
      curl_easy_setopt(curl_, CURLOPT_XOAUTH2_BEARER, o_.bearer_token.c_str());
    }
    notify::apply_tls(curl_, tls_);
    ctx().counter("requests").add();
    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) {
      ctx().counter("network_errors").add();
      limiter_.log(ctx(), sdk::LogLevel::warn, "network",
                   destination_ + ": " + curl_easy_strerror(rc) + "; the batch will be retried");
      return sdk::AckStatus::retryable;
    }
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
      ctx().counter("responses_2xx").add();
      return sdk::AckStatus::delivered;
    }
    if (code == 429 || code >= 500) {
      ctx().counter("responses_retryable").add();
      limiter_.log(ctx(), sdk::LogLevel::warn, "retryable",
                   destination_ + " answered HTTP " + std::to_string(code) + " (" +
                       notify::first_bytes(response) + "); the batch will be retried");
      return sdk::AckStatus::retryable;
    }
    ctx().counter("responses_rejected").add();
    limiter_.log(ctx(), sdk::LogLevel::error, "rejected",
                 destination_ + " rejected record " + r.id + " (" + r.kind + ") with HTTP " +
                     std::to_string(code) + ": " + notify::first_bytes(response));
    return sdk::AckStatus::rejected;
  }

  void remember(const std::string& id) {
    if (id.empty()) {
      return;
    }
    answered_.insert(id);
    order_.push_back(id);
    if (order_.size() > 100'000) {
      answered_.erase(order_.front());
      order_.pop_front();
    }
  }

  Options o_;
  std::string url_;  // o_.url, or the preset's
  notify::TlsOptions tls_;
  std::string destination_;
  std::string url_where_;
  notify::Template template_;
  std::vector<std::string> headers_;
  CURL* curl_ = nullptr;
  curl_slist* header_list_ = nullptr;
  std::unordered_set<std::string> answered_;
  std::deque<std::string> order_;
  sdk::LogLimiter limiter_{std::chrono::seconds(10)};
};

}  // namespace
}  // namespace webmon::plugins::webhook_sink

WEBMON_PLUGIN_SINK(webmon::plugins::webhook_sink::WebhookSink, "webhook_sink", "1.0.0",
                   "POSTs records (alerts) as JSON: generic, template, Slack, Discord, Teams, "
                   "PagerDuty",
                   webmon::plugins::webhook_sink::kOptions, webmon::sdk::KindFacts{})
