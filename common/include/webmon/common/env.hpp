// ${VAR} substitution as the pipeline file defines it, shared by the agent and plugins that
// read configuration of their own (http_check's targets_file).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace webmon::common {

/// Looks a variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

/// The process environment.
std::optional<std::string> process_env(std::string_view name);

/// Whether `name` is a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*).
bool valid_env_name(std::string_view name);

/// Replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in `text`; "$$" is a literal "$".
/// Defaults may contain ${...} themselves. A "$" not followed by "{" or "$" is kept as is.
/// Throws std::runtime_error with a message (without position; the caller adds it) when a
/// variable is unset and has no default, when ${VAR:?message} fails, or when the syntax is
/// broken.
std::string substitute(std::string_view text, const EnvLookup& lookup);

}  // namespace webmon::common
