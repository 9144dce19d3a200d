// Checks of the shared Kafka connection options the table cannot express, and the librdkafka
// configuration built from them (see connection.hpp).
#include "webmon/kafka/connection.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace webmon::plugins::kafka {
namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

/// The node of an option the user wrote (for messages), or the component's map.
const sdk::ConfigNode& at(const sdk::ConfigNode& config, std::string_view key) {
  const sdk::ConfigNode* n = config.find(key);
  return n != nullptr ? *n : config;
}

void check_readable(const sdk::ConfigNode& config, const char* option, const std::string& path) {
  if (path.empty()) {
    return;
  }
  if (::access(path.c_str(), R_OK) != 0) {
    const int e = errno;
    at(config, option)
        .fail("option '" + std::string(option) + "': cannot read '" + path +
              "': " + std::strerror(e));
  }
}

}  // namespace

bool is_secret_key(std::string_view key) noexcept {
  const std::string k = lower(std::string(key));
  return k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
         k.find("sasl.oauthbearer.config") != std::string::npos ||
         k.find("ssl.key.pem") != std::string::npos;
}

void conf_set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char errstr[512];
  const rd_kafka_conf_res_t r =
      rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  if (r == RD_KAFKA_CONF_OK) {
    return;
  }
  if (r == RD_KAFKA_CONF_UNKNOWN) {
    throw std::runtime_error("unknown librdkafka property '" + key + "'");
  }
  if (is_secret_key(key)) {
    throw std::runtime_error("invalid value for librdkafka property '" + key + "'");
  }
  throw std::runtime_error("invalid value for librdkafka property '" + key + "': " + errstr);
}

void read_pass_through(const sdk::ConfigNode& value,
                       std::vector<std::pair<std::string, std::string>>& out) {
  if (!value.is_map()) {
    value.fail("option 'librdkafka': expected a map of librdkafka property names to values");
  }
  out.clear();
  for (const auto& [key, v] : value.entries()) {
    out.emplace_back(key, v.as_string());
  }
}

void Connection::check(const sdk::ConfigNode& config,
                       const std::vector<std::pair<std::string, std::string>>& managed) {
  const sdk::ConfigNode& brokers_node = at(config, "brokers");
  brokers.clear();
  for (const auto& item : broker_list) {
    std::string_view rest = item;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string one = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (one.empty()) {
        continue;
      }
      if (one.find(':') == std::string::npos) {
        brokers_node.fail("option 'brokers': '" + one + "' has no port (expected host:port)");
      }
      if (!brokers.empty()) {
        brokers += ',';
      }
      brokers += one;
    }
  }
  if (brokers.empty()) {
    brokers_node.fail("option 'brokers' must name at least one host:port");
  }

  // The table's choices take either case.
  security_protocol = upper(security_protocol);
  sasl_mechanism = upper(sasl_mechanism);
  const bool tls = security_protocol == "SSL" || security_protocol == "SASL_SSL";
  const bool sasl = security_protocol.rfind("SASL_", 0) == 0;
  const std::pair<const char*, const std::string*> tls_options[] = {
      {"ca_file", &ca_file},
      {"cert_file", &cert_file},
      {"key_file", &key_file},
      {"key_password", &key_password}};
  for (const auto& [option, value] : tls_options) {
    if (!tls && !value->empty()) {
      at(config, option)
          .fail("option '" + std::string(option) +
                "' needs security_protocol SSL or SASL_SSL (it is " + security_protocol + ")");
    }
  }
  if (cert_file.empty() != key_file.empty()) {
    at(config, cert_file.empty() ? "key_file" : "cert_file")
        .fail("options 'cert_file' and 'key_file' go together (client certificate and its key)");
  }
  check_readable(config, "ca_file", ca_file);
  check_readable(config, "cert_file", cert_file);
  check_readable(config, "key_file", key_file);

  if (sasl) {
    if (sasl_username.empty()) {
      config.fail("option 'sasl_username' is required with security_protocol " + security_protocol);
    }
    if (sasl_password.empty()) {
      config.fail("option 'sasl_password' is required with security_protocol " + security_protocol);
    }
  } else {
    const std::pair<const char*, const std::string*> sasl_options[] = {
        {"sasl_username", &sasl_username}, {"sasl_password", &sasl_password}};
    for (const auto& [option, value] : sasl_options) {
      if (!value->empty()) {
        at(config, option)
            .fail("option '" + std::string(option) +
                  "' needs security_protocol SASL_SSL or SASL_PLAINTEXT (it is " +
                  security_protocol + ")");
      }
    }
  }

  const sdk::ConfigNode& map = at(config, "librdkafka");
  for (const auto& [key, value] : librdkafka) {
    const sdk::ConfigNode& node = map.find(key) != nullptr ? *map.find(key) : map;
    // librdkafka takes a topic property on the global configuration with or without a
    // "topic." prefix (rd_kafka_conf_set strips it), so both spellings are managed.
    std::string_view bare = key;
    if (bare.starts_with("topic.")) {
      bare.remove_prefix(6);
    }
    for (const auto& [name, instead] : managed) {
      if (key == name || bare == name) {
        node.fail("option 'librdkafka': property '" + key + "' is managed by the plugin" +
                  (instead.empty() ? std::string(" and cannot be changed")
                                   : "; use option '" + instead + "'"));
      }
    }
    if (key.find("_cb") != std::string::npos || key == "opaque" || key == "default_topic_conf") {
      node.fail("option 'librdkafka': property '" + key + "' cannot be set from a pipeline");
    }
  }
}

ConfPtr Connection::make_conf(
    const sdk::ConfigNode& config,
    const std::vector<std::pair<std::string, std::string>>& plugin_properties) const {
  ConfPtr conf(rd_kafka_conf_new());
  auto set = [&](const std::string& key, const std::string& value, const char* option) {
    try {
      conf_set(conf.get(), key, value);
    } catch (const std::exception& e) {
      const sdk::ConfigNode* at = option != nullptr ? config.find(option) : nullptr;
      (at != nullptr ? *at : config)
          .fail(option != nullptr ? "option '" + std::string(option) + "': " + e.what()
                                  : std::string(e.what()));
    }
  };
  set("bootstrap.servers", brokers, "brokers");
  set("security.protocol", lower(security_protocol), "security_protocol");
  if (!ca_file.empty()) {
    set("ssl.ca.location", ca_file, "ca_file");
  }
  if (!cert_file.empty()) {
    set("ssl.certificate.location", cert_file, "cert_file");
    set("ssl.key.location", key_file, "key_file");
  }
  if (!key_password.empty()) {
    set("ssl.key.password", key_password, "key_password");
  }
  if (security_protocol.rfind("SASL_", 0) == 0) {
    set("sasl.mechanisms", sasl_mechanism, "sasl_mechanism");
    set("sasl.username", sasl_username, "sasl_username");
    set("sasl.password", sasl_password, "sasl_password");
  }
  for (const auto& [k, v] : plugin_properties) {
    set(k, v, nullptr);
  }
  const sdk::ConfigNode* map = config.find("librdkafka");
  for (const auto& [k, v] : librdkafka) {
    try {
      conf_set(conf.get(), k, v);
    } catch (const std::exception& e) {
      const sdk::ConfigNode* at = map != nullptr ? map->find(k) : nullptr;
      (at != nullptr ? *at : config).fail("option 'librdkafka': " + std::string(e.what()));
    }
  }
  return conf;
}

std::string Connection::describe() const { return security_protocol + " to " + brokers; }

}  // namespace webmon::plugins::kafka
