// Kafka test helpers (see kafka_test_support.hpp).
#include "kafka_test_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "pipeline_runner.hpp"

extern char** environ;

namespace webmon::kafka_test {
namespace {

std::string env_or(const char* name, const std::map<std::string, std::string>& file) {
  if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
    return v;
  }
  auto it = file.find(name);
  return it != file.end() ? it->second : std::string();
}

rd_kafka_conf_t* base_conf() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", Stack::get().plaintext.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  return conf;
}

rd_kafka_t* make(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return rk;
}

}  // namespace

const Stack& Stack::get() {
  static const Stack stack = [] {
    std::map<std::string, std::string> file;
    const char* dir = std::getenv("WEBMON_STACK_DIR");
    std::ifstream in(std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp/webmon-stack") +
                     "/env");
    std::string line;
    while (std::getline(in, line)) {
      const auto eq = line.find('=');
      if (line.empty() || line[0] == '#' || eq == std::string::npos) {
        continue;
      }
      file[line.substr(0, eq)] = line.substr(eq + 1);
    }
    Stack s;
    s.plaintext = env_or("KAFKA_PLAINTEXT_HOST", file);
    s.ssl = env_or("KAFKA_SSL_HOST", file);
    s.sasl = env_or("KAFKA_SASL_HOST", file);
    s.ca = env_or("KAFKA_CAFILE", file);
    s.cert = env_or("KAFKA_CERTFILE", file);
    s.key = env_or("KAFKA_KEYFILE", file);
    s.sasl_user = env_or("KAFKA_SASL_USER", file);
    s.sasl_password = env_or("KAFKA_SASL_PASSWORD", file);
    if (s.plaintext.empty()) {
      throw std::runtime_error(
          "no Kafka stack: KAFKA_PLAINTEXT_HOST unset and no $WEBMON_STACK_DIR/env "
          "(run scripts/stack up)");
    }
    return s;
  }();
  return stack;
}

std::string source_dir() { return WEBMON_KAFKA_TEST_SOURCE_DIR; }

std::string create_topic(const std::string& prefix, int partitions) {
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  const std::string name = prefix + "." + suffix;
  rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, base_conf());
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, nullptr, 0);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30'000);
  std::string error;
  if (ev == nullptr) {
    error = "timed out";
  } else {
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** tr = rd_kafka_CreateTopics_result_topics(res, &n);
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = rd_kafka_event_error_string(ev);
    } else if (n == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = rd_kafka_topic_result_error_string(tr[0]);
    }
    rd_kafka_event_destroy(ev);
  }
  // Wait until the metadata shows every partition with a leader.
  bool ready = false;
  for (int i = 0; i < 100 && error.empty() && !ready; ++i) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, name.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
      for (int p = 0; ready && p < md->topics[0].partition_cnt; ++p) {
        ready = md->topics[0].partitions[p].leader >= 0;
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (!ready) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  if (!error.empty() || !ready) {
    throw std::runtime_error("cannot create topic " + name + ": " +
                             (error.empty() ? "not ready" : error));
  }
  return name;
}

void produce_raw(const std::string& topic, const std::vector<RawMessage>& messages,
                 std::int32_t partition) {
  rd_kafka_conf_t* conf = base_conf();
  char err[256];
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(conf, "message.max.bytes", "4000000", err, sizeof err);
  rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, conf);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  for (const auto& m : messages) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(m.headers.size() + 1);
    for (const auto& [k, v] : m.headers) {
      rd_kafka_header_add(h, k.c_str(), -1, v.data(), static_cast<ssize_t>(v.size()));
    }
    rd_kafka_vu_t vu[6];
    vu[0].vtype = RD_KAFKA_VTYPE_RKT;
    vu[0].u.rkt = rkt;
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = partition;
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem.ptr = const_cast<char*>(m.value.data());
    vu[2].u.mem.size = m.value.size();
    vu[3].vtype = RD_KAFKA_VTYPE_KEY;
    vu[3].u.mem.ptr = m.has_key ? const_cast<char*>(m.key.data()) : nullptr;
    vu[3].u.mem.size = m.has_key ? m.key.size() : 0;
    vu[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[4].u.i = RD_KAFKA_MSG_F_COPY;
    vu[5].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[5].u.headers = h;
    rd_kafka_error_t* e = rd_kafka_produceva(rk, vu, 6);
    if (e != nullptr) {
      const std::string what = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      throw std::runtime_error("produce: " + what);
    }
  }
  if (rd_kafka_flush(rk, 30'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("produce: flush timed out");
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
}

std::vector<RawMessage> consume_raw(const std::string& topic, std::size_t count,
                                    std::chrono::milliseconds timeout) {
  rd_kafka_conf_t* conf = base_conf();
  char err[256];
  const std::string group = "raw-reader-" + std::to_string(std::random_device{}());
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, conf);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  int partitions = 1;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (md->topic_cnt == 1 && md->topics[0].partition_cnt > 0) {
      partitions = md->topics[0].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<RawMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) {
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      RawMessage r;
      r.has_key = m->key != nullptr;
      if (r.has_key) {
        r.key.assign(static_cast<const char*>(m->key), m->key_len);
      }
      if (m->payload != nullptr) {
        r.value.assign(static_cast<const char*>(m->payload), m->len);
      }
      r.partition = m->partition;
      r.offset = m->offset;
      rd_kafka_headers_t* h = nullptr;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* val = nullptr;
        size_t size = 0;
        for (size_t i = 0;
             rd_kafka_header_get_all(h, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
          r.headers[name] = val != nullptr ? std::string(static_cast<const char*>(val), size) : "";
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

std::vector<std::int64_t> committed_offsets(const std::string& group, const std::string& topic,
                                            int partitions) {
  rd_kafka_conf_t* conf = base_conf();
  char err[256];
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, conf);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  }
  std::vector<std::int64_t> out(static_cast<std::size_t>(partitions), -2);
  if (rd_kafka_committed(rk, list, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      out[static_cast<std::size_t>(list->elems[i].partition)] =
          list->elems[i].offset < 0 ? -1 : list->elems[i].offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  return out;
}

std::vector<std::string> ids_of(const std::vector<std::string>& lines) {
  std::vector<std::string> ids;
  ids.reserve(lines.size());
  for (const auto& l : lines) {
    const auto pos = l.find("\"id\":\"");
    if (pos != std::string::npos) {
      ids.push_back(l.substr(pos + 6, 36));
    }
  }
  return ids;
}

Agent::Agent(const std::string& pipeline_file, const std::string& log_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string bin = testing::agent_binary();
  std::vector<std::string> args = {bin, "--pipeline", pipeline_file, "--log-level", "info"};
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn failed");
  }
}

Agent::~Agent() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

void Agent::signal(int sig) {
  if (!reaped_) {
    ::kill(pid_, sig);
  }
}

std::optional<int> Agent::wait(std::chrono::milliseconds timeout) {
  if (!reaped_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (WIFEXITED(status_)) {
    return WEXITSTATUS(status_);
  }
  return -WTERMSIG(status_);
}

}  // namespace webmon::kafka_test
