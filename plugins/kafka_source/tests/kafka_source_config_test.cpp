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

// Bounds, choices and types come from the options table; the host names the value's position.
TEST(kafka_source_config, TableChecksNameFileLineAndColumn) {
  const std::string base = "    brokers: 127.0.0.1:1\n    topics: [t]\n";  // lines 4 and 5
  // `option` on line 6: the error is "pipeline.yaml:<at>: source 'k' (kafka_source): <what>".
  auto expect_error = [&](const std::string& option, const std::string& at,
                          const std::string& what) {
    const std::string err = error_of(base + option);
    EXPECT_NE(err.find("pipeline.yaml:" + at + ": source 'k' (kafka_source): " + what),
              std::string::npos)
        << option << " gave: " << err;
  };
  // Out of range.
  expect_error("    decode_threads: 17\n", "6:21",
               "option 'decode_threads' must be at most 16, got 17");
  expect_error("    batch_size: 0\n", "6:17", "option 'batch_size' must be at least 1, got 0");
  expect_error("    max_message_size: 63\n", "6:23",
               "option 'max_message_size' must be at least 64, got 63");
  expect_error("    max_message_size: 2GiB\n", "6:23",
               "option 'max_message_size' must be at most 1GiB, got 2GiB");
  expect_error("    prefetch_max_size: 2GiB\n", "6:24",
               "option 'prefetch_max_size' must be at most 2097151KiB, got 2GiB");
  expect_error("    batch_timeout: 0\n", "6:20",
               "option 'batch_timeout' must be at least 1ms, got 0");
  expect_error("    commit_interval: 0\n", "6:22",
               "option 'commit_interval' must be at least 1ms, got 0");
  const std::string no_topics = error_of("    brokers: 127.0.0.1:1\n    topics: []\n");
  EXPECT_NE(no_topics.find("pipeline.yaml:5:13: source 'k' (kafka_source): option 'topics' must "
                           "be at least 1 items, got 0"),
            std::string::npos)
      << no_topics;
  // Bad choice.
  expect_error("    start_from: Latest\n", "6:17",
               "option 'start_from' must be one of 'earliest', 'latest', got 'Latest'");
  expect_error("    security_protocol: TLS\n", "6:24",
               "option 'security_protocol' must be one of 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', "
               "'SASL_SSL'");
  // Wrong type.
  expect_error("    static_membership: yes\n", "6:24",
               "option 'static_membership': expected true or false, got 'yes'");
  expect_error("    max_in_flight: 1.5\n", "6:20",
               "option 'max_in_flight': expected an integer, got '1.5'");
  expect_error("    drain_timeout: 10\n", "6:20",
               "option 'drain_timeout': expected a duration such as 250ms");
  // The bounds themselves are accepted.
  EXPECT_EQ(error_of(base + "    decode_threads: 16\n    batch_size: 100000\n"
                            "    max_message_size: 1GiB\n    prefetch_max_size: 2097151KiB\n"
                            "    batch_timeout: 1ms\n    max_in_flight: 10000000\n"),
            "");
  EXPECT_EQ(error_of(base + "    decode_threads: 1\n    max_message_size: 64\n"
                            "    prefetch_max_size: 1MiB\n    security_protocol: sasl_ssl\n"
                            "    sasl_username: u\n    sasl_password: p\n"),
            "");
}

TEST(kafka_source_config, BadValuesNameTheOption) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n").find("missing required option 'topics'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topics: [t]\n    start_from: middle\n")
                .find("option 'start_from' must be one of 'earliest', 'latest'"),
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
