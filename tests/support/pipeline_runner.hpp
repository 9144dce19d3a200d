// Test support: run a pipeline in-process through the real host (plugin loading, validation,
// runtime), or run the webmon-agent executable as a child process.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime.hpp"

namespace webmon::testing {

/// The built-in plugin directory of this build tree.
std::string plugin_dir();
/// Path of the built webmon-agent executable.
std::string agent_binary();

/// A fresh temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// Writes `content` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct PipelineRun {
  int exit_code = -1;
  std::string config_error;  ///< set when loading/validation threw (exit_code 2)
  /// Runtime after the run (metrics etc.); null on config errors.
  std::unique_ptr<agent::Runtime> runtime;
  /// counter value of a component ("gen", "sent"); 0 when absent.
  [[nodiscard]] std::uint64_t counter(const std::string& component, const std::string& name) const;
};

struct RunOptions {
  /// request_stop() after this long (0 = run until the sources finish).
  std::chrono::milliseconds stop_after{0};
  /// Called on another thread while the pipeline runs (after start), e.g. to kill a server.
  std::function<void(agent::Runtime&)> during;
  /// Extra plugin directories searched before the built-in one.
  std::vector<std::string> plugin_dirs;
};

/// Loads `yaml` (file name "pipeline.yaml" in messages, ${VAR} from the process environment),
/// builds and runs it in-process. Configuration errors are caught into config_error.
PipelineRun run_pipeline(const std::string& yaml, const RunOptions& options = {});

/// Only loads and builds (the equivalent of --validate); returns the error text or "".
std::string validate_pipeline(const std::string& yaml, const std::vector<std::string>& dirs = {});

struct ProcessResult {
  int exit_code = -1;  ///< -signal when killed by a signal
  std::string out;
  std::string err;
};

/// Runs a command (argv[0] is a path) with a deadline; the child is killed (SIGKILL) at the
/// deadline and exit_code is then -9. `env` entries "NAME=value" are added to the environment.
ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60),
                          const std::vector<std::string>& env = {});

/// Reads a whole file ("" when missing).
std::string read_file(const std::string& path);
/// Splits text into lines (no trailing empty line).
std::vector<std::string> lines(const std::string& text);

}  // namespace webmon::testing

namespace webmon::testing {

/// A child process with stdout/stderr redirected to files, for tests that signal or kill it
/// mid-run. The destructor kills (SIGKILL) and reaps a child still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& stdout_path,
        const std::string& stderr_path, const std::vector<std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] int pid() const noexcept { return pid_; }
  void signal(int sig) const;
  /// Waits up to `timeout`; returns the exit code, -signal when killed by a signal, or
  /// nullopt when still running at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();

 private:
  int pid_ = -1;
  std::optional<int> status_;
};

}  // namespace webmon::testing
