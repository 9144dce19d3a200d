// dns_check: configuration and the check loop.
//
// One thread runs every check: sdk::Scheduler says which target is due (interval grid with
// spread, no overlap, lateness, skipped slots, once); a check is one UDP socket connected to
// the server, one query with a random id, and the first reply that answers it (other
// datagrams are ignored); one poll() waits for every socket and the stop signal.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "dns_check.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "check_common.hpp"
#include "dns_check_kind.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/scheduler.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::plugins::dns_check {
namespace {

namespace cc = check_common;
using Clock = std::chrono::steady_clock;
using sdk::ConfigNode;
using sdk::Value;

struct Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* md = nullptr;
  ~Regex() {
    pcre2_match_data_free(md);
    pcre2_code_free(code);
  }
};

std::unique_ptr<Regex> compile_regex(const std::string& pattern, std::string* error) {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto r = std::make_unique<Regex>();
  r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err,
                          &off, nullptr);
  if (r->code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    *error = std::string(reinterpret_cast<const char*>(buf)) + " at offset " + std::to_string(off);
    return nullptr;
  }
  r->md = pcre2_match_data_create_from_pattern(r->code, nullptr);
  return r;
}

bool regex_matches(const Regex& r, std::string_view text) {
  return pcre2_match(r.code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, r.md,
                     nullptr) >= 0;
}

std::string strip_dot(std::string s) {
  if (s.size() > 1 && s.back() == '.') {
    s.pop_back();
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

bool parse_server(const std::string& text, sockaddr_storage& out, socklen_t& len,
                  std::string& canonical) {
  std::string host = text;
  std::string port = "53";
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) {
      return false;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return false;
      }
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  const auto p = sdk::parse_int(port);
  if (!p || *p < 1 || *p > 65535) {
    return false;
  }
  out = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(*p));
    len = sizeof *v4;
    canonical = host + ":" + port;
    return true;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(*p));
    len = sizeof *v6;
    canonical = "[" + host + "]:" + port;
    return true;
  }
  return false;
}

std::string system_nameserver(const std::string& resolv_conf) {
  std::ifstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    std::string value;
    if (words >> key >> value && key == "nameserver") {
      return value;
    }
  }
  return {};
}

Settings parse_settings(const ConfigNode& config) {
  // Targets first, so that an error names the item: "option 'targets[3].type' ...".
  std::vector<TargetOptions> listed;
  if (const ConfigNode* list = config.find("targets"); list != nullptr && !list->is_null()) {
    if (!list->is_list()) {
      list->fail("option 'targets': expected a list of maps");
    }
    listed = cc::load_items<TargetOptions>(*list, kTargetOptions, "targets");
  }
  const auto opts = sdk::load_options<Options>(config, kOptions);
  Settings s;
  s.max_concurrency = static_cast<std::size_t>(opts.max_concurrency);
  s.batch_size = static_cast<std::size_t>(opts.batch_size);
  s.flush_interval = opts.flush_interval;
  s.once = opts.once;

  std::vector<std::pair<TargetOptions, const ConfigNode*>> items;
  if (const ConfigNode* list = config.find("targets"); list != nullptr && list->is_list()) {
    for (std::size_t i = 0; i < listed.size(); ++i) {
      items.emplace_back(listed[i], &list->items()[i]);
    }
  }
  ConfigNode file_list;
  if (opts.targets_file) {
    file_list = cc::load_targets_file(*config.find("targets_file"), kTargetOptions);
    auto loaded = cc::load_items<TargetOptions>(file_list, kTargetOptions, "targets_file");
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      items.emplace_back(std::move(loaded[i]), &file_list.items()[i]);
    }
  }
  // An empty targets_file checks nothing (the source idles), so a pipeline can keep the
  // source with no targets of this kind; without targets_file a target is required.
  if (items.empty() && !opts.targets_file) {
    config.fail("dns_check needs at least one target (option 'targets' or 'targets_file')");
  }
  const TargetOptions& d = opts.defaults;
  auto at = [&](const ConfigNode* node, const char* key) {
    const ConfigNode* n = node->find(key);
    return n != nullptr ? n : (config.find(key) != nullptr ? config.find(key) : node);
  };
  std::set<std::string, std::less<>> names;
  std::vector<Target> all;
  for (auto& [o, node] : items) {
    Target t;
    t.query = strip_dot(o.query);
    if (const std::string e = check_name(o.query); !e.empty()) {
      at(node, "query")->fail("option 'query': " + e);
    }
    const std::string type = o.type.value_or(*d.type);
    t.type = *parse_record_type(type);  // the choices allow only known types
    t.name = !o.name.empty() ? o.name : t.query + "/" + to_string(t.type);
    if (!names.insert(t.name).second) {
      node->fail("target '" + t.name +
                 "': another target has the same name (names must be unique; set 'name')");
    }
    const std::optional<std::string> server = o.server ? o.server : d.server;
    std::string server_text;
    if (server) {
      server_text = *server;
    } else {
      server_text = system_nameserver();
      if (server_text.empty()) {
        server_text = "127.0.0.1";
      }
    }
    if (!parse_server(server_text, t.server, t.server_len, t.server_text)) {
      at(node, "server")
          ->fail("option 'server': '" + server_text +
                 "' is not an IP address, IP:port or [IPv6]:port" +
                 (server ? std::string() : std::string(" (from /etc/resolv.conf)")));
    }
    t.interval = o.interval.value_or(*d.interval);
    t.timeout = o.timeout.value_or(*d.timeout);
    for (const auto& e : o.expect ? *o.expect : d.expect.value_or(std::vector<std::string>{})) {
      t.expect.push_back(strip_dot(e));
    }
    t.expect_regex = o.expect_regex ? *o.expect_regex : d.expect_regex.value_or("");
    if (!t.expect_regex.empty()) {
      std::string error;
      if (!compile_regex(t.expect_regex, &error)) {
        at(node, "expect_regex")
            ->fail("option 'expect_regex': invalid PCRE2 regular expression: " + error);
      }
    }
    t.expect_rcode = *parse_rcode(o.expect_rcode.value_or(*d.expect_rcode));
    const auto min = o.min_answers ? o.min_answers : d.min_answers;
    t.min_answers = min ? static_cast<std::size_t>(*min) : (t.expect_rcode == 0 ? 1U : 0U);
    t.recursion = o.recursion.value_or(*d.recursion);
    t.max_response_time = o.max_response_time ? o.max_response_time : d.max_response_time;
    t.labels = d.labels;
    for (const auto& [k, v] : o.labels) {
      t.labels[k] = v;
    }
    all.push_back(std::move(t));
  }
  s.targets_total = all.size();
  try {
    opts.shard.check();
  } catch (const std::invalid_argument& e) {
    config.find("shard")->fail(e.what());
  }
  s.targets = sdk::filter_shard(std::move(all), opts.shard,
                                [](const Target& t) { return std::string_view(t.name); });
  return s;
}

// ---------------------------------------------------------------------------------------------
// The check loop

struct DnsCheckSource::Engine {
  struct Check {
    std::size_t target = 0;
    sdk::Scheduler::Slot slot;
    Clock::time_point started{};
    Clock::time_point deadline{};
    int fd = -1;
    std::uint16_t id = 0;
  };

  Engine(const Settings& s, sdk::Context& c, sdk::Emitter& e)
      : settings(s), ctx(c), output(e, s.batch_size, s.flush_interval), sched(s.once) {
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    for (const auto& t : settings.targets) {
      sched.add(t.name, std::chrono::duration_cast<sdk::Scheduler::Duration>(t.interval));
      std::string error;
      regexes.push_back(t.expect_regex.empty() ? nullptr : compile_regex(t.expect_regex, &error));
    }
    checks_counter = &ctx.counter("checks");
    failed_counter = &ctx.counter("checks_failed");
    skipped_counter = &ctx.counter("checks_skipped_overlap");
    aborted_counter = &ctx.counter("checks_aborted");
    delayed_counter = &ctx.counter("checks_delayed_downstream");
    ignored_counter = &ctx.counter("replies_ignored");
  }
  ~Engine() {
    for (auto& [fd, c] : in_flight) {
      ::close(fd);
    }
    ::close(wake[0]);
    ::close(wake[1]);
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Settings& settings;
  sdk::Context& ctx;
  cc::Output output;
  sdk::Scheduler sched;
  int wake[2] = {-1, -1};
  std::vector<std::unique_ptr<Regex>> regexes;
  std::map<int, Check> in_flight;  // by socket
  std::mt19937 rng{std::random_device{}()};
  sdk::Counter* checks_counter = nullptr;
  sdk::Counter* failed_counter = nullptr;
  sdk::Counter* skipped_counter = nullptr;
  sdk::Counter* aborted_counter = nullptr;
  sdk::Counter* delayed_counter = nullptr;
  sdk::Counter* ignored_counter = nullptr;
  std::size_t delayed_seen = 0;
  sdk::LogLimiter limiter;

  void begin(const sdk::Scheduler::Slot& slot, Clock::time_point now) {
    const Target& t = settings.targets[slot.target];
    Check c;
    c.target = slot.target;
    c.slot = slot;
    c.started = now;
    c.deadline = now + t.timeout;
    c.id = static_cast<std::uint16_t>(rng());
    c.fd = ::socket(t.server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      finish(c, "other", std::string("socket: ") + std::strerror(errno), now, nullptr);
      return;
    }
    const auto query = build_query(c.id, t.query, t.type, t.recursion);
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&t.server), t.server_len) != 0 ||
        ::send(c.fd, query.data(), query.size(), 0) != static_cast<ssize_t>(query.size())) {
      const std::string e = std::strerror(errno);
      ::close(c.fd);
      c.fd = -1;
      finish(c, "connect", "cannot send the query to " + t.server_text + ": " + e, now, nullptr);
      return;
    }
    in_flight.emplace(c.fd, c);
  }

  // The socket is readable: a reply (or an ICMP error). Returns true when the check ended.
  void on_readable(int fd, Clock::time_point now) {
    auto it = in_flight.find(fd);
    if (it == in_flight.end()) {
      return;
    }
    Check c = it->second;
    const Target& t = settings.targets[c.target];
    std::uint8_t buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          return;
        }
        const std::string e = std::strerror(errno);
        close_check(fd);
        finish(c, "connect", "no reply from " + t.server_text + ": " + e, now, nullptr);
        return;
      }
      std::string error;
      auto reply = parse_reply(buf, static_cast<std::size_t>(n), t.query, t.type, error);
      if (reply && reply->id != c.id) {
        ignored_counter->add();  // a late reply to an earlier query, or spoofing: keep waiting
        continue;
      }
      close_check(fd);
      if (!reply) {
        finish(c, "other", "malformed reply from " + t.server_text + ": " + error, now, nullptr);
        return;
      }
      judge(c, *reply, now);
      return;
    }
  }

  void judge(Check& c, const Reply& reply, Clock::time_point now) {
    const Target& t = settings.targets[c.target];
    if (reply.rcode != t.expect_rcode) {
      finish(c, "rcode",
             "rcode " + rcode_text(reply.rcode) + ", expected " + rcode_text(t.expect_rcode), now,
             &reply);
      return;
    }
    if (reply.answers.size() < t.min_answers) {
      finish(c, "answer_mismatch",
             std::to_string(reply.answers.size()) + " " + to_string(t.type) +
                 " answers, expected at least " + std::to_string(t.min_answers),
             now, &reply);
      return;
    }
    auto same = [](const std::string& a, const std::string& b) {
      return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
             });
    };
    for (const auto& want : t.expect) {
      const bool found = std::any_of(reply.answers.begin(), reply.answers.end(),
                                     [&](const Answer& a) { return same(a.text, want); });
      if (!found) {
        finish(c, "answer_mismatch", "expected answer '" + want + "' is missing", now, &reply);
        return;
      }
    }
    if (const auto& re = regexes[c.target]; re != nullptr) {
      const bool any = std::any_of(reply.answers.begin(), reply.answers.end(),
                                   [&](const auto& a) { return regex_matches(*re, a.text); });
      if (!any) {
        finish(c, "answer_mismatch", "no answer matches expect_regex '" + t.expect_regex + "'", now,
               &reply);
        return;
      }
    }
    finish(c, nullptr, "", now, &reply);
  }

  void close_check(int fd) {
    ::close(fd);
    in_flight.erase(fd);
  }

  void finish(Check& c, const char* error, const std::string& given, Clock::time_point now,
              const Reply* reply) {
    const Target& t = settings.targets[c.target];
    std::string message = given;
    // A reply that passed every other condition but came later than max_response_time.
    if (error == nullptr && reply != nullptr) {
      if (auto slow =
              cc::slow_message(cc::ms_between(c.started, now), t.max_response_time, "query")) {
        error = "slow";
        message = std::move(*slow);
      }
    }
    const bool ok = error == nullptr;
    const sdk::Timestamp scheduled = sched.wall_of(c.slot.scheduled);
    sdk::Record r;
    r.kind = "dns_check";
    r.time = scheduled;
    r.id = sdk::make_uuid_v7(scheduled);
    r.fields.reserve(std::size(kDnsCheckFields) - 1);
    r.add("target", t.name);
    r.add("query", t.query);
    r.add("type", std::string(to_string(t.type)));
    r.add("server", t.server_text);
    r.add("agent", ctx.agent_name());
    r.add("success", ok);
    r.add("error", ok ? Value() : Value(std::string(error)));
    r.add("error_message", ok ? Value() : Value(message));
    if (reply != nullptr) {
      std::vector<std::string> texts;
      std::optional<std::uint32_t> min_ttl;
      for (const auto& a : reply->answers) {
        texts.push_back(a.text);
        min_ttl = min_ttl ? std::min(*min_ttl, a.ttl) : a.ttl;
      }
      std::sort(texts.begin(), texts.end());
      std::string joined;
      for (const auto& x : texts) {
        joined += (joined.empty() ? "" : ", ") + x;
      }
      r.add("rcode", rcode_text(reply->rcode));
      r.add("answer_count", static_cast<std::int64_t>(reply->answers.size()));
      r.add("answers", joined);
      r.add("min_ttl", min_ttl ? Value(static_cast<std::int64_t>(*min_ttl)) : Value());
      r.add("authoritative", reply->authoritative);
      r.add("truncated", reply->truncated);
      r.add("query_time_ms", cc::ms_between(c.started, now));
    } else {
      for (const char* f : {"rcode", "answer_count", "answers", "min_ttl", "authoritative",
                            "truncated", "query_time_ms"}) {
        r.add(f, Value());
      }
    }
    r.add("response_time_ms", cc::ms_between(c.started, now));
    r.add("lateness_ms", std::chrono::duration<double, std::milli>(c.slot.lateness).count());
    r.labels = t.labels;
    checks_counter->add();
    if (!ok) {
      failed_counter->add();
    }
    output.add(std::move(r), now);
    skipped_counter->add(sched.finish(c.target, now));
  }

  void wake_up() {
    const char one = 1;
    (void)!::write(wake[1], &one, 1);
  }

  sdk::Status run() {
    sched.start(Clock::now());
    std::vector<pollfd> fds;
    while (!ctx.stop_requested()) {
      auto now = Clock::now();
      if (output.blocked()) {
        const std::size_t due = sched.poll(now);
        if (due > delayed_seen) {
          delayed_counter->add(due - delayed_seen);
        }
        delayed_seen = due;
        limiter.log(ctx, sdk::LogLevel::warn, "delayed",
                    "downstream full: " + std::to_string(due) + " due checks delayed");
      } else {
        delayed_seen = 0;
        while (in_flight.size() < settings.max_concurrency) {
          auto slot = sched.start_next(now);
          if (!slot) {
            break;
          }
          begin(*slot, now);
        }
      }
      if (!output.flush(false, now)) {
        break;
      }
      if (sched.done() && in_flight.empty()) {
        break;
      }
      fds.clear();
      fds.push_back({wake[0], POLLIN, 0});
      auto wake_at = now + std::chrono::seconds(1);
      for (const auto& [fd, c] : in_flight) {
        wake_at = std::min(wake_at, c.deadline);
        fds.push_back({fd, POLLIN, 0});
      }
      if (auto w = sched.next_wakeup();
          w && in_flight.size() < settings.max_concurrency && !output.blocked()) {
        wake_at = std::min(wake_at, *w);
      }
      if (output.blocked()) {
        wake_at = std::min(wake_at, now + std::chrono::milliseconds(50));
      }
      if (auto d = output.deadline()) {
        wake_at = std::min(wake_at, *d);
      }
      const auto wait_us =
          std::chrono::duration_cast<std::chrono::microseconds>(wake_at - now).count();
      const int wait_ms = wait_us <= 0 ? 0 : static_cast<int>((wait_us + 999) / 1000);
      const int n = ::poll(fds.data(), fds.size(), wait_ms);
      if (n < 0 && errno != EINTR) {
        return sdk::Status::error(std::string("poll: ") + std::strerror(errno));
      }
      now = Clock::now();
      if ((fds[0].revents & POLLIN) != 0) {
        char buf[64];
        while (::read(wake[0], buf, sizeof buf) > 0) {
        }
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          on_readable(fds[i].fd, Clock::now());  // fresh: query_time_ms per reply
        }
      }
      std::vector<int> expired;
      for (const auto& [fd, c] : in_flight) {
        if (c.deadline <= now) {
          expired.push_back(fd);
        }
      }
      for (const int fd : expired) {
        Check c = in_flight.at(fd);
        close_check(fd);
        finish(c, "timeout",
               "no reply from " + settings.targets[c.target].server_text + " within " +
                   std::to_string(settings.targets[c.target].timeout.count()) + "ms",
               now, nullptr);
      }
    }
    aborted_counter->add(in_flight.size());
    for (auto& [fd, c] : in_flight) {
      ::close(fd);
    }
    in_flight.clear();
    (void)output.flush(true, Clock::now());
    return sdk::Status::ok();
  }
};

DnsCheckSource::DnsCheckSource(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
    : settings_(parse_settings(config)) {}

DnsCheckSource::~DnsCheckSource() = default;

sdk::Status DnsCheckSource::on_start() {
  engine_ = std::make_unique<Engine>(settings_, ctx(), emitter());
  ctx().info("checking " + std::to_string(settings_.targets.size()) + " DNS targets" +
             (settings_.targets.size() != settings_.targets_total
                  ? " (this shard's share of " + std::to_string(settings_.targets_total) + ")"
                  : std::string()));
  return sdk::Status::ok();
}

sdk::Status DnsCheckSource::on_run() { return engine_->run(); }

void DnsCheckSource::on_stop_requested() {
  if (engine_ != nullptr) {
    engine_->wake_up();
  }
}

}  // namespace webmon::plugins::dns_check
