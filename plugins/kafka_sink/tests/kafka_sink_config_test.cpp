// kafka_sink configuration (no broker needed): valid configs build without network I/O, bad
// ones are refused with a message naming the option, defaults apply, secrets are not printed.
#include <gtest/gtest.h>

#include "pipeline_runner.hpp"

namespace {

using webmon::testing::validate_pipeline;

std::string pipeline(const std::string& sink_options) {
  return "sources:\n  gen: { plugin: generator, count: 1 }\nsinks:\n  k:\n"
         "    plugin: kafka_sink\n    inputs: [gen]\n" +
         sink_options;
}

std::string error_of(const std::string& sink_options) {
  return validate_pipeline(pipeline(sink_options));
}

TEST(kafka_sink_config, MinimalConfigBuildsWithoutABroker) {
  // Nothing listens on port 1: construction must not connect.
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topic: t\n"), "");
}

TEST(kafka_sink_config, EveryOptionAccepted) {
  EXPECT_EQ(error_of("    brokers: [127.0.0.1:1, 127.0.0.2:1]\n    topic: t\n"
                     "    security_protocol: sasl_plaintext\n    sasl_mechanism: scram-sha-512\n"
                     "    sasl_username: u\n    sasl_password: p\n    compression: zstd\n"
                     "    linger: 20ms\n    queue_max_records: 1000\n    queue_max_size: 16MiB\n"
                     "    delivery_timeout: 5m\n    connect_timeout: 1s\n"
                     "    librdkafka: { client.id: webmon-test, socket.keepalive.enable: true }\n"),
            "");
}

TEST(kafka_sink_config, RequiredOptions) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n").find("missing required option 'topic'"),
            std::string::npos);
  EXPECT_NE(error_of("    topic: t\n").find("missing required option 'brokers'"),
            std::string::npos);
}

TEST(kafka_sink_config, BadValuesNameTheOption) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    compression: brotli\n")
                .find("option 'compression' must be one of 'none', 'gzip', 'snappy', 'lz4', "
                      "'zstd'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: localhost\n    topic: t\n").find("has no port"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    security_protocol: TLS\n")
                .find("option 'security_protocol'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    queue_max_records: 0\n")
                .find("option 'queue_max_records'"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    nonsense: 1\n").find("nonsense"),
            std::string::npos);
}

// Bounds, choices and types come from the options table; the host names the value's position.
TEST(kafka_sink_config, TableChecksNameFileLineAndColumn) {
  const std::string base = "    brokers: 127.0.0.1:1\n    topic: t\n";  // lines 7 and 8
  // `option` on line 9 (10): the error is "pipeline.yaml:<at>: sink 'k' (kafka_sink): <what>".
  auto expect_error = [&](const std::string& option, const std::string& at,
                          const std::string& what) {
    const std::string err = error_of(base + option);
    EXPECT_NE(err.find("pipeline.yaml:" + at + ": sink 'k' (kafka_sink): " + what),
              std::string::npos)
        << option << " gave: " << err;
  };
  // Out of range.
  expect_error("    queue_max_records: 10000001\n", "9:24",
               "option 'queue_max_records' must be at most 10000000, got 10000001");
  expect_error("    queue_max_size: 512\n", "9:21",
               "option 'queue_max_size' must be at least 1KiB, got 512");
  expect_error("    queue_max_size: 3000GiB\n", "9:21",
               "option 'queue_max_size' must be at most 2147483647KiB, got 3000GiB");
  expect_error("    linger: 16m\n", "9:13", "option 'linger' must be at most 15m, got 16m");
  expect_error("    delivery_timeout: 25d\n", "9:23",
               "option 'delivery_timeout' must be at most 2147483647ms, got 25d");
  // Bad choice.
  expect_error("    sasl_mechanism: GSSAPI\n", "9:21",
               "option 'sasl_mechanism' must be one of 'PLAIN', 'SCRAM-SHA-256', "
               "'SCRAM-SHA-512', 'plain', 'scram-sha-256', 'scram-sha-512', got 'GSSAPI'");
  expect_error("    security_protocol: Ssl\n", "9:24",
               "option 'security_protocol' must be one of 'PLAINTEXT', 'SSL'");
  expect_error("    compression: Zstd\n", "9:18", "option 'compression' must be one of");
  // Wrong type.
  expect_error("    queue_max_records: lots\n", "9:24",
               "option 'queue_max_records': expected an integer, got 'lots'");
  expect_error("    queue_max_size: 2TiB\n", "9:21",
               "option 'queue_max_size': expected a size such as 512, 64KiB or 1MiB");
  expect_error("    linger: [5ms]\n", "9:13", "option 'linger': expected a duration");
  expect_error("    librdkafka: [client.id]\n", "9:17",
               "option 'librdkafka': expected a map of names to strings, got a list");
  // Rules the table cannot express keep their own messages and positions.
  expect_error("    linger: 1s\n    delivery_timeout: 1s\n", "10:23",
               "option 'delivery_timeout' must be 0 (never) or longer than 'linger'");
  expect_error("    key_field: Target\n", "9:16",
               "option 'key_field': 'Target' is not a field name");
  // The bounds themselves, and either case of the named values, are accepted.
  EXPECT_EQ(error_of(base + "    queue_max_records: 10000000\n    queue_max_size: 1KiB\n"
                            "    linger: 15m\n    delivery_timeout: 2147483647ms\n"
                            "    compression: LZ4\n"),
            "");
  EXPECT_EQ(error_of(base + "    queue_max_size: 2147483647KiB\n    compression: gzip\n"
                            "    security_protocol: plaintext\n"),
            "");
}

TEST(kafka_sink_config, TlsAndSaslCombinationsAreChecked) {
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    ca_file: /etc/hostname\n")
                .find("option 'ca_file' needs security_protocol SSL or SASL_SSL"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    security_protocol: SSL\n"
                     "    cert_file: /etc/hostname\n")
                .find("'cert_file' and 'key_file' go together"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    security_protocol: SSL\n"
                     "    ca_file: /nonexistent/ca.pem\n")
                .find("option 'ca_file': cannot read '/nonexistent/ca.pem': No such file"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    security_protocol: SASL_SSL\n")
                .find("option 'sasl_username' is required"),
            std::string::npos);
  EXPECT_NE(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    sasl_username: u\n")
                .find("needs security_protocol SASL_SSL or SASL_PLAINTEXT"),
            std::string::npos);
  // An empty value (e.g. ${KAFKA_CAFILE:-}) means "not set".
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topic: t\n    ca_file: \"\"\n"), "");
}

TEST(kafka_sink_config, PassThroughIsValidatedByLibrdkafka) {
  const std::string unknown =
      error_of("    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { no.such.property: 1 }\n");
  EXPECT_NE(unknown.find("option 'librdkafka': unknown librdkafka property 'no.such.property'"),
            std::string::npos)
      << unknown;
  EXPECT_NE(unknown.find("pipeline.yaml:"), std::string::npos) << unknown;
  const std::string invalid = error_of(
      "    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { socket.timeout.ms: soon }\n");
  EXPECT_NE(invalid.find("invalid value for librdkafka property 'socket.timeout.ms'"),
            std::string::npos)
      << invalid;
  const std::string managed = error_of(
      "    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { enable.idempotence: false }\n");
  EXPECT_NE(managed.find("property 'enable.idempotence' is managed by the plugin"),
            std::string::npos)
      << managed;
  // librdkafka also takes topic properties with a "topic." prefix: managed under both names.
  const std::string prefixed =
      error_of("    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { topic.acks: \"0\" }\n");
  EXPECT_NE(prefixed.find("property 'topic.acks' is managed by the plugin"), std::string::npos)
      << prefixed;
  const std::string instead =
      error_of("    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { sasl.password: x }\n");
  EXPECT_NE(instead.find("use option 'sasl_password'"), std::string::npos) << instead;
}

// The partitioner stays the user's to choose (kafka_sink then produces batches ungrouped).
TEST(kafka_sink_config, PartitionerMayBeChosenInThePassThroughMap) {
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topic: t\n"
                     "    librdkafka: { partitioner: consistent_random }\n"),
            "");
  EXPECT_EQ(error_of("    brokers: 127.0.0.1:1\n    topic: t\n"
                     "    librdkafka: { topic.partitioner: consistent_random }\n"),
            "");
  const std::string bad = error_of(
      "    brokers: 127.0.0.1:1\n    topic: t\n    librdkafka: { partitioner: by_magic }\n");
  EXPECT_NE(bad.find("'partitioner'"), std::string::npos) << bad;
}

TEST(kafka_sink_config, SecretsAreNotPrinted) {
  webmon::testing::TempDir dir;
  const std::string file = dir.write(
      "p.yaml", pipeline("    brokers: 127.0.0.1:1\n    topic: t\n    security_protocol: SASL_SSL\n"
                         "    sasl_username: u\n    sasl_password: Sup3rSecretPw\n"
                         "    librdkafka: { ssl.keystore.password: KeyStoreSecret9 }\n"));
  for (const char* level : {"debug", "trace"}) {
    const auto r = webmon::testing::run_process(
        {webmon::testing::agent_binary(), "--pipeline", file, "--validate", "--log-level", level});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ((r.out + r.err).find("Sup3rSecretPw"), std::string::npos);
    EXPECT_EQ((r.out + r.err).find("KeyStoreSecret9"), std::string::npos);
  }
  const auto list =
      webmon::testing::run_process({webmon::testing::agent_binary(), "--list-plugins"});
  EXPECT_NE(list.out.find("kafka_sink"), std::string::npos);
  EXPECT_NE(list.out.find("sasl_password"), std::string::npos);
}

}  // namespace
