// The agent's logger: spdlog to stderr, as text or as one JSON object per line.
#pragma once

#include <string>
#include <string_view>

#include "webmon/sdk/plugin.hpp"

namespace webmon::agent {

enum class LogFormat { text, json };

/// Configures the global logger. Call once before logging.
void init_logging(sdk::LogLevel level, LogFormat format);

/// Parses "trace", "debug", "info", "warn", "error".
bool parse_log_level(std::string_view text, sdk::LogLevel& out);

bool log_enabled(sdk::LogLevel level) noexcept;

/// Logs one line; `component` is "" for the agent itself.
void log(sdk::LogLevel level, std::string_view component, std::string_view message) noexcept;

/// Flushes buffered log output (before exit).
void flush_logs() noexcept;

}  // namespace webmon::agent
