#include "log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "webmon/common/wire.hpp"

namespace webmon::agent {
namespace {

std::atomic<LogFormat> g_format{LogFormat::text};
std::atomic<int> g_level{static_cast<int>(sdk::LogLevel::info)};

spdlog::level::level_enum to_spdlog(sdk::LogLevel l) {
  switch (l) {
    case sdk::LogLevel::trace:
      return spdlog::level::trace;
    case sdk::LogLevel::debug:
      return spdlog::level::debug;
    case sdk::LogLevel::info:
      return spdlog::level::info;
    case sdk::LogLevel::warn:
      return spdlog::level::warn;
    case sdk::LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

bool parse_log_level(std::string_view text, sdk::LogLevel& out) {
  if (text == "trace") {
    out = sdk::LogLevel::trace;
  } else if (text == "debug") {
    out = sdk::LogLevel::debug;
  } else if (text == "info") {
    out = sdk::LogLevel::info;
  } else if (text == "warn" || text == "warning") {
    out = sdk::LogLevel::warn;
  } else if (text == "error") {
    out = sdk::LogLevel::error;
  } else {
    return false;
  }
  return true;
}

void init_logging(sdk::LogLevel level, LogFormat format) {
  auto logger = spdlog::stderr_logger_mt("webmon");
  logger->set_level(to_spdlog(level));
  if (format == LogFormat::json) {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  g_format = format;
  g_level = static_cast<int>(level);
}

bool log_enabled(sdk::LogLevel level) noexcept { return static_cast<int>(level) >= g_level; }

void log(sdk::LogLevel level, std::string_view component, std::string_view message) noexcept {
  if (!log_enabled(level)) {
    return;
  }
  try {
    std::string line;
    if (g_format == LogFormat::json) {
      line += R"("component":)";
      common::append_json_string(component.empty() ? "agent" : component, line);
      line += R"(,"message":)";
      common::append_json_string(message, line);
    } else {
      if (!component.empty()) {
        line += '[';
        line += component;
        line += "] ";
      }
      line += message;
    }
    spdlog::default_logger_raw()->log(to_spdlog(level), "{}", line);
  } catch (...) {  // logging must never take the agent down
  }
}

void flush_logs() noexcept {
  try {
    spdlog::default_logger_raw()->flush();
  } catch (...) {
  }
}

}  // namespace webmon::agent
