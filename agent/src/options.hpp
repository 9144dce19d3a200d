// Validation of a component's options against its plugin's options table.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::agent {

/// Checks `config` (a map) against `specs`: unknown keys (with a suggestion), missing required
/// keys, wrong types, recursively for object / object_list options; fills in defaults.
/// `who` prefixes messages ("sink 'out' (file)"). Throws sdk::ConfigError "file:line:col: …".
void validate_options(sdk::ConfigNode& config, std::span<const sdk::OptionSpec> specs,
                      const std::string& who);

}  // namespace webmon::agent
