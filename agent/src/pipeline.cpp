#include "pipeline.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "options.hpp"

namespace webmon::agent {
namespace {

using sdk::ConfigError;
using sdk::ConfigNode;
using sdk::OptionSpec;
using sdk::OptionType;
using sdk::SourceLocation;

constexpr OptionSpec kMetricsOptions[] = {
    {"listen", OptionType::string, nullptr, true,
     "host:port of the Prometheus text endpoint, e.g. 127.0.0.1:9464"},
};

constexpr OptionSpec kAgentOptions[] = {
    {"name", OptionType::string, nullptr, false,
     "agent name recorded in every check (default: the host name)"},
    {"plugin_dirs", OptionType::string_list, nullptr, false,
     "directories searched for plugins before WEBMON_PLUGIN_PATH and the built-in directory"},
    {"metrics", OptionType::object, nullptr, false, "Prometheus endpoint", kMetricsOptions,
     std::size(kMetricsOptions)},
    {"shutdown_timeout", OptionType::duration, "30s", false,
     "how long a graceful stop may take before the agent gives up and exits 1"},
    {"buffer_records", OptionType::integer, "10000", false,
     "default bound of each sink's memory buffer, in records", nullptr, 0, false, "1", "100000000"},
    {"state_dir", OptionType::string, nullptr, false,
     "directory for disk buffers (<state_dir>/buffers/<sink id>) and plugin state (default: "
     "$STATE_DIRECTORY as systemd sets it, else /var/lib/webmon)"},
};

constexpr OptionSpec kBufferOptions[] = {
    {"type", OptionType::string, "memory", false,
     "memory (lost on a crash) or disk (a checksummed log that survives restarts)", nullptr, 0,
     false, nullptr, nullptr, "memory|disk"},
    {"max_records", OptionType::integer, nullptr, false,
     "memory buffer: records held before when_full applies (default agent.buffer_records)", nullptr,
     0, false, "1", "100000000"},
    {"max_size", OptionType::size, "2GiB", false,
     "disk buffer: bytes on disk before when_full applies", nullptr, 0, false, "1MiB", nullptr},
    {"path", OptionType::string, nullptr, false,
     "disk buffer directory (default <agent.state_dir>/buffers/<sink id>)"},
    {"sync_interval", OptionType::duration, "1s", false,
     "disk buffer: how often appended records are fsynced (a power cut loses at most this much)",
     nullptr, 0, false, "0", "1m"},
    {"when_full", OptionType::string, "block", false,
     "block (sources are told to wait), drop_oldest or drop_newest (counted and logged)", nullptr,
     0, false, nullptr, nullptr, "block|drop_oldest|drop_newest"},
};

constexpr OptionSpec kBatchOptions[] = {
    {"max_records", OptionType::integer, "500", false, "records per batch written to the sink",
     nullptr, 0, false, "1", "1000000"},
    {"linger", OptionType::duration, "10ms", false,
     "how long a batch may wait for more records before it is written", nullptr, 0, false, "0",
     "1m"},
    {"max_in_flight", OptionType::integer, "8", false,
     "batches written and not yet resolved by the sink at once", nullptr, 0, false, "1", "1024"},
};

constexpr OptionSpec kRetryOptions[] = {
    {"initial_backoff", OptionType::duration, "200ms", false,
     "wait before the first retry of a retryable batch (doubles each time)", nullptr, 0, false,
     "1ms", "1h"},
    {"max_backoff", OptionType::duration, "30s", false, "longest wait between retries", nullptr, 0,
     false, "1ms", "1h"},
    {"max_retries", OptionType::integer, nullptr, false,
     "retries before the batch goes back to its source as retryable (a Kafka consumer then "
     "reads it again); unset: retry until delivered",
     nullptr, 0, false, "0", "1000000000"},
};

constexpr OptionSpec kDeliveryOptions[] = {
    {"buffer", OptionType::object, nullptr, false, "the sink's buffer", kBufferOptions,
     std::size(kBufferOptions)},
    {"batch", OptionType::object, nullptr, false, "batching of the records written to the sink",
     kBatchOptions, std::size(kBatchOptions)},
    {"retry", OptionType::object, nullptr, false, "retry of batches the sink resolves retryable",
     kRetryOptions, std::size(kRetryOptions)},
};

/// Largest pipeline (or included YAML) file, and most nodes after alias expansion.
constexpr std::size_t kMaxYamlBytes = 16U << 20U;
constexpr std::size_t kMaxYamlNodes = 1'000'000;

SourceLocation where_of(const YAML::Node& n, const std::string& file) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) {
    return {file, 0, 0};
  }
  return {file, m.line + 1, m.column + 1};
}

ConfigNode convert(const YAML::Node& n, const std::string& file, const EnvLookup& env,
                   std::size_t& budget) {
  const SourceLocation where = where_of(n, file);
  if (budget == 0) {
    throw ConfigError(where.str() + ": the document expands to more than " +
                      std::to_string(kMaxYamlNodes) +
                      " nodes (nested aliases?); webmon refuses it");
  }
  --budget;
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: {
      ConfigNode out;
      out.set_where(where);
      return out;
    }
    case YAML::NodeType::Scalar:
      try {
        return ConfigNode(substitute(n.Scalar(), env), where);
      } catch (const std::runtime_error& e) {
        throw ConfigError(where.str() + ": " + e.what());
      }
    case YAML::NodeType::Sequence: {
      ConfigNode out = ConfigNode::make_list(where);
      for (const auto& item : n) {
        out.push_back(convert(item, file, env, budget));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      ConfigNode out = ConfigNode::make_map(where);
      std::set<std::string> seen;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          throw ConfigError(where_of(kv.first, file).str() + ": map keys must be plain names");
        }
        const std::string key = kv.first.Scalar();
        if (!seen.insert(key).second) {
          throw ConfigError(where_of(kv.first, file).str() + ": duplicate key '" + key + "'");
        }
        ConfigNode value = convert(kv.second, file, env, budget);
        if (value.is_null()) {
          value.set_where(where_of(kv.first, file));
        }
        out.set(key, std::move(value));
      }
      return out;
    }
  }
  return {};
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (const char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

std::string default_agent_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') {
    return host;
  }
  return "webmon";
}

void read_delivery(ComponentSpec& c, const AgentSpec& agent, const std::string& who) {
  ConfigNode host = ConfigNode::make_map(c.options.where());
  for (const char* key : {"buffer", "batch", "retry"}) {
    if (const ConfigNode* n = c.options.find(key)) {
      host.set(key, *n);
      c.options.erase(key);
    }
  }
  validate_options(host, kDeliveryOptions, who);
  DeliverySpec& d = c.delivery;
  d.max_records = agent.buffer_records;
  d.path = agent.state_dir + "/buffers/" + c.id;
  if (const ConfigNode* b = host.find("buffer"); b != nullptr && b->is_map()) {
    d.type = b->get_string("type", "memory") == "disk" ? DeliverySpec::BufferType::disk
                                                       : DeliverySpec::BufferType::memory;
    d.max_records = static_cast<std::size_t>(
        b->get_int("max_records", static_cast<std::int64_t>(d.max_records)));
    d.max_size = b->get_size("max_size", d.max_size);
    d.path = b->get_string("path", d.path);
    d.sync_interval = b->get_duration("sync_interval", d.sync_interval);
    const std::string w = b->get_string("when_full", "block");
    d.when_full = w == "drop_oldest"   ? DeliverySpec::WhenFull::drop_oldest
                  : w == "drop_newest" ? DeliverySpec::WhenFull::drop_newest
                                       : DeliverySpec::WhenFull::block;
  }
  if (const ConfigNode* b = host.find("batch"); b != nullptr && b->is_map()) {
    d.batch_max_records = static_cast<std::size_t>(b->get_int("max_records", 500));
    d.linger = b->get_duration("linger", d.linger);
    d.max_in_flight = static_cast<std::size_t>(b->get_int("max_in_flight", 8));
  }
  if (const ConfigNode* r = host.find("retry"); r != nullptr && r->is_map()) {
    d.retry_initial = r->get_duration("initial_backoff", d.retry_initial);
    d.retry_max = r->get_duration("max_backoff", d.retry_max);
    d.max_retries = r->get_int("max_retries", -1);
  }
}

void read_components(const ConfigNode& root, std::string_view section, sdk::PluginKind kind,
                     PipelineSpec& spec) {
  const ConfigNode* node = root.find(section);
  if (node == nullptr || node->is_null()) {
    return;
  }
  if (!node->is_map()) {
    node->fail("'" + std::string(section) + "' must be a map of component ids to components");
  }
  for (const auto& [id, body] : node->entries()) {
    ComponentSpec c;
    c.id = id;
    c.section = kind;
    c.where = body.where();
    const std::string who = std::string(sdk::to_string(kind)) + " '" + id + "'";
    if (!valid_id(id)) {
      body.fail(who + ": component ids use letters, digits, '_', '-' and '.' (at most 64)");
    }
    if (spec.find(id) != nullptr) {
      body.fail(who + ": the id '" + id + "' is already used by another component");
    }
    if (!body.is_map()) {
      body.fail(who + ": expected a map with at least 'plugin:'");
    }
    const ConfigNode* plugin = body.find("plugin");
    if (plugin == nullptr || !plugin->is_scalar() || plugin->text().empty()) {
      body.fail(who + ": missing 'plugin:' (the plugin's name, see webmon-agent --list-plugins)");
    }
    c.plugin = plugin->text();
    c.plugin_where = plugin->where();
    if (const ConfigNode* inputs = body.find("inputs"); inputs != nullptr) {
      if (kind == sdk::PluginKind::source) {
        inputs->fail(who + ": sources take no 'inputs'");
      }
      if (inputs->is_scalar()) {
        c.inputs.push_back(inputs->text());
        c.input_where.push_back(inputs->where());
      } else if (inputs->is_list()) {
        for (const auto& item : inputs->items()) {
          if (!item.is_scalar()) {
            item.fail(who + ": 'inputs' must list component ids");
          }
          c.inputs.push_back(item.text());
          c.input_where.push_back(item.where());
        }
      } else {
        inputs->fail(who + ": 'inputs' must be a list of component ids");
      }
    }
    if (kind != sdk::PluginKind::source && c.inputs.empty()) {
      body.fail(who + ": missing 'inputs:' (the ids of the components that feed it)");
    }
    c.options = body;
    c.options.erase("plugin");
    c.options.erase("inputs");
    if (kind == sdk::PluginKind::sink) {
      read_delivery(c, spec.agent, who);
    }
    spec.components.push_back(std::move(c));
  }
}

void check_topology(const PipelineSpec& spec, const ConfigNode& root) {
  std::size_t sources = 0;
  std::size_t sinks = 0;
  std::map<std::string, std::size_t> consumers;
  for (const auto& c : spec.components) {
    sources += c.section == sdk::PluginKind::source ? 1 : 0;
    sinks += c.section == sdk::PluginKind::sink ? 1 : 0;
    for (std::size_t i = 0; i < c.inputs.size(); ++i) {
      const ComponentSpec* in = spec.find(c.inputs[i]);
      const std::string where = c.input_where[i].str();
      if (in == nullptr) {
        throw ConfigError(where + ": " + c.describe() + ": input '" + c.inputs[i] +
                          "' is not a component of this pipeline");
      }
      if (in->section == sdk::PluginKind::sink) {
        throw ConfigError(where + ": " + c.describe() + ": input '" + c.inputs[i] +
                          "' is a sink; only sources and transforms can be inputs");
      }
      if (in->id == c.id) {
        throw ConfigError(where + ": " + c.describe() + " lists itself as an input");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (c.inputs[j] == c.inputs[i]) {
          throw ConfigError(where + ": " + c.describe() + ": input '" + c.inputs[i] +
                            "' is listed twice");
        }
      }
      ++consumers[in->id];
    }
  }
  if (sources == 0) {
    throw ConfigError(root.where().str() +
                      ": the pipeline has no sources (add a 'sources:' section)");
  }
  if (sinks == 0) {
    throw ConfigError(root.where().str() + ": the pipeline has no sinks (add a 'sinks:' section)");
  }
  for (const auto& c : spec.components) {
    if (c.section != sdk::PluginKind::sink && consumers[c.id] == 0) {
      throw ConfigError(c.where.str() + ": " + c.describe() +
                        " feeds nothing: list it in the 'inputs' of a transform or sink");
    }
  }
  (void)topological_order(spec);  // throws on cycles
}

}  // namespace

const char* to_string(DeliverySpec::WhenFull w) noexcept {
  switch (w) {
    case DeliverySpec::WhenFull::block:
      return "block";
    case DeliverySpec::WhenFull::drop_oldest:
      return "drop_oldest";
    case DeliverySpec::WhenFull::drop_newest:
      return "drop_newest";
  }
  return "unknown";
}

std::string ComponentSpec::describe() const {
  return std::string(sdk::to_string(section)) + " '" + id + "'";
}

const ComponentSpec* PipelineSpec::find(std::string_view id) const noexcept {
  for (const auto& c : components) {
    if (c.id == id) {
      return &c;
    }
  }
  return nullptr;
}

std::vector<const ComponentSpec*> topological_order(const PipelineSpec& spec) {
  std::vector<const ComponentSpec*> order;
  std::map<std::string, int> state;  // 0 new, 1 visiting, 2 done
  std::vector<std::string> stack;
  auto visit = [&](auto&& self, const ComponentSpec& c) -> void {
    int& s = state[c.id];
    if (s == 2) {
      return;
    }
    if (s == 1) {
      std::string cycle;
      bool in = false;
      for (const auto& id : stack) {
        in = in || id == c.id;
        if (in) {
          cycle += id + " -> ";
        }
      }
      throw ConfigError(c.where.str() + ": " + c.describe() + ": inputs form a cycle: " + cycle +
                        c.id);
    }
    s = 1;
    stack.push_back(c.id);
    for (const auto& input : c.inputs) {
      if (const ComponentSpec* in = spec.find(input)) {
        self(self, *in);
      }
    }
    stack.pop_back();
    state[c.id] = 2;
    order.push_back(&c);
  };
  for (const auto& c : spec.components) {
    visit(visit, c);
  }
  return order;
}

PipelineSpec parse_pipeline(const std::string& text, const std::string& name,
                            const EnvLookup& env) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
  std::size_t budget = kMaxYamlNodes;
  ConfigNode root = convert(doc, name, env, budget);
  if (!root.is_map()) {
    throw ConfigError(root.where().str() +
                      ": a pipeline file is a map with 'sources', 'transforms', 'sinks' and an "
                      "optional 'agent' section");
  }
  if (root.where().line == 0) {
    root.set_where({name, 1, 1});
  }
  for (const auto& [key, value] : root.entries()) {
    if (key != "agent" && key != "sources" && key != "transforms" && key != "sinks") {
      value.fail("unknown section '" + key + "' (expected agent, sources, transforms, sinks)");
    }
  }
  PipelineSpec spec;
  spec.file = name;
  ConfigNode agent = ConfigNode::make_map(root.where());
  if (const ConfigNode* a = root.find("agent"); a != nullptr && !a->is_null()) {
    agent = *a;
  }
  validate_options(agent, kAgentOptions, "agent");
  spec.agent.name = agent.get_string("name", default_agent_name());
  if (agent.has("plugin_dirs")) {
    spec.agent.plugin_dirs = agent.find("plugin_dirs")->as_string_list();
  }
  if (const ConfigNode* m = agent.find("metrics"); m != nullptr && m->is_map()) {
    spec.agent.metrics_listen = m->get_string("listen");
  }
  spec.agent.shutdown_timeout = agent.get_duration("shutdown_timeout", spec.agent.shutdown_timeout);
  spec.agent.buffer_records = static_cast<std::size_t>(agent.get_int("buffer_records", 10'000));
  if (agent.has("state_dir")) {
    spec.agent.state_dir = agent.find("state_dir")->as_string();
  } else if (auto from_systemd = env("STATE_DIRECTORY"); from_systemd && !from_systemd->empty()) {
    // systemd's StateDirectory= (several directories are separated by ':': the first)
    spec.agent.state_dir = from_systemd->substr(0, from_systemd->find(':'));
  } else {
    spec.agent.state_dir = "/var/lib/webmon";
  }

  read_components(root, "sources", sdk::PluginKind::source, spec);
  read_components(root, "transforms", sdk::PluginKind::transform, spec);
  read_components(root, "sinks", sdk::PluginKind::sink, spec);
  check_topology(spec, root);
  return spec;
}

PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError(path + ": is a directory, not a pipeline file");
  }
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(path + ": cannot read the pipeline file (" + std::strerror(errno) + ")");
  }
  std::error_code size_ec;
  const auto bytes = std::filesystem::file_size(path, size_ec);
  if (!size_ec && bytes > kMaxYamlBytes) {
    throw ConfigError(path + ": the pipeline file has " + std::to_string(bytes) +
                      " bytes; webmon reads at most " + std::to_string(kMaxYamlBytes));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_pipeline(buf.str(), path, env);
}

}  // namespace webmon::agent
