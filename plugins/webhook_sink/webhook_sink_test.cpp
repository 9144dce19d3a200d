// The webhook_sink's options through the plugin's own factory (SDK test kit, no network):
// defaults and the pagerduty preset's URL, bad choices and out-of-range values, and the
// cross-option checks, each refused with file:line:column.
#include <gtest/gtest.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace wt = webmon::sdk::testing;

std::string error_of(std::initializer_list<std::pair<std::string, std::string>> c) {
  return wt::config_error(webmon_plugin_entry(), wt::config(c));
}

TEST(WebhookSinkOptions, ValidConfigurationsAreTaken) {
  EXPECT_EQ(error_of({{"url", "http://127.0.0.1:9/hook"}}), "");
  EXPECT_EQ(error_of({{"preset", "pagerduty"}, {"routing_key", "k"}}), "");
  EXPECT_EQ(error_of({{"url", "https://h.example/x"},
                      {"preset", "slack"},
                      {"method", "PUT"},
                      {"timeout", "10m"},
                      {"rate_limit", "0.5"},
                      {"template_escape", "none"},
                      {"body_template", "{{summary}}"}}),
            "");
}

TEST(WebhookSinkOptions, BadChoicesAndOutOfRangeValuesAreRefused) {
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"method", "GET"}}),
            "test.yaml:3:3: option 'method' must be one of 'POST', 'PUT', got 'GET'");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"severity", "fatal"}}),
            "test.yaml:3:3: option 'severity' must be one of 'critical', 'error', 'warning', "
            "'info', got 'fatal'");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"timeout", "11m"}}),
            "test.yaml:3:3: option 'timeout' must be at most 10m, got 11m");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"rate_limit", "-1"}}),
            "test.yaml:3:3: option 'rate_limit' must be at least 0, got -1");
}

TEST(WebhookSinkOptions, CrossOptionChecksNameThePosition) {
  EXPECT_EQ(error_of({{"preset", "slack"}}),
            "test.yaml:1:1: missing required option 'url' (the webhook's http:// or https:// URL)");
  EXPECT_EQ(error_of({{"url", "ftp://h/"}}),
            "test.yaml:2:3: option 'url': expected an http:// or https:// URL");
  EXPECT_EQ(error_of({{"preset", "pagerduty"}}),
            "test.yaml:1:1: preset 'pagerduty' needs option 'routing_key' (the integration key)");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"username", "u"}, {"bearer_token", "t"}}),
            "test.yaml:1:1: options 'bearer_token' and 'username' exclude each other: choose one");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"cert_file", "/dev/null"}}),
            "test.yaml:1:1: options 'cert_file' and 'key_file' go together: set both or neither");
  EXPECT_EQ(error_of({{"url", "http://h/"}, {"ca_file", "/nonexistent/ca.pem"}}),
            "test.yaml:3:3: option 'ca_file': cannot read '/nonexistent/ca.pem': No such file or "
            "directory");
}

}  // namespace
