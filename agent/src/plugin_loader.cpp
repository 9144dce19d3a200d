#define BOOST_DLL_USE_STD_FS
#include "plugin_loader.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "kinds.hpp"

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

namespace {

#ifndef WEBMON_HOST_ABI_MINOR
#define WEBMON_HOST_ABI_MINOR WEBMON_SDK_ABI_MINOR
#endif
/// The ABI this agent provides (a test builds an "older agent" by lowering the minor).
constexpr std::uint32_t kHostAbiMajor = WEBMON_SDK_ABI_MAJOR;
constexpr std::uint32_t kHostAbiMinor = WEBMON_HOST_ABI_MINOR;

/// The descriptor of ABI 1.0 ends with field_size: every 1.x plugin's is at least this big.
constexpr std::size_t kDescriptorSize10 =
    offsetof(sdk::PluginDescriptor, field_size) + sizeof(std::uint32_t);
constexpr std::size_t kOptionSize10 = offsetof(sdk::OptionSpec, assign) + sizeof(void*);
constexpr std::size_t kKindSize10 = offsetof(sdk::KindSpec, description) + sizeof(void*);
constexpr std::size_t kFieldSize10 = offsetof(sdk::FieldSpec, description) + sizeof(void*);

std::string abi_text(std::uint32_t major, std::uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

/// Refuses files (and their directories) that someone other than their owner or root can
/// write: loading such a file would run whatever another user put there.
void check_permissions(const std::string& path) {
  auto check = [&](const fs::path& p, const char* what) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      throw PluginError(path + ": cannot stat " + what + " " + p.string() + " (" +
                        std::strerror(errno) + ")");
    }
    const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !sticky_dir) {
      throw PluginError(path + ": refused: " + what + " " + p.string() +
                        " is writable by group or others (chmod go-w it)");
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
      throw PluginError(path + ": refused: " + what + " " + p.string() + " belongs to uid " +
                        std::to_string(st.st_uid) + ", neither root nor the agent's user");
    }
  };
  check(fs::path(path), "plugin file");
  check(fs::absolute(fs::path(path)).parent_path(), "directory");
}

void normalize_options(const sdk::OptionSpec* base, std::size_t count, std::uint32_t stride,
                       PluginInfo& info, std::vector<sdk::OptionSpec>& out, int depth,
                       const std::string& path) {
  if (depth > 8) {
    throw PluginError(path + ": malformed descriptor (options nested more than 8 levels)");
  }
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    sdk::OptionSpec o{};
    std::memcpy(&o, reinterpret_cast<const unsigned char*>(base) + i * stride,
                std::min<std::size_t>(stride, sizeof o));
    if (o.name == nullptr || o.description == nullptr) {
      throw PluginError(path + ": malformed descriptor (option " + std::to_string(i + 1) +
                        " has no name or description)");
    }
    if (o.children != nullptr && o.child_count > 0) {
      auto& table = info.option_tables.emplace_back();
      normalize_options(o.children, o.child_count, stride, info, table, depth + 1, path);
      o.children = table.data();
    } else {
      o.children = nullptr;
      o.child_count = 0;
    }
    out.push_back(o);
  }
}

std::shared_ptr<PluginInfo> normalize(const sdk::PluginDescriptor* raw, const std::string& path) {
  auto info = std::make_shared<PluginInfo>();
  sdk::PluginDescriptor& d = info->descriptor;
  std::memcpy(&d, raw, std::min<std::size_t>(raw->struct_size, sizeof d));
  d.struct_size = sizeof d;
  if (d.name == nullptr || d.name[0] == '\0' || d.version == nullptr || d.description == nullptr ||
      (d.option_count > 0 && d.options == nullptr)) {
    throw PluginError(path + ": malformed descriptor (name, version or options missing)");
  }
  if (d.option_count > 0 && d.option_size < kOptionSize10) {
    throw PluginError(path + ": malformed descriptor (option_size " +
                      std::to_string(d.option_size) + " is smaller than ABI 1.0's)");
  }
  auto& top = info->option_tables.emplace_back();
  normalize_options(d.options, d.option_count, d.option_size, *info, top, 0, path);
  d.options = top.data();
  d.option_size = sizeof(sdk::OptionSpec);

  const std::string who = path + ": plugin '" + d.name + "'";
  if (d.emit_count > 0 && (d.emits == nullptr || d.kind_size < kKindSize10)) {
    throw PluginError(who + ": malformed descriptor (kinds)");
  }
  for (std::size_t i = 0; i < d.emit_count; ++i) {
    const sdk::KindSpec k = read_kind(d.emits, i, d.kind_size);
    if (k.field_count > 0 && k.field_size < kFieldSize10) {
      throw PluginError(who + ": malformed descriptor (field_size of a kind)");
    }
    if (auto problem = check_declaration(k)) {
      throw PluginError(who + " declares an invalid record kind: " + *problem);
    }
    if (std::string_view(k.name) == sdk::kAnyKind) {
      info->emits_any = true;
      continue;
    }
    for (const auto& other : info->kinds) {
      if (std::string_view(other->spec().name) == k.name) {
        throw PluginError(who + " declares kind '" + k.name + "' twice");
      }
    }
    info->kinds.push_back(std::make_unique<OwnedKind>(k));
  }
  for (const auto& k : info->kinds) {
    info->kind_specs.push_back(k->spec());
  }
  d.emits = info->kind_specs.data();
  d.emit_count = info->kind_specs.size();
  d.kind_size = sizeof(sdk::KindSpec);
  for (std::size_t i = 0; i < d.accept_count && d.accepts != nullptr; ++i) {
    if (d.accepts[i] == nullptr) {
      throw PluginError(who + ": malformed descriptor (accepts)");
    }
    info->accepts.push_back(d.accepts[i]);
  }
  d.accepts = info->accepts.data();
  d.accept_count = info->accepts.size();
  if (d.requires_count > 0 && (d.requires_fields == nullptr || d.field_size < kFieldSize10)) {
    throw PluginError(who + ": malformed descriptor (required fields)");
  }
  for (std::size_t i = 0; i < d.requires_count; ++i) {
    sdk::FieldSpec f = read_field(d.requires_fields, i, d.field_size);
    if (f.name == nullptr) {
      throw PluginError(who + ": malformed descriptor (a required field has no name)");
    }
    info->requires_fields.push_back(f);
  }
  d.requires_fields = info->requires_fields.data();
  d.requires_count = info->requires_fields.size();
  d.field_size = sizeof(sdk::FieldSpec);
  return info;
}

}  // namespace

PluginInfo::PluginInfo() = default;
PluginInfo::~PluginInfo() = default;

sdk::AbiStamp read_abi_stamp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto not_plugin = [&](const std::string& why) {
    return PluginError(path + ": not a webmon plugin (" + why + ")");
  };
  if (data.size() < SELFMAG || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0) {
    throw PluginError(path + ": not a shared object (no ELF header)");
  }
  if (data.size() < sizeof(Elf64_Ehdr)) {
    throw PluginError(path + ": not a loadable shared object (truncated ELF header)");
  }
  Elf64_Ehdr eh{};
  std::memcpy(&eh, data.data(), sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN) {
    throw PluginError(path + ": not a 64-bit ELF shared object");
  }
  auto in_file = [&](std::uint64_t off, std::uint64_t len) {
    return off <= data.size() && len <= data.size() - off;
  };
  if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
      !in_file(eh.e_shoff, std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr))) {
    throw PluginError(path + ": malformed ELF section table");
  }
  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  std::memcpy(sections.data(), data.data() + eh.e_shoff, eh.e_shnum * sizeof(Elf64_Shdr));
  const Elf64_Sym* stamp_sym = nullptr;
  Elf64_Sym stamp_copy{};
  bool has_entry = false;
  for (const auto& sh : sections) {
    if (sh.sh_type != SHT_DYNSYM || sh.sh_link >= sections.size() ||
        sh.sh_entsize != sizeof(Elf64_Sym) || !in_file(sh.sh_offset, sh.sh_size)) {
      continue;
    }
    const Elf64_Shdr& strtab = sections[sh.sh_link];
    if (!in_file(strtab.sh_offset, strtab.sh_size)) {
      continue;
    }
    const std::size_t n = sh.sh_size / sizeof(Elf64_Sym);
    for (std::size_t i = 0; i < n; ++i) {
      Elf64_Sym sym{};
      std::memcpy(&sym, data.data() + sh.sh_offset + i * sizeof(Elf64_Sym), sizeof sym);
      if (sym.st_name >= strtab.sh_size || sym.st_shndx == SHN_UNDEF) {
        continue;
      }
      const char* name = data.data() + strtab.sh_offset + sym.st_name;
      const std::size_t max_len = strtab.sh_size - sym.st_name;
      const std::string_view sname(name, ::strnlen(name, max_len));
      if (sname == WEBMON_PLUGIN_ENTRY_NAME) {
        has_entry = true;
      } else if (sname == WEBMON_PLUGIN_STAMP_NAME) {
        stamp_copy = sym;
        stamp_sym = &stamp_copy;
      }
    }
  }
  if (!has_entry) {
    throw not_plugin("no '" WEBMON_PLUGIN_ENTRY_NAME
                     "' entry point; plugins export one with WEBMON_PLUGIN_SOURCE/"
                     "TRANSFORM/SINK");
  }
  if (stamp_sym == nullptr) {
    throw not_plugin("no '" WEBMON_PLUGIN_STAMP_NAME
                     "' ABI stamp: built against a webmon SDK older than 1.0; rebuild it");
  }
  if (stamp_sym->st_shndx >= sections.size() || stamp_sym->st_size < 20) {
    throw not_plugin("malformed ABI stamp");
  }
  const Elf64_Shdr& sec = sections[stamp_sym->st_shndx];
  if (sec.sh_type == SHT_NOBITS || stamp_sym->st_value < sec.sh_addr) {
    throw not_plugin("malformed ABI stamp");
  }
  const std::uint64_t off = sec.sh_offset + (stamp_sym->st_value - sec.sh_addr);
  if (!in_file(off, stamp_sym->st_size)) {
    throw not_plugin("malformed ABI stamp");
  }
  sdk::AbiStamp stamp{};
  std::memcpy(&stamp, data.data() + off, std::min<std::size_t>(stamp_sym->st_size, sizeof stamp));
  if (std::memcmp(stamp.magic, "WEBMONP", 8) != 0) {
    throw not_plugin("malformed ABI stamp (bad magic)");
  }
  stamp.build_key[sizeof stamp.build_key - 1] = '\0';
  return stamp;
}

LoadedPlugin load_plugin_file(const std::string& path) {
  std::error_code fec;
  if (!fs::exists(path, fec)) {
    throw PluginError(path + ": no such file");
  }
  if (!fs::is_regular_file(path, fec)) {
    throw PluginError(path + ": not a regular file");
  }
  check_permissions(path);
  // Everything up to dlopen reads the file only: a file that is not a compatible plugin
  // never runs code in the agent (not even its static constructors).
  const sdk::AbiStamp stamp = read_abi_stamp(path);
  if (stamp.abi_major != kHostAbiMajor || stamp.abi_minor > kHostAbiMinor) {
    throw PluginError(
        path + ": built for webmon SDK ABI " + abi_text(stamp.abi_major, stamp.abi_minor) +
        ", but this agent provides ABI " + abi_text(kHostAbiMajor, kHostAbiMinor) + " (" +
        (stamp.abi_major == kHostAbiMajor ? "upgrade the agent, or rebuild the plugin"
                                          : "rebuild the plugin") +
        " against this agent's SDK)");
  }
  if (std::strcmp(stamp.build_key, sdk::kBuildKey) != 0) {
    throw PluginError(path + ": built with C++ build key '" + stamp.build_key +
                      "', but this agent's is '" + sdk::kBuildKey +
                      "' (standard library or its ABI differs; rebuild the plugin)");
  }
  auto lib = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !lib->is_loaded()) {
    const char* why = ::dlerror();
    std::string detail = why != nullptr ? why : ec.message();
    throw PluginError(path + ": not a loadable shared object (" + detail + ")");
  }
  auto entry = lib->get<const sdk::PluginDescriptor*() noexcept>(WEBMON_PLUGIN_ENTRY_NAME);
  const sdk::PluginDescriptor* d = entry();
  if (d == nullptr) {
    throw PluginError(path + ": the entry point returned no descriptor");
  }
  if (d->struct_size < kDescriptorSize10) {
    throw PluginError(path + ": descriptor of " + std::to_string(d->struct_size) +
                      " bytes: built against a webmon SDK older than 1.0; rebuild it");
  }
  if (d->abi_major != stamp.abi_major || d->abi_minor != stamp.abi_minor) {
    throw PluginError(path + ": descriptor says ABI " + abi_text(d->abi_major, d->abi_minor) +
                      " but its stamp says " + abi_text(stamp.abi_major, stamp.abi_minor));
  }
  auto info = normalize(d, path);
  const sdk::PluginDescriptor& n = info->descriptor;
  const bool factory_ok = (n.kind == sdk::PluginKind::source && n.create_source != nullptr) ||
                          (n.kind == sdk::PluginKind::transform && n.create_transform != nullptr) ||
                          (n.kind == sdk::PluginKind::sink && n.create_sink != nullptr);
  if (!factory_ok) {
    throw PluginError(path + ": malformed descriptor (no factory for its kind)");
  }
  LoadedPlugin out{std::move(lib), info, &info->descriptor, path};
  return out;
}

LoadedPlugin resolve_plugin(const std::string& name, const std::vector<std::string>& search_path) {
  const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (!plain) {
    throw PluginError("'" + name +
                      "' is not a plugin name: 'plugin:' takes a name such as http_check, "
                      "never a path (put the plugin's directory in agent.plugin_dirs or "
                      "--plugin-dir)");
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
