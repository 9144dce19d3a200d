#include "options.hpp"

#include <algorithm>
#include <vector>

#include "webmon/sdk/options.hpp"

namespace webmon::agent {
namespace {

using sdk::ConfigNode;
using sdk::OptionSpec;
using sdk::OptionType;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const OptionSpec* find_spec(std::span<const OptionSpec> specs, std::string_view name) {
  for (const auto& s : specs) {
    if (name == s.name) {
      return &s;
    }
  }
  return nullptr;
}

[[noreturn]] void fail(const ConfigNode& at, const std::string& who, const std::string& what) {
  throw sdk::ConfigError(at.where().str() + ": " + who + ": " + what);
}

std::string unknown_key_message(std::string_view key, std::span<const OptionSpec> specs) {
  std::string msg = "unknown option '" + std::string(key) + "'";
  const OptionSpec* best = nullptr;
  std::size_t best_d = 3;
  for (const auto& s : specs) {
    const std::size_t d = edit_distance(key, s.name);
    if (d < best_d) {
      best_d = d;
      best = &s;
    }
  }
  if (best != nullptr) {
    msg += " (did you mean '" + std::string(best->name) + "'?)";
  } else if (specs.empty()) {
    msg += " (this plugin takes no options)";
  } else {
    msg += " (valid options:";
    for (const auto& s : specs) {
      msg += ' ';
      msg += s.name;
    }
    msg += ")";
  }
  return msg;
}

void check_value(const ConfigNode& node, const OptionSpec& spec, const std::string& who,
                 const std::string& path);

void check_map(ConfigNode& config, std::span<const OptionSpec> specs, const std::string& who,
               const std::string& prefix) {
  if (!config.is_map()) {
    fail(config, who,
         (prefix.empty() ? std::string("options") : "option '" + prefix + "'") + " must be a map");
  }
  for (const auto& [key, value] : config.entries()) {
    const OptionSpec* spec = find_spec(specs, key);
    if (spec == nullptr) {
      fail(value, who,
           unknown_key_message(key, specs) + (prefix.empty() ? "" : " in '" + prefix + "'"));
    }
  }
  for (const auto& spec : specs) {
    const std::string path = prefix.empty() ? spec.name : prefix + "." + spec.name;
    const ConfigNode* value = config.find(spec.name);
    if (value == nullptr || value->is_null()) {
      if (spec.required) {
        fail(config, who, "missing required option '" + path + "' (" + spec.description + ")");
      }
      if (spec.default_value != nullptr) {
        config.set(spec.name, ConfigNode(spec.default_value, config.where()));
      }
      continue;
    }
    check_value(*value, spec, who, path);
  }
  // Nested maps get the same treatment, defaults included.
  for (auto& [key, value] : config.entries()) {
    const OptionSpec* spec = find_spec(specs, key);
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    const std::span<const OptionSpec> children(spec->children, spec->child_count);
    if (spec->type == OptionType::object) {
      check_map(value, children, who, path);
    } else if (spec->type == OptionType::object_list) {
      for (std::size_t i = 0; i < value.items().size(); ++i) {
        check_map(value.items()[i], children, who, path + "[" + std::to_string(i) + "]");
      }
    }
  }
}

void check_value(const ConfigNode& node, const OptionSpec& spec, const std::string& who,
                 const std::string& path) {
  auto expect = [&](const char* what) {
    std::string got = node.is_list() ? "a list" : node.is_map() ? "a map" : "'" + node.text() + "'";
    fail(node, who, "option '" + path + "': expected " + what + ", got " + got);
  };
  switch (spec.type) {
    case OptionType::boolean:
      if (!node.is_scalar() || !sdk::parse_bool(node.text())) {
        expect("true or false");
      }
      break;
    case OptionType::integer:
      if (!node.is_scalar() || !sdk::parse_int(node.text())) {
        expect("an integer");
      }
      break;
    case OptionType::number:
      if (!node.is_scalar() || !sdk::parse_double(node.text())) {
        expect("a number");
      }
      break;
    case OptionType::string:
      if (!node.is_scalar()) {
        expect("a string");
      }
      break;
    case OptionType::duration:
      if (!node.is_scalar() || !sdk::parse_duration(node.text())) {
        expect("a duration such as 250ms, 10s, 5m or 1h");
      }
      break;
    case OptionType::size:
      if (!node.is_scalar() || !sdk::parse_size(node.text())) {
        expect("a size such as 512, 64KiB or 1MiB");
      }
      break;
    case OptionType::string_list:
      if (node.is_map()) {
        expect("a list of strings");
      }
      for (const auto& item : node.items()) {
        if (!item.is_scalar()) {
          fail(item, who, "option '" + path + "': every item must be a string");
        }
      }
      break;
    case OptionType::string_map:
      if (!node.is_map()) {
        expect("a map of names to strings");
      }
      for (const auto& [k, v] : node.entries()) {
        if (!v.is_scalar()) {
          fail(v, who, "option '" + path + "." + k + "': expected a string");
        }
      }
      break;
    case OptionType::object:
      if (!node.is_map()) {
        expect("a map");
      }
      break;
    case OptionType::object_list:
      if (!node.is_list()) {
        expect("a list of maps");
      }
      for (const auto& item : node.items()) {
        if (!item.is_map()) {
          fail(item, who, "option '" + path + "': every item must be a map");
        }
      }
      break;
    case OptionType::any:
      break;
  }
  try {
    sdk::check_option(spec, node, path);
  } catch (const sdk::ConfigError& e) {
    const std::string msg = e.what();
    const std::size_t at = msg.find(": option '");
    const std::string where = at == std::string::npos ? node.where().str() : msg.substr(0, at);
    const std::string what = at == std::string::npos ? msg : msg.substr(at + 2);
    throw sdk::ConfigError(where + ": " + who + ": " + what);
  }
}

}  // namespace

void validate_options(ConfigNode& config, std::span<const OptionSpec> specs,
                      const std::string& who) {
  check_map(config, specs, who, "");
}

}  // namespace webmon::agent
