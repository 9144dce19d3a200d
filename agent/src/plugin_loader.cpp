#define BOOST_DLL_USE_STD_FS
#include "plugin_loader.hpp"

#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <dlfcn.h>
#include <set>

namespace webmon::agent {
namespace fs = std::filesystem;

#ifndef WEBMON_PLUGIN_DIR_FROM_BIN
#define WEBMON_PLUGIN_DIR_FROM_BIN "../lib/webmon/plugins"
#endif

std::string builtin_plugin_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return {};
  }
  return (exe.parent_path() / WEBMON_PLUGIN_DIR_FROM_BIN).lexically_normal().string();
}

std::vector<std::string> plugin_search_path(const std::vector<std::string>& cli_dirs,
                                            const std::vector<std::string>& config_dirs) {
  std::vector<std::string> out(cli_dirs);
  out.insert(out.end(), config_dirs.begin(), config_dirs.end());
  if (const char* env = std::getenv("WEBMON_PLUGIN_PATH"); env != nullptr) {
    std::string s(env);
    std::size_t start = 0;
    while (start <= s.size()) {
      const std::size_t end = std::min(s.find(':', start), s.size());
      if (end > start) {
        out.push_back(s.substr(start, end - start));
      }
      start = end + 1;
    }
  }
  if (std::string b = builtin_plugin_dir(); !b.empty()) {
    out.push_back(std::move(b));
  }
  return out;
}

LoadedPlugin load_plugin_file(const std::string& path) {
  std::error_code fec;
  if (!fs::exists(path, fec)) {
    throw PluginError(path + ": no such file");
  }
  if (!fs::is_regular_file(path, fec)) {
    throw PluginError(path + ": not a regular file");
  }
  {
    std::ifstream f(path, std::ios::binary);
    char magic[4] = {};
    if (!f.read(magic, sizeof magic) || std::memcmp(magic, "\x7f" "ELF", 4) != 0) {
      throw PluginError(path + ": not a shared object (no ELF header)");
    }
  }
  auto lib = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !lib->is_loaded()) {
    const char* why = ::dlerror();
    std::string detail = why != nullptr ? why : ec.message();
    throw PluginError(path + ": not a loadable shared object (" + detail + ")");
  }
  if (!lib->has(WEBMON_PLUGIN_ENTRY_NAME)) {
    throw PluginError(path + ": not a webmon plugin (no '" WEBMON_PLUGIN_ENTRY_NAME
                             "' entry point; plugins export one with WEBMON_PLUGIN_SOURCE/"
                             "TRANSFORM/SINK)");
  }
  auto entry = lib->get<const sdk::PluginDescriptor*() noexcept>(WEBMON_PLUGIN_ENTRY_NAME);
  const sdk::PluginDescriptor* d = entry();
  if (d == nullptr) {
    throw PluginError(path + ": the entry point returned no descriptor");
  }
  if (d->abi_major != sdk::kAbiMajor || d->abi_minor > sdk::kAbiMinor) {
    throw PluginError(path + ": built for webmon SDK ABI " + std::to_string(d->abi_major) + "." +
                      std::to_string(d->abi_minor) + ", but this agent provides ABI " +
                      std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor) +
                      " (rebuild the plugin against this agent's SDK)");
  }
  if (d->build_key == nullptr || std::strcmp(d->build_key, sdk::kBuildKey) != 0) {
    throw PluginError(path + ": built with C++ build key '" +
                      (d->build_key != nullptr ? d->build_key : "(none)") +
                      "', but this agent's is '" + sdk::kBuildKey +
                      "' (standard library or its ABI differs; rebuild the plugin)");
  }
  if (d->name == nullptr || d->name[0] == '\0' || d->version == nullptr ||
      d->description == nullptr || (d->option_count > 0 && d->options == nullptr)) {
    throw PluginError(path + ": malformed descriptor (name, version or options missing)");
  }
  const bool factory_ok = (d->kind == sdk::PluginKind::source && d->create_source != nullptr) ||
                          (d->kind == sdk::PluginKind::transform && d->create_transform != nullptr) ||
                          (d->kind == sdk::PluginKind::sink && d->create_sink != nullptr);
  if (!factory_ok) {
    throw PluginError(path + ": malformed descriptor (no factory for its kind)");
  }
  return LoadedPlugin{std::move(lib), d, path};
}

LoadedPlugin resolve_plugin(const std::string& name, const std::vector<std::string>& search_path) {
  if (name.find('/') != std::string::npos) {
    return load_plugin_file(name);
  }
  for (const auto& dir : search_path) {
    const fs::path candidate = fs::path(dir) / (name + ".so");
    std::error_code ec;
    if (fs::exists(candidate, ec)) {
      LoadedPlugin p = load_plugin_file(candidate.string());
      if (name != p.descriptor->name) {
        throw PluginError(candidate.string() + ": declares plugin '" + p.descriptor->name +
                          "', expected '" + name + "'");
      }
      return p;
    }
  }
  std::string dirs;
  for (const auto& d : search_path) {
    dirs += (dirs.empty() ? "" : ", ") + d;
  }
  throw PluginError("unknown plugin '" + name + "': no " + name + ".so in " +
                    (dirs.empty() ? std::string("(empty search path)") : dirs) +
                    " (see webmon-agent --list-plugins; add directories with --plugin-dir)");
}

std::vector<LoadedPlugin> discover_plugins(const std::vector<std::string>& search_path,
                                           std::vector<std::string>& errors) {
  std::vector<LoadedPlugin> out;
  std::set<std::string> seen;
  for (const auto& dir : search_path) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".so") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (!seen.insert(f.stem().string()).second) {
        continue;
      }
      try {
        out.push_back(load_plugin_file(f.string()));
      } catch (const PluginError& e) {
        errors.emplace_back(e.what());
      }
    }
  }
  return out;
}

}  // namespace webmon::agent
