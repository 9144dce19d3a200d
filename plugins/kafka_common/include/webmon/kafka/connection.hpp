// Connection options shared by kafka_sink and kafka_source: bootstrap brokers, PLAINTEXT / SSL
// (Aiven-style ca.pem + service.cert + service.key) / SASL, and a `librdkafka:` map passed
// through to the client. Parsing validates everything that can be checked without the network
// (files readable, combinations consistent, every pass-through key accepted by librdkafka's
// rd_kafka_conf_set) and throws sdk::ConfigError naming the option's position. Secret values
// (passwords, pass-through keys containing "password" or "secret") never appear in messages.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/plugin.hpp"

/// The connection options, spliced into each plugin's single options table.
#define WEBMON_KAFKA_CONNECTION_OPTIONS                                                          \
  ::webmon::sdk::OptionSpec{"brokers", ::webmon::sdk::OptionType::string_list, nullptr, true,   \
                            "bootstrap brokers, host:port (a list or a comma-separated string)"}, \
      ::webmon::sdk::OptionSpec{"security_protocol", ::webmon::sdk::OptionType::string,          \
                                "PLAINTEXT", false,                                              \
                                "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},                   \
      ::webmon::sdk::OptionSpec{"ca_file", ::webmon::sdk::OptionType::string, nullptr, false,    \
                                "PEM file of the CA that signed the brokers' certificates "     \
                                "(Aiven: ca.pem); empty = system CAs"},                          \
      ::webmon::sdk::OptionSpec{"cert_file", ::webmon::sdk::OptionType::string, nullptr, false,  \
                                "PEM client certificate for mutual TLS (Aiven: service.cert)"},  \
      ::webmon::sdk::OptionSpec{"key_file", ::webmon::sdk::OptionType::string, nullptr, false,   \
                                "PEM private key of cert_file (Aiven: service.key)"},            \
      ::webmon::sdk::OptionSpec{"key_password", ::webmon::sdk::OptionType::string, nullptr,      \
                                false, "password of an encrypted key_file",                     \
                                nullptr, 0, true},                                               \
      ::webmon::sdk::OptionSpec{"sasl_mechanism", ::webmon::sdk::OptionType::string,             \
                                "SCRAM-SHA-256", false,                                          \
                                "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols)"},     \
      ::webmon::sdk::OptionSpec{"sasl_username", ::webmon::sdk::OptionType::string, nullptr,     \
                                false, "SASL user name (SASL_* protocols)"},                     \
      ::webmon::sdk::OptionSpec{"sasl_password", ::webmon::sdk::OptionType::string, nullptr,     \
                                false, "SASL password (SASL_* protocols)", nullptr, 0, true},    \
      ::webmon::sdk::OptionSpec{"connect_timeout", ::webmon::sdk::OptionType::duration, "10s",   \
                                false,                                                           \
                                "at start, how long to wait for a first broker connection: a "   \
                                "TLS or authentication failure in that time fails the start; "   \
                                "unreachable brokers only log a warning (the client retries)"},  \
      ::webmon::sdk::OptionSpec {                                                                \
    "librdkafka", ::webmon::sdk::OptionType::string_map, nullptr, false,                            \
        "other librdkafka client properties, passed through (e.g. client.id, "                  \
        "ssl.endpoint.identification.algorithm); values are treated as secrets",                 \
        nullptr, 0, true                                                                         \
  }

namespace webmon::plugins::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

/// True for librdkafka property names whose values are secrets.
bool is_secret_key(std::string_view key) noexcept;

/// The parsed connection options.
struct Connection {
  std::string brokers;            ///< comma-separated
  std::string security_protocol;  ///< upper case
  std::string ca_file, cert_file, key_file, key_password;
  std::string sasl_mechanism, sasl_username, sasl_password;
  std::chrono::milliseconds connect_timeout{10'000};
  std::vector<std::pair<std::string, std::string>> librdkafka;  ///< in written order

  /// Parses and checks the connection options of `config`. `managed` lists librdkafka
  /// properties the plugin sets itself (with the option to use instead, or "" when fixed);
  /// setting one of them in the `librdkafka:` map is a configuration error.
  static Connection parse(const sdk::ConfigNode& config,
                          const std::vector<std::pair<std::string, std::string>>& managed);

  /// A librdkafka configuration with the connection settings and the pass-through map applied
  /// (the plugin adds its own properties first: pass-through values are applied last so they
  /// win). Throws sdk::ConfigError (positioned at `config`) when librdkafka refuses a value.
  [[nodiscard]] ConfPtr make_conf(const sdk::ConfigNode& config,
                                  const std::vector<std::pair<std::string, std::string>>&
                                      plugin_properties) const;

  /// "SSL to 127.0.0.1:19093" for messages.
  [[nodiscard]] std::string describe() const;
};

/// Sets one property; throws std::runtime_error with librdkafka's reason (the value is left out
/// of the message for secret keys).
void conf_set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);

}  // namespace webmon::plugins::kafka
