// Finding plugin shared objects on the search path, loading them with Boost.DLL and checking
// their ABI before anything else in them is called.
#pragma once

#include <deque>
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

class OwnedKind;

/// A plugin's descriptor read with the plugin's own sizes and strides into host-sized,
/// host-owned structs (members a plugin built for an older minor lacks are zero).
struct PluginInfo {
  sdk::PluginDescriptor descriptor{};  // arrays point into the storage below
  std::deque<std::vector<sdk::OptionSpec>> option_tables;
  std::vector<std::unique_ptr<OwnedKind>> kinds;
  std::vector<sdk::KindSpec> kind_specs;
  std::vector<const char*> accepts;
  std::vector<sdk::FieldSpec> requires_fields;
  bool emits_any = false;  // declares kinds decided at run time
  PluginInfo();
  ~PluginInfo();
  PluginInfo(const PluginInfo&) = delete;
  PluginInfo& operator=(const PluginInfo&) = delete;
};

struct LoadedPlugin {
  /// Keeps the shared object mapped; every component created from it holds a copy.
  std::shared_ptr<boost::dll::shared_library> library;
  std::shared_ptr<const PluginInfo> info;
  /// info->descriptor: the normalized descriptor.
  const sdk::PluginDescriptor* descriptor = nullptr;
  std::string path;
};

/// What a file's exported ABI stamp says, read from its dynamic symbol table without loading
/// it. Throws PluginError when the file is not an ELF shared object with webmon's entry point
/// and stamp.
sdk::AbiStamp read_abi_stamp(const std::string& path);

/// The directory of built-in plugins, relative to the running executable
/// (<prefix>/bin/webmon-agent → <prefix>/lib/webmon/plugins; the build tree has the same shape).
std::string builtin_plugin_dir();

/// The search path in order: `cli_dirs`, `config_dirs`, WEBMON_PLUGIN_PATH (':'-separated),
/// the built-in directory.
std::vector<std::string> plugin_search_path(const std::vector<std::string>& cli_dirs,
                                            const std::vector<std::string>& config_dirs);

/// Checks the file (owner and permissions, ELF dynamic symbols, the ABI stamp: major equal,
/// minor not newer than the host's, same build key) BEFORE loading it, so a file that is not
/// a compatible webmon plugin never runs code; then loads it and reads its descriptor (kinds
/// declared validly, a factory for its kind).
LoadedPlugin load_plugin_file(const std::string& path);

/// Resolves `name` ("http_check" → "<dir>/http_check.so" on the search path) and loads it.
/// Names are [A-Za-z0-9_-]; a path is refused (add its directory with --plugin-dir or
/// agent.plugin_dirs). The descriptor's name must equal `name`.
LoadedPlugin resolve_plugin(const std::string& name, const std::vector<std::string>& search_path);

/// Every "*.so" on the search path; a name found twice is taken from the first directory.
/// Files that fail to load are reported in `errors`.
std::vector<LoadedPlugin> discover_plugins(const std::vector<std::string>& search_path,
                                           std::vector<std::string>& errors);

}  // namespace webmon::agent
