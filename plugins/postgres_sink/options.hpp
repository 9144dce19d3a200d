// postgres_sink's options table (used by the host for validation, defaults and
// --list-plugins; README.md and sample.yaml document the same options) and their parsed form.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "pg.hpp"
#include "webmon/sdk/config.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::postgres_sink {

using sdk::OptionSpec;
using sdk::OptionType;

inline constexpr OptionSpec kOptions[] = {
    {"conninfo", OptionType::string, nullptr, false,
     "libpq connection string or postgresql:// URI; the options below override its values",
     nullptr, 0, true},
    {"host", OptionType::string, nullptr, false, "server host name or address (libpq default)"},
    {"port", OptionType::integer, nullptr, false, "server port (libpq default 5432)"},
    {"database", OptionType::string, nullptr, false, "database name (libpq default: the user)"},
    {"user", OptionType::string, nullptr, false, "user name"},
    {"password", OptionType::string, nullptr, false, "password (never logged)", nullptr, 0, true},
    {"sslmode", OptionType::string, nullptr, false,
     "disable, allow, prefer, require, verify-ca or verify-full; verify-full unless conninfo "
     "sets one"},
    {"sslrootcert", OptionType::string, nullptr, false,
     "CA certificate file the server certificate is verified against"},
    {"sslcert", OptionType::string, nullptr, false, "client certificate file"},
    {"sslkey", OptionType::string, nullptr, false, "client private key file"},
    {"connect_timeout", OptionType::duration, "10s", false, "timeout of one connection attempt"},
    {"start_timeout", OptionType::duration, "30s", false,
     "how long start-up waits for an unreachable or starting server before failing"},
    {"schema", OptionType::string, "webmon", false, "schema holding the tables and views"},
    {"partition_interval", OptionType::duration, "1d", false,
     "time span of one partition of each kind's table (whole hours)"},
    {"partitions_ahead", OptionType::integer, "3", false,
     "partitions created ahead of the current one"},
    {"retention", OptionType::duration, "0", false,
     "drop partitions (and rejected rows) older than this; 0 keeps everything"},
    {"max_future", OptionType::duration, "1h", false,
     "records whose time is further in the future are rejected"},
};

/// The parsed, checked options.
struct Options {
  ConnParams conn;
  std::string target;  ///< "host:port/db as user", for messages (no secrets)
  std::string schema;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds start_timeout{30'000};
  std::chrono::milliseconds partition_interval{86'400'000};
  int partitions_ahead = 3;
  std::chrono::milliseconds retention{0};
  std::chrono::milliseconds max_future{3'600'000};
};

/// Reads and checks the options (no network). Throws sdk::ConfigError naming the position.
Options parse_options(const sdk::ConfigNode& config, const std::string& application_name);

}  // namespace webmon::plugins::postgres_sink
