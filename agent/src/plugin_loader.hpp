// Finding plugin shared objects on the search path, loading them with Boost.DLL and checking
// their ABI before anything else in them is called.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "webmon/sdk/plugin.hpp"

namespace boost::dll {
class shared_library;
}

namespace webmon::agent {

/// A plugin refused or not found; what() is one line naming the file.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedPlugin {
  /// Keeps the shared object mapped; every component created from it holds a copy.
  std::shared_ptr<boost::dll::shared_library> library;
  const sdk::PluginDescriptor* descriptor = nullptr;
  std::string path;
};

/// The directory of built-in plugins, relative to the running executable
/// (<prefix>/bin/webmon-agent → <prefix>/lib/webmon/plugins; the build tree has the same shape).
std::string builtin_plugin_dir();

/// The search path in order: `cli_dirs`, `config_dirs`, WEBMON_PLUGIN_PATH (':'-separated),
/// the built-in directory.
std::vector<std::string> plugin_search_path(const std::vector<std::string>& cli_dirs,
                                            const std::vector<std::string>& config_dirs);

/// Loads the shared object at `path` and checks its descriptor: entry point present, ABI major
/// equal, minor not newer than the host's, same build key, a factory for its kind.
LoadedPlugin load_plugin_file(const std::string& path);

/// Resolves `name` ("http_check" → "<dir>/http_check.so" on the search path; a value with a
/// '/' is a file path) and loads it. The descriptor's name must equal `name` when resolved by
/// name.
LoadedPlugin resolve_plugin(const std::string& name, const std::vector<std::string>& search_path);

/// Every "*.so" on the search path; a name found twice is taken from the first directory.
/// Files that fail to load are reported in `errors`.
std::vector<LoadedPlugin> discover_plugins(const std::vector<std::string>& search_path,
                                           std::vector<std::string>& errors);

}  // namespace webmon::agent
