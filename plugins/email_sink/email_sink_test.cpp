// The email_sink's options through the plugin's own factory (SDK test kit, no network):
// defaults, bad choices and out-of-range values, and the address checks, each refused with
// file:line:column.
#include <gtest/gtest.h>

#include <string>
#include <webmon/sdk/testing.hpp>

extern "C" const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept;

namespace {

namespace wt = webmon::sdk::testing;

std::string error_of(std::initializer_list<std::pair<std::string, std::string>> c) {
  return wt::config_error(webmon_plugin_entry(), wt::config(c));
}

TEST(EmailSinkOptions, ValidConfigurationsAreTaken) {
  EXPECT_EQ(error_of({{"url", "smtp://127.0.0.1:25"}, {"from", "a@b"}, {"to", "c@d"}}), "");
  EXPECT_EQ(error_of({{"url", "smtps://h:465"},
                      {"from", "a@b"},
                      {"to", "c@d"},
                      {"starttls", "never"},
                      {"timeout", "1ms"},
                      {"subject_template", "{{state}}: {{target}}"}}),
            "");
}

TEST(EmailSinkOptions, BadChoicesAndOutOfRangeValuesAreRefused) {
  EXPECT_EQ(error_of({{"url", "smtp://h"}, {"from", "a@b"}, {"to", "c@d"}, {"starttls", "yes"}}),
            "test.yaml:5:3: option 'starttls' must be one of 'required', 'try', 'never', got "
            "'yes'");
  EXPECT_EQ(error_of({{"url", "smtp://h"}, {"from", "a@b"}, {"to", "c@d"}, {"timeout", "0s"}}),
            "test.yaml:5:3: option 'timeout' must be at least 1ms, got 0s");
}

TEST(EmailSinkOptions, MalformedValuesNameThePosition) {
  EXPECT_EQ(error_of({{"url", "http://h"}, {"from", "a@b"}, {"to", "c@d"}}),
            "test.yaml:2:3: option 'url': expected smtp://host:port or smtps://host:port");
  EXPECT_EQ(error_of({{"url", "smtp://h"}, {"from", "a@b"}, {"to", "nobody"}}),
            "test.yaml:4:3: option 'to': 'nobody' is not an email address");
  EXPECT_EQ(error_of({{"url", "smtp://h"}, {"from", "a"}, {"to", "c@d"}}),
            "test.yaml:3:3: option 'from': 'a' is not an email address");
  EXPECT_EQ(error_of({{"url", "smtp://h"}, {"from", "a@b"}}),
            "test.yaml:1:1: missing required option 'to'");
  EXPECT_NE(
      error_of(
          {{"url", "smtp://h"}, {"from", "a@b"}, {"to", "c@d"}, {"subject_template", "{{nope}}"}})
          .find("test.yaml:5:3: "),
      std::string::npos);
}

}  // namespace
