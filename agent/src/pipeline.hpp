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

/// How the host delivers to one sink: its buffer, batching and retry (the sink's `buffer:`,
/// `batch:` and `retry:` keys).
struct DeliverySpec {
  enum class BufferType : std::uint8_t { memory, disk };
  enum class WhenFull : std::uint8_t { block, drop_oldest, drop_newest };
  BufferType type = BufferType::memory;
  std::size_t max_records = 10'000;     // memory buffer bound
  std::uint64_t max_size = 2ULL << 30;  // disk buffer bound, bytes
  std::string path;                     // disk buffer directory
  std::chrono::milliseconds sync_interval{1000};
  WhenFull when_full = WhenFull::block;
  std::size_t batch_max_records = 500;
  std::chrono::milliseconds linger{10};
  std::size_t max_in_flight = 8;
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{30'000};
  std::int64_t max_retries = -1;  // -1: until delivered (or the agent stops)
};

const char* to_string(DeliverySpec::WhenFull w) noexcept;

struct ComponentSpec {
  std::string id;
  sdk::PluginKind section = sdk::PluginKind::source;  // the section it was declared in
  std::string plugin;
  std::vector<std::string> inputs;
  std::vector<sdk::SourceLocation> input_where;
  sdk::ConfigNode options;  // the component's map without `plugin` and `inputs`
  sdk::SourceLocation where;
  sdk::SourceLocation plugin_where;
  DeliverySpec delivery;  // sinks only

  /// "source 'checks'".
  [[nodiscard]] std::string describe() const;
};

struct AgentSpec {
  std::string name;
  std::vector<std::string> plugin_dirs;
  std::string metrics_listen;  // "" = no endpoint
  std::chrono::milliseconds shutdown_timeout{30'000};
  std::size_t buffer_records = 10'000;  // default memory buffer bound per sink
  std::string state_dir;                // where disk buffers and plugin state live
};

struct PipelineSpec {
  std::string file;
  AgentSpec agent;
  std::vector<ComponentSpec> components;  // sources, then transforms, then sinks, as written

  [[nodiscard]] const ComponentSpec* find(std::string_view id) const noexcept;
};

/// Reads and parses the file, substituting ${VAR} in every scalar, and checks the
/// structure, the agent section and the topology. Throws sdk::ConfigError "file:line:col: …".
PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env);

/// The same from text (tests); `name` is used in messages.
PipelineSpec parse_pipeline(const std::string& text, const std::string& name, const EnvLookup& env);

/// Component ids in an order where every component comes after its inputs.
std::vector<const ComponentSpec*> topological_order(const PipelineSpec& spec);

}  // namespace webmon::agent
