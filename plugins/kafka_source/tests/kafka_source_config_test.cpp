// kafka_source configuration (no broker needed): valid configs build without network I/O, bad
// ones are refused with a message naming the option.
#include <gtest/gtest.h>

#include "pipeline_runner.hpp"

namespace {

using webmon::testing::validate_pipeline;

std::string error_of(const std::string& source_options) {
  return validate_pipeline("sources:\n  k:\n    plugin: kafka_source\n" + source_options +
                           "sinks:\n  out: { plugin: blackhole, inputs: [k] }\n");
}

TEST(kafka_source_config, MinimalConfigBuildsWithoutABroker) {
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"), "");
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topics: t\n"), "");
}

TEST(kafka_source_config, EveryOptionAccepted) {
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topics: [a, b]\n    group_id: g\n"
                     "    start_from: latest\n    dead_letter_topic: bad\n"
                     "    max_in_flight: 100\n    batch_size: 10\n    batch_timeout: 5ms\n"
                     "    commit_interval: 5s\n    max_message_size: 64KiB\n"
                     "    drain_timeout: 1s\n    retry_backoff: 100ms\n"
                     "    librdkafka: { session.timeout.ms: 10000 }\n"),
            "");
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"
                     "    group_instance_id: consumer-1.kafka_source\n"),
            "");
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    static_membership: false\n"),
            "");
}

TEST(kafka_source_config, StaticMembershipOptionsAreChecked) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"
                     "    group_instance_id: \"two words\"\n")
                .find("option 'group_instance_id': 'two words' is not a valid group.instance.id "
                      "(1 to 249 of a-z A-Z 0-9 . _ -)"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    static_membership: false\n"
                     "    group_instance_id: c1\n")
                .find("option 'group_instance_id' needs static_membership: true"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"
                     "    librdkafka: { group.instance.id: c1 }\n")
                .find("use option 'group_instance_id'"),
            std::string::npos);
}

TEST(kafka_source_config, BadValuesNameTheOption) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n").find("missing required option 'topics'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    start_from: middle\n")
                .find("option 'start_from': expected earliest or latest"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    dead_letter_topic: t\n")
                .find("must differ from the consumed topic"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    max_in_flight: 0\n")
                .find("option 'max_in_flight'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    group_id: \"\"\n")
                .find("option 'group_id' must not be empty"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"
                     "    librdkafka: { enable.auto.commit: true }\n")
                .find("property 'enable.auto.commit' is managed by the plugin"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n"
                     "    librdkafka: { group.id: other }\n")
                .find("use option 'group_id'"),
            std::string::npos);
}

}  // namespace
