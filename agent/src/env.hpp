// Environment handling for pipeline files: dotenv files; ${VAR} substitution lives in
// common/ (shared with plugins).
#pragma once

#include <string>

#include "webmon/common/env.hpp"

namespace webmon::agent {

using common::EnvLookup;
using common::process_env;
using common::substitute;

/// Loads a dotenv file into the process environment: KEY=VALUE lines, optional "export "
/// prefix, '#' comments, single quotes (literal) or double quotes (\n, \", \\ escapes).
/// Variables already set in the environment win (as with python-dotenv and docker compose).
/// Throws std::runtime_error "FILE:LINE: message" on an unreadable file or a malformed line.
void load_env_file(const std::string& path);

}  // namespace webmon::agent
