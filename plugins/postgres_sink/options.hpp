// postgres_sink's options, declared once: the host validates with this table (types, bounds,
// choices, unknown keys) and fills in its defaults, load_options() fills Options with it,
// --list-plugins prints it, and the docs test compares README.md and sample.yaml with it.
// parse_options() adds what the table cannot express (conninfo, identifiers, whole hours,
// retention against partition_interval) and builds the libpq parameters.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "pg.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::postgres_sink {

using sdk::OptionSpec;
using sdk::OptionType;

/// The options: as written (bound by kOptions), then what parse_options() derives from them.
struct Options {
  std::optional<std::string> conninfo;
  std::optional<std::string> host;
  std::optional<std::int64_t> port;
  std::optional<std::string> database;
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::optional<std::string> sslmode;
  std::optional<std::string> sslrootcert;
  std::optional<std::string> sslcert;
  std::optional<std::string> sslkey;
  std::chrono::milliseconds connect_timeout{};
  std::chrono::milliseconds start_timeout{};
  std::string schema;
  std::chrono::milliseconds partition_interval{};
  int partitions_ahead = 0;
  std::chrono::milliseconds retention{};
  std::chrono::milliseconds max_future{};

  ConnParams conn;     ///< libpq keyword/value pairs
  std::string target;  ///< "host:port/db as user", for messages (no secrets)
};

inline constexpr OptionSpec kOptions[] = {
    {.name = "conninfo",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "libpq connection string or postgresql:// URI; the options below override "
                    "its values",
     .secret = true,
     .assign = sdk::bind<&Options::conninfo>()},
    {.name = "host",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "server host name or address (libpq default)",
     .assign = sdk::bind<&Options::host>()},
    {.name = "port",
     .type = OptionType::integer,
     .default_value = nullptr,
     .required = false,
     .description = "server port (libpq default 5432)",
     .min = "1",
     .max = "65535",
     .assign = sdk::bind<&Options::port>()},
    {.name = "database",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "database name (libpq default: the user)",
     .assign = sdk::bind<&Options::database>()},
    {.name = "user",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "user name",
     .assign = sdk::bind<&Options::user>()},
    {.name = "password",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "password (never logged)",
     .secret = true,
     .assign = sdk::bind<&Options::password>()},
    {.name = "sslmode",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "disable, allow, prefer, require, verify-ca or verify-full; verify-full "
                    "unless conninfo sets one",
     .choices = "disable|allow|prefer|require|verify-ca|verify-full",
     .assign = sdk::bind<&Options::sslmode>()},
    {.name = "sslrootcert",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "CA certificate file the server certificate is verified against",
     .assign = sdk::bind<&Options::sslrootcert>()},
    {.name = "sslcert",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "client certificate file",
     .assign = sdk::bind<&Options::sslcert>()},
    {.name = "sslkey",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "client private key file",
     .assign = sdk::bind<&Options::sslkey>()},
    {.name = "connect_timeout",
     .type = OptionType::duration,
     .default_value = "10s",
     .required = false,
     .description = "timeout of one connection attempt",
     .min = "1s",
     .assign = sdk::bind<&Options::connect_timeout>()},
    {.name = "start_timeout",
     .type = OptionType::duration,
     .default_value = "30s",
     .required = false,
     .description = "how long start-up waits for an unreachable or starting server before "
                    "failing",
     .assign = sdk::bind<&Options::start_timeout>()},
    {.name = "schema",
     .type = OptionType::string,
     .default_value = "webmon",
     .required = false,
     .description = "schema holding the tables and views",
     .assign = sdk::bind<&Options::schema>()},
    {.name = "partition_interval",
     .type = OptionType::duration,
     .default_value = "1d",
     .required = false,
     .description = "time span of one partition of each kind's table (whole hours)",
     .min = "1h",
     .max = "366d",
     .assign = sdk::bind<&Options::partition_interval>()},
    {.name = "partitions_ahead",
     .type = OptionType::integer,
     .default_value = "3",
     .required = false,
     .description = "partitions created ahead of the current one",
     .min = "0",
     .max = "1000",
     .assign = sdk::bind<&Options::partitions_ahead>()},
    {.name = "retention",
     .type = OptionType::duration,
     .default_value = "0",
     .required = false,
     .description = "drop partitions (and rejected rows) older than this; 0 keeps everything",
     .assign = sdk::bind<&Options::retention>()},
    {.name = "max_future",
     .type = OptionType::duration,
     .default_value = "1h",
     .required = false,
     .description = "records whose time is further in the future are rejected",
     .assign = sdk::bind<&Options::max_future>()},
};

/// Loads and checks the options (no network). Throws sdk::ConfigError naming the position.
Options parse_options(const sdk::ConfigNode& config, const std::string& application_name);

}  // namespace webmon::plugins::postgres_sink
