// The pipeline file: YAML → PipelineSpec, with ${VAR} substitution and topology checks.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "env.hpp"
#include "webmon/sdk/config.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::agent {

struct ComponentSpec {
  std::string id;
  sdk::PluginKind section = sdk::PluginKind::source;  // the section it was declared in
  std::string plugin;
  std::vector<std::string> inputs;
  std::vector<sdk::SourceLocation> input_where;
  sdk::ConfigNode options;  // the component's map without `plugin` and `inputs`
  sdk::SourceLocation where;
  sdk::SourceLocation plugin_where;

  /// "source 'checks'".
  [[nodiscard]] std::string describe() const;
};

struct AgentSpec {
  std::string name;
  std::vector<std::string> plugin_dirs;
  std::string metrics_listen;  // "" = no endpoint
  std::chrono::milliseconds shutdown_timeout{30'000};
  std::size_t buffer_records = 4096;
};

struct PipelineSpec {
  std::string file;
  AgentSpec agent;
  std::vector<ComponentSpec> components;  // sources, then transforms, then sinks, as written

  [[nodiscard]] const ComponentSpec* find(std::string_view id) const noexcept;
};

/// The options of the `agent:` section.
std::span<const sdk::OptionSpec> agent_options() noexcept;

/// Reads and parses the file, substituting ${VAR} in every scalar, and checks the
/// structure, the agent section and the topology. Throws sdk::ConfigError "file:line:col: …".
PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env);

/// The same from text (tests); `name` is used in messages.
PipelineSpec parse_pipeline(const std::string& text, const std::string& name,
                            const EnvLookup& env);

/// Component ids in an order where every component comes after its inputs.
std::vector<const ComponentSpec*> topological_order(const PipelineSpec& spec);

}  // namespace webmon::agent
