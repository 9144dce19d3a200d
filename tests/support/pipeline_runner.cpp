#include "pipeline_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "env.hpp"
#include "log.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"

extern char** environ;

namespace webmon::testing {
namespace fs = std::filesystem;

namespace {

// posix_spawn with argv and the process environment plus `env` ("NAME=value").
int spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
          const posix_spawn_file_actions_t& actions, pid_t& pid) {
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    envs.emplace_back(*e);
  }
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> cargv;
  for (const auto& a : argv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : envs) {
    cenv.push_back(const_cast<char*>(e.c_str()));
  }
  cenv.push_back(nullptr);
  return ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), cenv.data());
}

}  // namespace

std::string plugin_dir() { return WEBMON_TEST_PLUGIN_DIR; }
std::string agent_binary() { return WEBMON_TEST_AGENT_BIN; }

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "webmon-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string p = path_ + "/" + name;
  std::ofstream out(p, std::ios::binary);
  out << content;
  return p;
}

std::uint64_t PipelineRun::counter(const std::string& component, const std::string& name) const {
  if (!runtime) {
    return 0;
  }
  for (const auto& line : runtime->metrics().summary()) {
    // "kind 'id' (plugin): a=1 b=2"
    if (line.find("'" + component + "'") == std::string::npos) {
      continue;
    }
    const std::string key = " " + name + "=";
    const std::size_t pos = line.find(key);
    if (pos != std::string::npos) {
      return std::stoull(line.substr(pos + key.size()));
    }
  }
  return 0;
}

namespace {
void ensure_logging() {
  static const bool once = [] {
    agent::init_logging(sdk::LogLevel::warn, agent::LogFormat::text);
    return true;
  }();
  (void)once;
}
}  // namespace

PipelineRun run_pipeline(const std::string& yaml, const RunOptions& options) {
  ensure_logging();
  PipelineRun result;
  try {
    auto spec = agent::parse_pipeline(yaml, "pipeline.yaml", agent::process_env);
    std::vector<std::string> dirs = options.plugin_dirs;
    dirs.push_back(plugin_dir());
    result.runtime = std::make_unique<agent::Runtime>(std::move(spec), dirs);
    result.runtime->build();
  } catch (const std::exception& e) {
    result.config_error = e.what();
    result.exit_code = 2;
    result.runtime.reset();
    return result;
  }
  agent::Runtime& rt = *result.runtime;
  std::thread helper;
  if (options.stop_after.count() > 0 || options.during) {
    helper = std::thread([&rt, &options] {
      const auto start = std::chrono::steady_clock::now();
      if (options.during) {
        options.during(rt);
      }
      if (options.stop_after.count() > 0) {
        std::this_thread::sleep_until(start + options.stop_after);
        rt.request_stop();
      }
    });
  }
  result.exit_code = rt.run();
  if (helper.joinable()) {
    helper.join();
  }
  return result;
}

std::string validate_pipeline(const std::string& yaml, const std::vector<std::string>& dirs) {
  ensure_logging();
  try {
    auto spec = agent::parse_pipeline(yaml, "pipeline.yaml", agent::process_env);
    std::vector<std::string> all = dirs;
    all.push_back(plugin_dir());
    agent::Runtime rt(std::move(spec), all);
    rt.build();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::vector<std::string>& env) {
  ProcessResult r;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = spawn(argv, env, actions, pid);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000))) < 0) {
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP)) != 0) {
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        } else {
          (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        }
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) {
      ::close(f.fd);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (killed) {
    r.exit_code = -9;
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = -WTERMSIG(status);
  }
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(text);
  while (std::getline(in, cur)) {
    out.push_back(cur);
  }
  return out;
}

}  // namespace webmon::testing

namespace webmon::testing {

Child::Child(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path, const std::vector<std::string>& env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = 0;
  const int rc = spawn(argv, env, actions, pid);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  pid_ = pid;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

void Child::signal(int sig) const {
  if (pid_ > 0) {
    ::kill(pid_, sig);
  }
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

bool Child::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

}  // namespace webmon::testing
