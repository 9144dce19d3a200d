// The status_page sink's options through the plugin's own factory (SDK test kit): defaults
// applied, and out-of-range or malformed values refused with file:line:column and the bounds.
#include <gtest/gtest.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace wt = webmon::sdk::testing;

std::string error_of(std::initializer_list<std::pair<std::string, std::string>> c) {
  return wt::config_error(webmon_plugin_entry(), wt::config(c));
}

TEST(StatusPageOptions, ValidValuesAreTaken) {
  EXPECT_EQ(error_of({{"listen", "127.0.0.1:0"}}), "");
  EXPECT_EQ(error_of({{"listen", "[::1]:0"},
                      {"bar_hours", "168"},
                      {"flap_changes", "0"},
                      {"cert_warn_days", "0"},
                      {"refresh", "0s"},
                      {"snapshot_interval", "1s"}}),
            "");
}

TEST(StatusPageOptions, OutOfRangeValuesAreRefusedWithTheBounds) {
  EXPECT_EQ(error_of({{"sparkline_samples", "0"}}),
            "test.yaml:2:3: option 'sparkline_samples' must be at least 1, got 0");
  EXPECT_EQ(error_of({{"bar_hours", "169"}}),
            "test.yaml:2:3: option 'bar_hours' must be at most 168, got 169");
  EXPECT_EQ(error_of({{"cert_warn_days", "-1"}}),
            "test.yaml:2:3: option 'cert_warn_days' must be at least 0, got -1");
  EXPECT_EQ(error_of({{"flap_changes", "1001"}}),
            "test.yaml:2:3: option 'flap_changes' must be at most 1000, got 1001");
  EXPECT_EQ(error_of({{"max_targets", "0"}}),
            "test.yaml:2:3: option 'max_targets' must be at least 1, got 0");
  EXPECT_EQ(error_of({{"snapshot_interval", "500ms"}}),
            "test.yaml:2:3: option 'snapshot_interval' must be at least 1s, got 500ms");
  EXPECT_EQ(error_of({{"stale_after", "0s"}}),
            "test.yaml:2:3: option 'stale_after' must be at least 1ms, got 0s");
}

TEST(StatusPageOptions, MalformedValuesAreRefusedWithThePosition) {
  EXPECT_EQ(error_of({{"title", "x"}, {"listen", "localhost"}}),
            "test.yaml:3:3: option 'listen': expected HOST:PORT such as 127.0.0.1:8080 (IPv6 as "
            "[::1]:8080), got 'localhost'");
  EXPECT_EQ(error_of({{"bar_hours", "many"}}), "test.yaml:2:3: expected an integer, got 'many'");
}

}  // namespace
