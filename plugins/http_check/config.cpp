// http_check configuration: sdk::load_options() fills the option structs from the table in
// options.hpp (types, defaults, bounds, choices); this file resolves every target's options
// (target value, else plugin-level value, which carries the default), loads targets_file with
// check_common's loader, applies sharding and checks what the table cannot express without
// network I/O: URLs, methods, regular expressions, status ranges, networks, encodings, JSON
// pointers, files, and options that depend on each other.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#if defined(__linux__)
#include <sched.h>
#endif
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>

#include "check_common.hpp"
#include "http_check.hpp"
#include "options.hpp"

namespace webmon::plugins::http_check {
namespace {

namespace cc = check_common;
using sdk::ConfigNode;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])) != 0) {
    ++b;
  }
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])) != 0) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

// A canonical text of a configuration subtree (map keys sorted), to tell whether a target
// changed between two reads of targets_file.
std::string describe(const ConfigNode& n) {
  if (n.is_scalar()) {
    return std::to_string(n.as_string().size()) + ":" + n.as_string();
  }
  if (n.is_list()) {
    std::string out = "[";
    for (const auto& item : n.items()) {
      out += describe(item) + ",";
    }
    return out + "]";
  }
  if (n.is_map()) {
    std::vector<std::pair<std::string, std::string>> kv;
    for (const auto& [k, v] : n.entries()) {
      kv.emplace_back(k, describe(v));
    }
    std::sort(kv.begin(), kv.end());
    std::string out = "{";
    for (const auto& [k, v] : kv) {
      out += std::to_string(k.size()) + ":" + k + "=" + v + ",";
    }
    return out + "}";
  }
  return "~";
}

// Where an option of a target was written: the item's own key, else the plugin-level one.
const ConfigNode* written_at(const ConfigNode& item, const ConfigNode& plugin,
                             std::string_view key) {
  if (const ConfigNode* n = item.find(key); n != nullptr && !n->is_null()) {
    return n;
  }
  if (const ConfigNode* n = plugin.find(key); n != nullptr && !n->is_null()) {
    return n;
  }
  return &plugin;  // a default: the plugin's own position
}

// The target's value, else the plugin-level one (which carries the default).
template <typename T>
const std::optional<T>& pick(const std::optional<T>& own, const std::optional<T>& plugin) {
  return own ? own : plugin;
}

void check_readable(const ConfigNode& at, const std::string& prefix, const std::string& option,
                    const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    at.fail(prefix + "option '" + option + "': cannot read '" + path + "'");
  }
}

// Builds a Target from its loaded options (TargetOptions: the table has checked types,
// bounds and choices) and the plugin-level ones, checking what the table cannot express.
class TargetBuilder {
 public:
  TargetBuilder(const ConfigNode& plugin, const TargetOptions& defaults)
      : plugin_(plugin), d_(defaults) {}

  Target build(const TargetOptions& o, const ConfigNode& item, const std::string& where_in_list) {
    item_ = &item;
    Target t;
    t.url = trim(o.url);
    t.name = o.name.value_or(t.url);
    prefix_ = "target '" + t.name + "' (" + where_in_list + "): ";
    check_url(*at("url"), t);
    if (t.name.empty()) {
      at("name")->fail(prefix_ + "option 'name' must not be empty");
    }
    t.interval = pick(o.interval, d_.interval).value_or(std::chrono::seconds(30));
    t.timeout = pick(o.timeout, d_.timeout).value_or(std::chrono::seconds(10));
    t.method = pick(o.method, d_.method).value_or("GET");
    for (char& c : t.method) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    const bool token =
        !t.method.empty() && std::all_of(t.method.begin(), t.method.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
        });
    if (!token) {
      at("method")->fail(prefix_ + "option 'method': '" + t.method + "' is not an HTTP method");
    }
    t.headers = merged(d_.headers, o.headers, "headers", true);
    for (const auto& h : t.headers) {
      if (h.find_first_of("\r\n") != std::string::npos || h.front() == ':') {
        at("headers")->fail(prefix_ + "option 'headers': bad header '" + h + "'");
      }
    }
    t.body = pick(o.body, d_.body);
    const std::vector<std::string> status =
        pick(o.expect_status, d_.expect_status).value_or(std::vector<std::string>{"200-399"});
    try {
      t.expect_status = parse_status_ranges(status);
    } catch (const std::invalid_argument& e) {
      at("expect_status")->fail(prefix_ + "option 'expect_status': " + e.what());
    }
    for (const auto& s : status) {
      t.expect_status_text += (t.expect_status_text.empty() ? "" : ",") + trim(s);
    }
    t.body_regex = regex(o.body_regex, d_.body_regex, "body_regex", plugin_body_regex_);
    t.body_regex_absent =
        regex(o.body_regex_absent, d_.body_regex_absent, "body_regex_absent", plugin_absent_);
    const std::string follow = pick(o.follow_redirects, d_.follow_redirects).value_or("true");
    t.follow_redirects = follow == "same_host" ? RedirectMode::same_host
                         : follow == "false"   ? RedirectMode::none
                                               : RedirectMode::all;
    t.internal_networks = networks(o.internal_networks);
    t.accept_encoding =
        accept_encoding(pick(o.accept_encoding, d_.accept_encoding).value_or("all"));
    t.max_redirects = static_cast<long>(pick(o.max_redirects, d_.max_redirects).value_or(10));
    t.tls_verify = pick(o.tls_verify, d_.tls_verify).value_or(true);
    t.ca_file = file_option(pick(o.ca_file, d_.ca_file), "ca_file");
    t.cert_file = file_option(pick(o.cert_file, d_.cert_file), "cert_file");
    t.key_file = file_option(pick(o.key_file, d_.key_file), "key_file");
    if (!t.key_file.empty() && t.cert_file.empty()) {
      at("key_file")->fail(prefix_ + "option 'key_file' needs cert_file");
    }
    const std::string ipv = pick(o.ip_version, d_.ip_version).value_or("any");
    t.ip_version = ipv == "4" ? IpVersion::v4 : ipv == "6" ? IpVersion::v6 : IpVersion::any;
    t.proxy = pick(o.proxy, d_.proxy);
    t.username = pick(o.username, d_.username);
    t.password = pick(o.password, d_.password);
    t.bearer_token = pick(o.bearer_token, d_.bearer_token);
    if (t.password && !t.username) {
      at("password")->fail(prefix_ + "option 'password' needs username");
    }
    if (t.bearer_token && t.username) {
      at("bearer_token")
          ->fail(prefix_ + "options 'bearer_token' and 'username' exclude each other");
    }
    t.max_body_size = pick(o.max_body_size, d_.max_body_size).value_or(10ULL << 20U);
    if (const auto& json = pick(o.json, d_.json)) {
      t.json = json_assertions(json->items);
    }
    t.max_response_time = pick(o.max_response_time, d_.max_response_time);
    t.min_cert_validity = pick(o.min_cert_validity, d_.min_cert_validity);
    for (const auto& kv : merged(d_.labels, o.labels, "labels", false)) {
      const std::size_t eq = kv.find('\n');
      t.labels.insert_or_assign(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return t;
  }

 private:
  [[nodiscard]] const ConfigNode* at(std::string_view key) const {
    return written_at(*item_, plugin_, key);
  }

  void check_url(const ConfigNode& where, Target& t) const {
    CURLU* u = curl_url();
    if (u == nullptr) {
      throw std::bad_alloc();
    }
    const CURLUcode rc = curl_url_set(u, CURLUPART_URL, t.url.c_str(), 0);
    std::string problem;
    if (rc != CURLUE_OK) {
      problem = curl_url_strerror(rc);
    } else {
      char* scheme = nullptr;
      char* host = nullptr;
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
      curl_url_get(u, CURLUPART_HOST, &host, 0);
      const std::string s = scheme != nullptr ? lower(scheme) : "";
      if (s != "http" && s != "https") {
        problem = "scheme must be http or https";
      } else if (host == nullptr || *host == '\0') {
        problem = "no host";
      } else {
        t.host = lower(host);
      }
      curl_free(scheme);
      curl_free(host);
    }
    curl_url_cleanup(u);
    if (!problem.empty() || t.url.find_first_of(" \t\r\n") != std::string::npos) {
      if (problem.empty()) {
        problem = "contains white space";
      }
      where.fail(prefix_ + "option 'url': invalid URL '" + t.url + "': " + problem);
    }
  }

  // The plugin-level map with the target's entries merged over it. Headers as "Name: value"
  // (names compared without case), labels as "name\nvalue".
  std::vector<std::string> merged(const std::optional<StringMap>& plugin,
                                  const std::optional<StringMap>& own, std::string_view key,
                                  bool headers) const {
    std::vector<std::pair<std::string, std::string>> out;
    auto add = [&](const std::optional<StringMap>& m) {
      if (!m) {
        return;
      }
      for (const auto& [k, v] : *m) {
        if (k.empty()) {
          at(key)->fail(prefix_ + "option '" + std::string(key) + "': names must not be empty");
        }
        const std::string& name = k;  // (a structured binding is not capturable before C++20)
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) {
          return headers ? lower(e.first) == lower(name) : e.first == name;
        });
        if (it != out.end()) {
          it->second = v;
        } else {
          out.emplace_back(k, v);
        }
      }
    };
    add(plugin);
    add(own);
    std::vector<std::string> lines;
    lines.reserve(out.size());
    for (const auto& [k, v] : out) {
      lines.push_back(headers ? k + ": " + v : k + "\n" + v);
    }
    return lines;
  }

  // A compiled pattern; targets that use the plugin-level pattern share one.
  std::shared_ptr<const Regex> regex(const std::optional<std::string>& own,
                                     const std::optional<std::string>& plugin, std::string_view key,
                                     std::shared_ptr<const Regex>& shared) {
    const std::optional<std::string>& pattern = pick(own, plugin);
    if (!pattern) {
      return nullptr;
    }
    if (!own && shared != nullptr) {
      return shared;
    }
    std::shared_ptr<const Regex> compiled;
    try {
      compiled = std::make_shared<const Regex>(*pattern);
    } catch (const std::invalid_argument& e) {
      at(key)->fail(prefix_ + "option '" + std::string(key) + "': invalid regular expression '" +
                    *pattern + "': " + e.what());
    }
    if (!own) {
      shared = compiled;
    }
    return compiled;
  }

  std::shared_ptr<const std::vector<Network>> networks(
      const std::optional<std::vector<std::string>>& own) {
    if (!own && plugin_networks_ != nullptr) {
      return plugin_networks_;
    }
    const std::vector<std::string> items =
        pick(own, d_.internal_networks)
            .value_or(std::vector<std::string>{"loopback", "private", "link_local"});
    std::shared_ptr<const std::vector<Network>> list;
    try {
      list = std::make_shared<const std::vector<Network>>(parse_networks(items));
    } catch (const std::invalid_argument& e) {
      at("internal_networks")->fail(prefix_ + "option 'internal_networks': " + e.what());
    }
    if (!own) {
      plugin_networks_ = list;  // targets that share the plugin-level value share one list
    }
    return list;
  }

  // "all" -> "" (libcurl asks for every encoding it decodes); "identity"; or a list of
  // encodings this libcurl decodes, e.g. "gzip, br".
  std::string accept_encoding(const std::string& text) const {
    std::string v = lower(trim(text));
    if (v == "all") {
      return "";
    }
    if (v == "identity") {
      return v;
    }
    const auto supported = supported_encodings();
    std::string out;
    std::size_t start = 0;
    while (start <= v.size()) {
      std::size_t comma = v.find(',', start);
      if (comma == std::string::npos) {
        comma = v.size();
      }
      const std::string item = trim(std::string_view(v).substr(start, comma - start));
      start = comma + 1;
      if (std::find(supported.begin(), supported.end(), item) == supported.end()) {
        std::string list;
        for (const auto& e : supported) {
          list += (list.empty() ? "" : ", ") + e;
        }
        at("accept_encoding")
            ->fail(prefix_ + "option 'accept_encoding': '" + item +
                   "' is not an encoding this libcurl decodes (" + list +
                   "); write all, identity, or a comma-separated list of those");
      }
      out += (out.empty() ? "" : ", ") + item;
    }
    return out;
  }

  // `json` items: the pointer's syntax, the regex, and equals/regex excluding each other.
  std::vector<JsonAssertion> json_assertions(const std::vector<JsonAssertionOptions>& items) {
    const ConfigNode* list = at("json");
    std::vector<JsonAssertion> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const ConfigNode* node =
          list->is_list() && i < list->items().size() ? &list->items()[i] : list;
      auto where = [&](std::string_view key) {
        const ConfigNode* n = node->find(key);
        return n != nullptr ? n : node;
      };
      const std::string who = prefix_ + "option 'json[" + std::to_string(i) + "]";
      // load_options() does not look for unknown keys (the host does, but not in targets_file).
      if (node->is_map()) {
        for (const auto& [key, value] : node->entries()) {
          const std::string& name = key;  // (structured bindings are captured from C++20 on)
          const bool known =
              std::any_of(std::begin(kJsonAssertionOptions), std::end(kJsonAssertionOptions),
                          [&](const OptionSpec& spec) { return name == spec.name; });
          if (!known) {
            value.fail(who + "': unknown option '" + key + "' (pointer, equals, regex)");
          }
        }
      }
      JsonAssertion a;
      a.pointer = items[i].pointer;
      try {
        check_json_pointer(a.pointer);
      } catch (const std::invalid_argument& e) {
        where("pointer")->fail(who + ".pointer': " + e.what());
      }
      a.equals = items[i].equals;
      if (items[i].regex) {
        try {
          a.regex = std::make_shared<const Regex>(*items[i].regex);
        } catch (const std::invalid_argument& e) {
          where("regex")->fail(who + ".regex': invalid regular expression '" + *items[i].regex +
                               "': " + e.what());
        }
      }
      if (a.equals && a.regex != nullptr) {
        node->fail(who + "': set equals or regex, not both");
      }
      out.push_back(std::move(a));
    }
    return out;
  }

  std::string file_option(const std::optional<std::string>& value, std::string_view key) const {
    if (!value) {
      return {};
    }
    const ConfigNode* n = at(key);
    std::string path = cc::resolve_path(*value, *n);
    check_readable(*n, prefix_, std::string(key), path);
    return path;
  }

  const ConfigNode& plugin_;
  const TargetOptions& d_;
  const ConfigNode* item_ = nullptr;
  std::string prefix_;
  std::shared_ptr<const Regex> plugin_body_regex_;
  std::shared_ptr<const Regex> plugin_absent_;
  std::shared_ptr<const std::vector<Network>> plugin_networks_;
};

}  // namespace

Regex::Regex(std::string pattern) : pattern_(std::move(pattern)) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(error, buf, sizeof buf);
    throw std::invalid_argument(std::string(reinterpret_cast<const char*>(buf)) + " at offset " +
                                std::to_string(offset));
  }
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
  code_ = code;
  match_data_ = pcre2_match_data_create_from_pattern(code, nullptr);
  if (match_data_ == nullptr) {
    pcre2_code_free(code);
    throw std::bad_alloc();
  }
}

Regex::~Regex() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_));
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

bool Regex::search(std::string_view text) const {
  const int rc =
      pcre2_match(static_cast<const pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(text.data()),
                  text.size(), 0, 0, static_cast<pcre2_match_data*>(match_data_), nullptr);
  return rc >= 0;
}

std::vector<StatusRange> parse_status_ranges(const std::vector<std::string>& items) {
  std::vector<StatusRange> out;
  auto number = [](const std::string& s, const std::string& item) {
    const auto v = sdk::parse_int(s);
    if (!v || *v < 100 || *v > 599) {
      throw std::invalid_argument("'" + item + "' is not a status code or range (100-599)");
    }
    return static_cast<int>(*v);
  };
  for (const auto& raw : items) {
    std::size_t start = 0;
    while (start <= raw.size()) {
      std::size_t comma = raw.find(',', start);
      if (comma == std::string::npos) {
        comma = raw.size();
      }
      const std::string item = trim(std::string_view(raw).substr(start, comma - start));
      start = comma + 1;
      if (item.empty()) {
        throw std::invalid_argument("empty status code in '" + raw + "'");
      }
      const std::size_t dash = item.find('-');
      if (dash == std::string::npos) {
        const int c = number(item, item);
        out.push_back({c, c});
      } else {
        const int lo = number(trim(item.substr(0, dash)), item);
        const int hi = number(trim(item.substr(dash + 1)), item);
        if (lo > hi) {
          throw std::invalid_argument("range '" + item + "' is empty");
        }
        out.push_back({lo, hi});
      }
    }
  }
  if (out.empty()) {
    throw std::invalid_argument("no status codes given");
  }
  return out;
}

bool status_accepted(const std::vector<StatusRange>& ranges, long code) noexcept {
  return std::any_of(ranges.begin(), ranges.end(),
                     [code](const StatusRange& r) { return code >= r.lo && code <= r.hi; });
}

Settings parse_settings(const ConfigNode& config) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  // Types, defaults, bounds and choices from the table: errors name `targets[3].timeout`.
  const auto opts = sdk::load_options<Options>(config, kOptions);
  Settings s;
  TargetBuilder builder(config, opts.defaults);
  std::vector<Target> all;
  std::set<std::string, std::less<>> names;
  auto add = [&](const TargetOptions& o, const ConfigNode& item, const std::string& where_in_list) {
    Target t = builder.build(o, item, where_in_list);
    t.fingerprint = stable_hash(describe(item));
    if (!names.insert(t.name).second) {
      const ConfigNode* at = item.has("name") ? item.find("name") : item.find("url");
      at->fail("target '" + t.name + "' (" + where_in_list +
               "): option 'name': another target has the same name (names must be unique)");
    }
    all.push_back(std::move(t));
  };
  if (const ConfigNode* list = config.find("targets"); list != nullptr && list->is_list()) {
    for (std::size_t i = 0; i < opts.targets.size(); ++i) {
      add(opts.targets[i], list->items()[i], "targets[" + std::to_string(i) + "]");
    }
  }
  if (opts.targets_file) {
    const ConfigNode& option = *config.find("targets_file");
    s.targets_file = cc::resolve_path(*opts.targets_file, option);
    const ConfigNode file_list = cc::load_targets_file(option, kTargetOptions);
    const auto loaded = cc::load_items<TargetOptions>(file_list, kTargetOptions, "targets_file");
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      add(loaded[i], file_list.items()[i], "targets_file[" + std::to_string(i) + "]");
    }
  }
  if (all.empty()) {
    config.fail("http_check needs at least one target (option 'targets' or 'targets_file')");
  }
  s.targets_total = all.size();
  try {
    opts.shard.check();
  } catch (const std::invalid_argument& e) {
    config.find("shard")->fail(e.what());
  }
  s.targets = sdk::filter_shard(std::move(all), opts.shard,
                                [](const Target& t) { return std::string_view(t.name); });

  s.max_concurrency = static_cast<long>(opts.max_concurrency);
  if (opts.threads > opts.max_concurrency) {
    config.find("threads")->fail("option 'threads' (" + std::to_string(opts.threads) +
                                 ") must be at most max_concurrency (" +
                                 std::to_string(opts.max_concurrency) + ")");
  }
  if (opts.threads == 0) {
    // One loop per core this process may run on, at most 8, and no loop without targets.
    std::int64_t cores = 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
      cores = CPU_COUNT(&set);
    }
#else
    cores = std::thread::hardware_concurrency();
#endif
    const auto targets = static_cast<std::int64_t>(std::max<std::size_t>(1, s.targets.size()));
    s.threads = static_cast<int>(
        std::clamp<std::int64_t>(std::min({cores, opts.max_concurrency, targets}), 1, 8));
  } else {
    s.threads = static_cast<int>(opts.threads);
  }
  s.reuse_connections = opts.reuse_connections;
  s.user_agent = opts.user_agent;
  s.batch_size = static_cast<std::size_t>(opts.batch_size);
  s.flush_interval = opts.flush_interval;
  s.dns_cache = opts.dns_cache;
  s.once = opts.once;
  s.targets_file_poll = opts.targets_file_poll;
  return s;
}

namespace {

void add_network(std::vector<Network>& out, const std::string& cidr) {
  const std::size_t slash = cidr.find('/');
  const std::string addr = trim(cidr.substr(0, slash));
  Network n;
  int max_prefix = 128;
  in_addr v4{};
  if (inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    n.addr[10] = 0xff;
    n.addr[11] = 0xff;
    std::memcpy(n.addr + 12, &v4, 4);
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), n.addr) != 1) {
    throw std::invalid_argument("'" + cidr +
                                "' is not an address, a CIDR block (e.g. 10.0.0.0/8) or one of "
                                "loopback, private, link_local, none");
  }
  int prefix = max_prefix;
  if (slash != std::string::npos) {
    const auto p = sdk::parse_int(trim(cidr.substr(slash + 1)));
    if (!p || *p < 0 || *p > max_prefix) {
      throw std::invalid_argument("'" + cidr + "': prefix length must be 0-" +
                                  std::to_string(max_prefix));
    }
    prefix = static_cast<int>(*p);
  }
  n.prefix = max_prefix == 32 ? prefix + 96 : prefix;
  out.push_back(n);
}

bool in_network(const Network& n, const unsigned char* a) noexcept {
  const int full = n.prefix / 8;
  if (std::memcmp(n.addr, a, static_cast<std::size_t>(full)) != 0) {
    return false;
  }
  const int rest = n.prefix % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<unsigned char>(0xff00U >> static_cast<unsigned>(rest));
  return (n.addr[full] & mask) == (a[full] & mask);
}

}  // namespace

std::vector<Network> parse_networks(const std::vector<std::string>& items) {
  std::vector<Network> out;
  for (const auto& raw : items) {
    std::size_t start = 0;
    while (start <= raw.size()) {
      std::size_t comma = raw.find(',', start);
      if (comma == std::string::npos) {
        comma = raw.size();
      }
      const std::string item = lower(trim(std::string_view(raw).substr(start, comma - start)));
      start = comma + 1;
      if (item == "none" && items.size() == 1 && raw.find(',') == std::string::npos) {
        return {};
      }
      if (item == "loopback") {
        // 0.0.0.0/8 and :: reach the local host too.
        for (const char* c : {"127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"}) {
          add_network(out, c);
        }
      } else if (item == "private") {
        // RFC 1918, shared address space (RFC 6598), unique local (RFC 4193).
        for (const char* c :
             {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"}) {
          add_network(out, c);
        }
      } else if (item == "link_local") {
        for (const char* c : {"169.254.0.0/16", "fe80::/10"}) {
          add_network(out, c);
        }
      } else if (item.empty()) {
        throw std::invalid_argument("empty item in '" + raw + "'");
      } else {
        add_network(out, item);
      }
    }
  }
  return out;
}

bool address_in(const std::vector<Network>& networks, std::string_view address) noexcept {
  unsigned char a[16] = {};
  const std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    a[10] = 0xff;
    a[11] = 0xff;
    std::memcpy(a + 12, &v4, 4);
  } else if (inet_pton(AF_INET6, text.c_str(), a) != 1) {
    return false;
  }
  return std::any_of(networks.begin(), networks.end(),
                     [&](const Network& n) { return in_network(n, a); });
}

bool sockaddr_in_networks(const std::vector<Network>& networks, const void* sockaddr) noexcept {
  unsigned char a[16] = {};
  const auto* sa = static_cast<const struct sockaddr*>(sockaddr);
  if (sa->sa_family == AF_INET) {
    const auto* in = static_cast<const sockaddr_in*>(sockaddr);
    a[10] = 0xff;
    a[11] = 0xff;
    std::memcpy(a + 12, &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(a, &static_cast<const sockaddr_in6*>(sockaddr)->sin6_addr, 16);
  } else {
    return false;
  }
  return std::any_of(networks.begin(), networks.end(),
                     [&](const Network& n) { return in_network(n, a); });
}

std::vector<std::string> supported_encodings() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  std::vector<std::string> out;
  if ((info->features & CURL_VERSION_LIBZ) != 0) {
    out.emplace_back("deflate");
    out.emplace_back("gzip");
  }
  if ((info->features & CURL_VERSION_BROTLI) != 0) {
    out.emplace_back("br");
  }
#ifdef CURL_VERSION_ZSTD
  if ((info->features & CURL_VERSION_ZSTD) != 0) {
    out.emplace_back("zstd");
  }
#endif
  return out;
}

std::string_view classify_curl_error(int curl_code) noexcept {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_OK:
      return "";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "dns";
    case CURLE_COULDNT_CONNECT:
      return "connect";
    case CURLE_OPERATION_TIMEDOUT:
      return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return "tls";
    case CURLE_TOO_MANY_REDIRECTS:
      return "too_many_redirects";
    default:
      return "other";
  }
}

}  // namespace webmon::plugins::http_check
