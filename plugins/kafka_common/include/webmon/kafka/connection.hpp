// Connection options shared by kafka_sink and kafka_source: bootstrap brokers, PLAINTEXT / SSL
// (Aiven-style ca.pem + service.cert + service.key) / SASL, and a `librdkafka:` map passed
// through to the client. Declared once in WEBMON_KAFKA_CONNECTION_OPTIONS (types, defaults,
// choices; the host checks them and load_options() fills Connection); Connection::check() adds
// what the table cannot express (files readable, combinations consistent, pass-through keys the
// plugin manages) and every pass-through key is checked by librdkafka's rd_kafka_conf_set.
// Errors are sdk::ConfigError naming the option's position. Secret values (passwords,
// pass-through keys containing "password" or "secret") never appear in messages.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"

/// The connection options, spliced into each plugin's single options table. OPTIONS is the
/// plugin's options struct; its member `connection` (a kafka::Connection) receives them.
#define WEBMON_KAFKA_CONNECTION_OPTIONS(OPTIONS)                                                   \
  {.name = "brokers",                                                                              \
   .type = ::webmon::sdk::OptionType::string_list,                                                 \
   .default_value = nullptr,                                                                       \
   .required = true,                                                                               \
   .description = "bootstrap brokers, host:port (a list or a comma-separated string)",             \
   .assign = WEBMON_KAFKA_BIND_(OPTIONS, broker_list)},                                            \
      {.name = "security_protocol",                                                                \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = "PLAINTEXT",                                                               \
       .required = false,                                                                          \
       .description = "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (upper or lower case)",          \
       .choices = "PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL|plaintext|ssl|sasl_plaintext|sasl_ssl",   \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, security_protocol)},                                  \
      {.name = "ca_file",                                                                          \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description =                                                                              \
           "PEM file of the CA that signed the brokers' certificates (Aiven: "                     \
           "ca.pem); empty = system CAs",                                                          \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, ca_file)},                                            \
      {.name = "cert_file",                                                                        \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description = "PEM client certificate for mutual TLS (Aiven: service.cert)",               \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, cert_file)},                                          \
      {.name = "key_file",                                                                         \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description = "PEM private key of cert_file (Aiven: service.key)",                         \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, key_file)},                                           \
      {.name = "key_password",                                                                     \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description = "password of an encrypted key_file",                                         \
       .secret = true,                                                                             \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, key_password)},                                       \
      {.name = "sasl_mechanism",                                                                   \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = "SCRAM-SHA-256",                                                           \
       .required = false,                                                                          \
       .description =                                                                              \
           "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols; upper or "                    \
           "lower case)",                                                                          \
       .choices = "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|plain|scram-sha-256|scram-sha-512",           \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, sasl_mechanism)},                                     \
      {.name = "sasl_username",                                                                    \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description = "SASL user name (SASL_* protocols)",                                         \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, sasl_username)},                                      \
      {.name = "sasl_password",                                                                    \
       .type = ::webmon::sdk::OptionType::string,                                                  \
       .default_value = nullptr,                                                                   \
       .required = false,                                                                          \
       .description = "SASL password (SASL_* protocols)",                                          \
       .secret = true,                                                                             \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, sasl_password)},                                      \
      {.name = "connect_timeout",                                                                  \
       .type = ::webmon::sdk::OptionType::duration,                                                \
       .default_value = "10s",                                                                     \
       .required = false,                                                                          \
       .description =                                                                              \
           "at start, how long to wait for a first broker connection: a TLS or "                   \
           "authentication failure in that time fails the start; unreachable "                     \
           "brokers only log a warning (the client retries)",                                      \
       .assign = WEBMON_KAFKA_BIND_(OPTIONS, connect_timeout)},                                    \
  {                                                                                                \
    .name = "librdkafka", .type = ::webmon::sdk::OptionType::string_map, .default_value = nullptr, \
    .required = false,                                                                             \
    .description =                                                                                 \
        "other librdkafka client properties, passed through (e.g. client.id, "                     \
        "ssl.endpoint.identification.algorithm); values are treated as secrets",                   \
    .secret = true, .assign = &::webmon::plugins::kafka::assign_pass_through<OPTIONS>              \
  }

#define WEBMON_KAFKA_BIND_(OPTIONS, MEMBER)          \
  ::webmon::plugins::kafka::bind_connection<OPTIONS, \
                                            &::webmon::plugins::kafka::Connection::MEMBER>()

namespace webmon::plugins::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

/// True for librdkafka property names whose values are secrets.
bool is_secret_key(std::string_view key) noexcept;

/// The connection options: as written (filled by sdk::load_options through
/// WEBMON_KAFKA_CONNECTION_OPTIONS), then checked and completed by check().
struct Connection {
  std::vector<std::string> broker_list;                    ///< as written
  std::string security_protocol;                           ///< upper case after check()
  std::string ca_file, cert_file, key_file, key_password;  ///< "" = not set
  std::string sasl_mechanism;                              ///< upper case after check()
  std::string sasl_username, sasl_password;
  std::chrono::milliseconds connect_timeout{};
  std::vector<std::pair<std::string, std::string>> librdkafka;  ///< in written order
  std::string brokers;                                          ///< comma-separated, set by check()

  /// The checks the options table cannot express: brokers are host:port, TLS and SASL options
  /// fit the protocol, files are readable, and the `librdkafka:` map sets none of the
  /// properties the plugin manages (`managed`: the property and the option to use instead, or
  /// "" when fixed). Also joins the brokers and upper-cases the protocol and mechanism.
  void check(const sdk::ConfigNode& config,
             const std::vector<std::pair<std::string, std::string>>& managed);

  /// A librdkafka configuration with the connection settings and the pass-through map applied
  /// (the plugin adds its own properties first: pass-through values are applied last so they
  /// win). Throws sdk::ConfigError (positioned at `config`) when librdkafka refuses a value.
  [[nodiscard]] ConfPtr make_conf(
      const sdk::ConfigNode& config,
      const std::vector<std::pair<std::string, std::string>>& plugin_properties) const;

  /// "SSL to 127.0.0.1:19093" for messages.
  [[nodiscard]] std::string describe() const;
};

/// Binds a connection option to `Options::connection.*Member`.
template <typename Options, auto Member>
void assign_connection(void* target, const sdk::ConfigNode& value) {
  sdk::from_config(value, static_cast<Options*>(target)->connection.*Member);
}
template <typename Options, auto Member>
constexpr sdk::OptionAssign bind_connection() noexcept {
  return &assign_connection<Options, Member>;
}

/// Reads the `librdkafka:` map in written order.
void read_pass_through(const sdk::ConfigNode& value,
                       std::vector<std::pair<std::string, std::string>>& out);
template <typename Options>
void assign_pass_through(void* target, const sdk::ConfigNode& value) {
  read_pass_through(value, static_cast<Options*>(target)->connection.librdkafka);
}

/// Sets one property; throws std::runtime_error with librdkafka's reason (the value is left out
/// of the message for secret keys).
void conf_set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);

}  // namespace webmon::plugins::kafka
