// webmon-agent: loads a YAML pipeline of plugins and runs it.
// Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "env.hpp"
#include "log.hpp"
#include "options.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"
#include "runtime.hpp"
#include "webmon/sdk/version.hpp"

#define WEBMON_JEMALLOC_CONF_VISIBILITY __attribute__((visibility("default"), used))

#ifndef WEBMON_VERSION
#define WEBMON_VERSION "0.0.0"
#endif

// jemalloc tuning (read by jemalloc at start when it is linked in; ignored otherwise): few
// arenas and quick return of freed pages keep the resident set small and steady; the
// background thread (created with all signals blocked) purges even when threads go idle.
extern "C" {
WEBMON_JEMALLOC_CONF_VISIBILITY const char* malloc_conf =
    "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true";
}

namespace {

using namespace webmon;
using namespace webmon::agent;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

// The runtime the signal thread talks to; cleared (under the mutex) before it is destroyed.
std::mutex g_runtime_mu;
Runtime* g_runtime = nullptr;

struct RuntimeRegistration {
  explicit RuntimeRegistration(Runtime& r) {
    std::lock_guard lock(g_runtime_mu);
    g_runtime = &r;
  }
  ~RuntimeRegistration() {
    std::lock_guard lock(g_runtime_mu);
    g_runtime = nullptr;
  }
  RuntimeRegistration(const RuntimeRegistration&) = delete;
  RuntimeRegistration& operator=(const RuntimeRegistration&) = delete;
};

struct Cli {
  std::string pipeline;
  std::string env_file;
  std::vector<std::string> plugin_dirs;
  std::string log_level = "info";
  std::string log_format = "text";
  bool validate = false;
  bool list_plugins = false;
  bool version = false;
};

void print_plugins(const std::vector<std::string>& search_path) {
  std::vector<std::string> errors;
  const auto plugins = discover_plugins(search_path, errors);
  std::cout << "Plugin search path:\n";
  for (const auto& d : search_path) {
    std::cout << "  " << d << "\n";
  }
  for (const auto& p : plugins) {
    const auto& d = *p.descriptor;
    std::cout << "\n"
              << d.name << " (" << sdk::to_string(d.kind) << ", version " << d.version << ", ABI "
              << d.abi_major << "." << d.abi_minor << ")\n  " << d.description
              << "\n  file: " << p.path << "\n";
    if (d.option_count == 0) {
      std::cout << "  options: none\n";
    }
    auto print = [](auto&& self, const sdk::OptionSpec* opts, std::size_t n,
                    const std::string& indent) -> void {
      for (std::size_t i = 0; i < n; ++i) {
        const auto& o = opts[i];
        std::cout << indent << o.name << " (" << sdk::to_string(o.type);
        if (o.required) {
          std::cout << ", required";
        } else if (o.default_value != nullptr) {
          std::cout << ", default " << (o.default_value[0] == '\0' ? "\"\"" : o.default_value);
        }
        if (o.secret) {
          std::cout << ", secret";
        }
        if (o.choices != nullptr) {
          std::cout << ", one of " << o.choices;
        }
        if (o.min != nullptr) {
          std::cout << ", min " << o.min;
        }
        if (o.max != nullptr) {
          std::cout << ", max " << o.max;
        }
        std::cout << "): " << o.description << "\n";
        if (o.children != nullptr) {
          self(self, o.children, o.child_count, indent + "    ");
        }
      }
    };
    if (d.option_count > 0) {
      std::cout << "  options:\n";
      print(print, d.options, d.option_count, "    ");
    }
    if (p.info->emits_any) {
      std::cout << "  emits: record kinds decided at run time\n";
    }
    for (std::size_t i = 0; i < d.emit_count; ++i) {
      const sdk::KindSpec& k = d.emits[i];
      std::cout << "  emits kind " << k.name << " (schema version " << k.version
                << (k.key_field != nullptr ? std::string(", key ") + k.key_field : std::string())
                << "): " << k.description << "\n";
      for (std::size_t j = 0; j < k.field_count; ++j) {
        const sdk::FieldSpec& f = k.fields[j];
        std::cout << "    " << f.name << " (" << sdk::to_string(f.type)
                  << (f.nullable ? ", nullable" : "")
                  << (f.unit != nullptr && f.unit[0] != '\0' ? std::string(", ") + f.unit
                                                             : std::string())
                  << "): " << f.description << "\n";
      }
    }
    if (d.accept_count > 0) {
      std::cout << "  accepts kinds:";
      for (std::size_t i = 0; i < d.accept_count; ++i) {
        std::cout << " " << d.accepts[i];
      }
      std::cout << "\n";
    }
    if (d.requires_count > 0) {
      std::cout << "  requires fields:";
      for (std::size_t i = 0; i < d.requires_count; ++i) {
        std::cout << " " << d.requires_fields[i].name << " ("
                  << sdk::to_string(d.requires_fields[i].type) << ")";
      }
      std::cout << "\n";
    }
  }
  for (const auto& e : errors) {
    std::cout << "\nrefused: " << e << "\n";
  }
}

int run_agent(const Cli& cli) {
  // Signals are handled by a dedicated thread; every other thread — including threads that
  // plugins start while they are constructed — inherits this mask and has them blocked.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);  // reload: Runtime::reload() on the sources that support it
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  if (!cli.env_file.empty()) {
    load_env_file(cli.env_file);
  }
  PipelineSpec spec = load_pipeline(cli.pipeline, process_env);
  // Relative plugin_dirs are relative to the pipeline file.
  const std::filesystem::path base = std::filesystem::path(cli.pipeline).parent_path();
  std::vector<std::string> config_dirs;
  for (const auto& d : spec.agent.plugin_dirs) {
    const std::filesystem::path p(d);
    config_dirs.push_back(p.is_absolute() ? d : (base / p).lexically_normal().string());
  }
  const auto search_path = plugin_search_path(cli.plugin_dirs, config_dirs);
  Runtime runtime(std::move(spec), search_path);
  runtime.build();

  if (cli.validate) {
    const PipelineSpec& s = runtime.spec();
    std::cout << s.file << ": OK (" << s.components.size() << " components)\n";
    for (const ComponentSpec* c : topological_order(s)) {
      std::cout << "  " << c->describe() << ": plugin " << c->plugin;
      if (!c->inputs.empty()) {
        std::cout << ", inputs";
        for (const auto& i : c->inputs) {
          std::cout << " " << i;
        }
      }
      std::cout << "\n";
    }
    return kExitOk;
  }

  const RuntimeRegistration registration(runtime);
  std::thread signals([set] {
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) {
        continue;
      }
      if (sig == SIGHUP) {
        log(sdk::LogLevel::info, "", "received SIGHUP: reloading the sources that support it");
        std::lock_guard lock(g_runtime_mu);
        if (g_runtime != nullptr) {
          (void)g_runtime->reload();
        }
        continue;
      }
      if (++count == 1) {
        log(sdk::LogLevel::info, "",
            std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                ": stopping sources, draining in-flight records (again to force exit)");
        std::lock_guard lock(g_runtime_mu);
        if (g_runtime != nullptr) {
          g_runtime->request_stop();
        }
      } else {
        log(sdk::LogLevel::error, "", "second signal: exiting without draining");
        flush_logs();
        std::_Exit(kExitRuntime);
      }
    }
  });
  signals.detach();

  if (!runtime.spec().agent.metrics_listen.empty()) {
    try {
      runtime.metrics().serve(runtime.spec().agent.metrics_listen);
      const std::string& listen = runtime.spec().agent.metrics_listen;
      log(sdk::LogLevel::info, "",
          "metrics on http://" + listen.substr(0, listen.rfind(':')) + ":" +
              std::to_string(runtime.metrics().port()) + "/metrics");
    } catch (const std::exception& e) {
      log(sdk::LogLevel::error, "", e.what());
      return kExitRuntime;
    }
  }
  const int code = runtime.run();
  runtime.metrics().stop_serving();
  for (const auto& line : runtime.metrics().summary()) {
    log(sdk::LogLevel::info, "", line);
  }
  if (!runtime.joined()) {
    flush_logs();
    std::_Exit(code);  // 0 only when every undelivered record is safe in a disk buffer
  }
  log(sdk::LogLevel::info, "", code == kExitOk ? "stopped cleanly" : "stopped with errors");
  return code;
}

int run(int argc, char** argv) {
  Cli cli;
  CLI::App app{"webmon-agent: runs a pipeline of source, transform and sink plugins",
               "webmon-agent"};
  app.add_option("--pipeline,-p", cli.pipeline, "pipeline file (YAML)");
  app.add_option("--env-file,-e", cli.env_file,
                 "dotenv file loaded before ${VAR} substitution (environment wins)");
  app.add_option("--plugin-dir", cli.plugin_dirs, "extra plugin directory (repeatable)");
  app.add_option("--log-level", cli.log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  app.add_option("--log-format", cli.log_format, "text or json")->capture_default_str();
  app.add_flag("--validate", cli.validate,
               "check the pipeline, plugins and options without running; exit 0 when valid");
  app.add_flag("--list-plugins", cli.list_plugins, "list the plugins found and their options");
  app.add_flag("--version", cli.version, "print the version and exit");
  app.footer(
      "Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.\n"
      "Plugin search path: --plugin-dir, agent.plugin_dirs, WEBMON_PLUGIN_PATH, built-in.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "webmon-agent: " << e.what() << " (see --help)\n";
    return kExitConfig;
  }

  if (cli.version) {
    std::cout << "webmon-agent " << WEBMON_VERSION << " (plugin SDK " << sdk::kSdkVersion
              << ", provides SDK ABI " << sdk::kAbiMajor << "." << sdk::kAbiMinor << ", build key "
              << sdk::kBuildKey << ")\n";
    return kExitOk;
  }
  sdk::LogLevel level{};
  if (!parse_log_level(cli.log_level, level)) {
    std::cerr << "webmon-agent: --log-level: expected trace, debug, info, warn or error, got '"
              << cli.log_level << "'\n";
    return kExitConfig;
  }
  if (cli.log_format != "text" && cli.log_format != "json") {
    std::cerr << "webmon-agent: --log-format: expected text or json, got '" << cli.log_format
              << "'\n";
    return kExitConfig;
  }
  init_logging(level, cli.log_format == "json" ? LogFormat::json : LogFormat::text);

  if (cli.list_plugins) {
    print_plugins(plugin_search_path(cli.plugin_dirs, {}));
    return kExitOk;
  }
  if (cli.pipeline.empty()) {
    std::cerr << "webmon-agent: --pipeline FILE is required (see --help)\n";
    return kExitConfig;
  }
  try {
    return run_agent(cli);
  } catch (const sdk::ConfigError& e) {
    std::cerr << "webmon-agent: " << e.what() << "\n";
    return kExitConfig;
  } catch (const PluginError& e) {
    std::cerr << "webmon-agent: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "webmon-agent: " << e.what() << "\n";
    return kExitConfig;
  }
}

}  // namespace

// Anything that escapes (an allocation failure while starting, say) ends the agent with a line
// that says so and the runtime exit code, never std::terminate's bare abort.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "webmon-agent: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "webmon-agent: fatal: unknown exception\n");
  }
  return kExitRuntime;
}
