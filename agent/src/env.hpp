// Environment handling for pipeline files: ${VAR} substitution and dotenv files.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace webmon::agent {

/// Looks a variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

/// The process environment.
std::optional<std::string> process_env(std::string_view name);

/// Replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in `text`; "$$" is a literal "$".
/// A "$" not followed by "{" or "$" is kept as is. Throws std::runtime_error with a message
/// (without position; the caller adds it) when a variable is unset and has no default,
/// when ${VAR:?message} fails, or when the syntax is broken.
std::string substitute(std::string_view text, const EnvLookup& lookup);

/// Loads a dotenv file into the process environment: KEY=VALUE lines, optional "export "
/// prefix, '#' comments, single quotes (literal) or double quotes (\n, \", \\ escapes).
/// Variables already set in the environment win (as with python-dotenv and docker compose).
/// Throws std::runtime_error "FILE:LINE: message" on an unreadable file or a malformed line.
void load_env_file(const std::string& path);

}  // namespace webmon::agent
