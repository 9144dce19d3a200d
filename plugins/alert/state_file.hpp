// The alert transform's state file: every non-idle target's state as JSON, written atomically
// (temporary file, fsync, rename, fsync of the directory) so a restart resumes incidents.
#pragma once

#include <string>

#include "engine.hpp"

namespace webmon::plugins::alert {

/// Writes the engine's state to `path`. Throws std::runtime_error naming the path and the
/// reason.
void save_state(const Engine& engine, const std::string& path);

/// Loads `path` into `engine`; returns the number of targets restored (0 when the file does
/// not exist). Throws std::runtime_error naming the path when it is unreadable or malformed.
std::size_t load_state(Engine& engine, const std::string& path);

}  // namespace webmon::plugins::alert
