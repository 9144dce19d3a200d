// http_check configuration: resolves every target's options (target value, else plugin-level
// value, else default), loads targets_file, applies sharding and validates everything that can
// be checked without network I/O: URLs, regular expressions, status ranges, durations, files.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <thread>
#if defined(__linux__)
#include <sched.h>
#endif
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <span>
#include <stdexcept>

#include "http_check.hpp"
#include "options.hpp"
#include "webmon/common/env.hpp"

namespace webmon::plugins::http_check {
namespace {

using sdk::ConfigError;
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

const OptionSpec* find_spec(std::span<const OptionSpec> specs, std::string_view name) {
  for (const auto& s : specs) {
    if (name == s.name) {
      return &s;
    }
  }
  return nullptr;
}

// ${VAR}, ${VAR:-default}, ${VAR:?message}, $$ -> $ (the pipeline file's rules), for
// targets_file scalars.
std::string substitute_env(const std::string& text, const ConfigNode& at) {
  try {
    return common::substitute(text, common::process_env);
  } catch (const std::runtime_error& e) {
    at.fail(e.what());
  }
}

ConfigNode from_yaml(const YAML::Node& node, const std::string& file) {
  const YAML::Mark m = node.Mark();
  sdk::SourceLocation where{file, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0};
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      ConfigNode n(node.Scalar(), where);
      return ConfigNode(substitute_env(node.Scalar(), n), where);
    }
    case YAML::NodeType::Sequence: {
      ConfigNode n = ConfigNode::make_list(where);
      for (const auto& item : node) {
        n.push_back(from_yaml(item, file));
      }
      return n;
    }
    case YAML::NodeType::Map: {
      ConfigNode n = ConfigNode::make_map(where);
      for (const auto& kv : node) {
        n.set(kv.first.as<std::string>(), from_yaml(kv.second, file));
      }
      return n;
    }
    default: {
      ConfigNode n;
      n.set_where(where);
      return n;
    }
  }
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

std::string resolve_path(const std::string& path, const ConfigNode& at) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) {
    return path;
  }
  const fs::path dir = fs::path(at.where().file).parent_path();
  return dir.empty() ? path : (dir / path).string();
}

ConfigNode load_targets_file(const ConfigNode& option) {
  const std::string path = resolve_path(option.as_string(), option);
  std::ifstream in(path);
  if (!in) {
    option.fail("option 'targets_file': cannot read '" + path + "'");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    option.fail("option 'targets_file': '" + path + "': " + e.what());
  }
  ConfigNode list = from_yaml(root, path);
  if (root.IsNull()) {
    return ConfigNode::make_list(list.where());
  }
  if (!list.is_list()) {
    list.fail("targets_file must hold a YAML list of targets (maps with at least url)");
  }
  for (std::size_t i = 0; i < list.items().size(); ++i) {
    const ConfigNode& item = list.items()[i];
    const std::string who = "targets_file item " + std::to_string(i);
    if (!item.is_map()) {
      item.fail(who + ": expected a map with at least url");
    }
    for (const auto& [key, value] : item.entries()) {
      if (find_spec(kTargetOptions, key) == nullptr) {
        value.fail(who + ": unknown option '" + key + "'");
      }
    }
    if (!item.has("url")) {
      item.fail(who + ": missing required option 'url'");
    }
  }
  return list;
}

void check_readable(const ConfigNode& at, const std::string& prefix, const std::string& option,
                    const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    at.fail(prefix + "option '" + option + "': cannot read '" + path + "'");
  }
}

class TargetBuilder {
 public:
  explicit TargetBuilder(const ConfigNode& plugin) : plugin_(plugin) {}

  Target build(const ConfigNode& item, const std::string& where_in_list) {
    Target t;
    const ConfigNode& url_node = *item.find("url");
    t.url = trim(url_node.as_string());
    t.name = item.has("name") ? item.find("name")->as_string() : t.url;
    prefix_ = "target '" + t.name + "' (" + where_in_list + "): ";
    check_url(url_node, t);
    if (t.name.empty()) {
      item.find("name")->fail(prefix_ + "option 'name' must not be empty");
    }

    if (const ConfigNode* n = pick(item, "interval")) {
      t.interval = n->as_duration();
      if (t.interval.count() <= 0) {
        n->fail(prefix_ + "option 'interval' must be more than 0");
      }
    }
    if (const ConfigNode* n = pick(item, "timeout")) {
      t.timeout = n->as_duration();
      if (t.timeout.count() <= 0) {
        n->fail(prefix_ + "option 'timeout' must be more than 0");
      }
    }
    t.method = "GET";
    if (const ConfigNode* n = pick(item, "method")) {
      t.method = n->as_string();
      for (char& c : t.method) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      const bool token = !t.method.empty() && std::all_of(t.method.begin(), t.method.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
      });
      if (!token) {
        n->fail(prefix_ + "option 'method': '" + n->as_string() + "' is not an HTTP method");
      }
    }
    t.headers = merged_map(item, "headers", true);
    for (const auto& h : t.headers) {
      if (h.find_first_of("\r\n") != std::string::npos || h.front() == ':') {
        pick(item, "headers")->fail(prefix_ + "option 'headers': bad header '" + h + "'");
      }
    }
    if (const ConfigNode* n = pick(item, "body")) {
      t.body = n->as_string();
    }
    if (const ConfigNode* n = pick(item, "expect_status")) {
      const auto items = n->as_string_list();
      try {
        t.expect_status = parse_status_ranges(items);
      } catch (const std::invalid_argument& e) {
        n->fail(prefix_ + "option 'expect_status': " + e.what());
      }
      for (const auto& s : items) {
        t.expect_status_text += (t.expect_status_text.empty() ? "" : ",") + trim(s);
      }
    } else {
      t.expect_status = {{200, 399}};
      t.expect_status_text = "200-399";
    }
    t.body_regex = regex(item, "body_regex");
    t.body_regex_absent = regex(item, "body_regex_absent");
    if (const ConfigNode* n = pick(item, "follow_redirects")) {
      const std::string v = lower(trim(n->as_string()));
      if (const auto b = sdk::parse_bool(v)) {
        t.follow_redirects = *b ? RedirectMode::all : RedirectMode::none;
      } else if (v == "same_host") {
        t.follow_redirects = RedirectMode::same_host;
      } else {
        n->fail(prefix_ + "option 'follow_redirects' must be true, false or same_host, got '" +
                n->as_string() + "'");
      }
    }
    if (const ConfigNode* n = pick(item, "internal_networks")) {
      // Targets that share the plugin-level value share one list.
      const bool shared = n == plugin_.find("internal_networks");
      if (!shared || plugin_networks_ == nullptr) {
        try {
          auto list = std::make_shared<const std::vector<Network>>(parse_networks(
              n->is_null() ? std::vector<std::string>{} : n->as_string_list()));
          (shared ? plugin_networks_ : t.internal_networks) = std::move(list);
        } catch (const std::invalid_argument& e) {
          n->fail(prefix_ + "option 'internal_networks': " + e.what());
        }
      }
      if (shared) {
        t.internal_networks = plugin_networks_;
      }
    } else {
      static const auto kDefault = std::make_shared<const std::vector<Network>>(
          parse_networks({"loopback", "private", "link_local"}));
      t.internal_networks = kDefault;
    }
    t.accept_encoding.clear();
    if (const ConfigNode* n = pick(item, "accept_encoding")) {
      t.accept_encoding = accept_encoding(*n);
    }
    if (const ConfigNode* n = pick(item, "max_redirects")) {
      const std::int64_t v = n->as_int();
      if (v < 0 || v > 1000) {
        n->fail(prefix_ + "option 'max_redirects' must be between 0 and 1000");
      }
      t.max_redirects = static_cast<long>(v);
    }
    if (const ConfigNode* n = pick(item, "tls_verify")) {
      t.tls_verify = n->as_bool();
    }
    t.ca_file = file_option(item, "ca_file");
    t.cert_file = file_option(item, "cert_file");
    t.key_file = file_option(item, "key_file");
    if (!t.key_file.empty() && t.cert_file.empty()) {
      pick(item, "key_file")->fail(prefix_ + "option 'key_file' needs cert_file");
    }
    if (const ConfigNode* n = pick(item, "ip_version")) {
      const std::string v = n->as_string();
      if (v == "any") {
        t.ip_version = IpVersion::any;
      } else if (v == "4") {
        t.ip_version = IpVersion::v4;
      } else if (v == "6") {
        t.ip_version = IpVersion::v6;
      } else {
        n->fail(prefix_ + "option 'ip_version' must be any, 4 or 6, got '" + v + "'");
      }
    }
    if (const ConfigNode* n = pick(item, "proxy")) {
      t.proxy = n->as_string();
    }
    if (const ConfigNode* n = pick(item, "username")) {
      t.username = n->as_string();
    }
    if (const ConfigNode* n = pick(item, "password")) {
      t.password = n->as_string();
    }
    if (const ConfigNode* n = pick(item, "bearer_token")) {
      t.bearer_token = n->as_string();
    }
    if (t.password && !t.username) {
      pick(item, "password")->fail(prefix_ + "option 'password' needs username");
    }
    if (t.bearer_token && t.username) {
      pick(item, "bearer_token")
          ->fail(prefix_ + "options 'bearer_token' and 'username' exclude each other");
    }
    t.max_body_size = 10ULL << 20U;
    if (const ConfigNode* n = pick(item, "max_body_size")) {
      t.max_body_size = n->as_size();
      if (t.max_body_size == 0) {
        n->fail(prefix_ + "option 'max_body_size' must be more than 0");
      }
    }
    if (const ConfigNode* n = pick(item, "max_response_time"); n != nullptr && !n->is_null()) {
      t.max_response_time = n->as_duration();
      if (t.max_response_time->count() <= 0) {
        n->fail(prefix_ + "option 'max_response_time' must be more than 0");
      }
    }
    if (const ConfigNode* n = pick(item, "min_cert_validity"); n != nullptr && !n->is_null()) {
      t.min_cert_validity = n->as_duration();
      if (t.min_cert_validity->count() < 0) {
        n->fail(prefix_ + "option 'min_cert_validity' must not be negative");
      }
    }
    if (const ConfigNode* n = pick(item, "json"); n != nullptr && !n->is_null()) {
      t.json = json_assertions(*n);
    }
    for (const auto& kv : merged_map(item, "labels", false)) {
      const std::size_t eq = kv.find('\n');
      t.labels.insert_or_assign(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return t;
  }

 private:
  // The target's own value, else the plugin-level one (which carries the default).
  const ConfigNode* pick(const ConfigNode& item, std::string_view key) const {
    if (item.has(key)) {
      return item.find(key);
    }
    if (plugin_.has(key)) {
      return plugin_.find(key);
    }
    return nullptr;
  }

  void check_url(const ConfigNode& at, Target& t) const {
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
      at.fail(prefix_ + "option 'url': invalid URL '" + t.url + "': " + problem);
    }
  }

  // Plugin-level map with the target's entries merged over it. Headers as "Name: value"
  // (names compared without case), labels as "name\nvalue".
  std::vector<std::string> merged_map(const ConfigNode& item, std::string_view key,
                                      bool headers) const {
    std::vector<std::pair<std::string, std::string>> out;
    auto add = [&](const ConfigNode* n) {
      if (n == nullptr || n->is_null()) {
        return;
      }
      for (const auto& [k, v] : n->as_string_map()) {
        if (k.empty()) {
          n->fail(prefix_ + "option '" + std::string(key) + "': names must not be empty");
        }
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) {
          return headers ? lower(e.first) == lower(k) : e.first == k;
        });
        if (it != out.end()) {
          it->second = v;
        } else {
          out.emplace_back(k, v);
        }
      }
    };
    add(plugin_.find(key));
    add(item.find(key));
    std::vector<std::string> lines;
    lines.reserve(out.size());
    for (const auto& [k, v] : out) {
      lines.push_back(headers ? k + ": " + v : k + "\n" + v);
    }
    return lines;
  }

  std::shared_ptr<const Regex> regex(const ConfigNode& item, std::string_view key) {
    const ConfigNode* n = pick(item, key);
    if (n == nullptr) {
      return nullptr;
    }
    const std::string& pattern = n->as_string();
    // Targets sharing the plugin-level pattern share one compiled regex.
    auto& cache = n == plugin_.find(key) ? plugin_regex_[std::string(key)] : scratch_;
    if (n != plugin_.find(key) || cache == nullptr) {
      try {
        cache = std::make_shared<const Regex>(pattern);
      } catch (const std::invalid_argument& e) {
        n->fail(prefix_ + "option '" + std::string(key) + "': invalid regular expression '" +
                pattern + "': " + e.what());
      }
    }
    return cache;
  }

  // "all" -> "" (libcurl asks for every encoding it decodes); "identity"; or a list of
  // encodings this libcurl decodes, e.g. "gzip, br".
  std::string accept_encoding(const ConfigNode& n) const {
    const std::string v = lower(trim(n.as_string()));
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
        n.fail(prefix_ + "option 'accept_encoding': '" + item +
               "' is not an encoding this libcurl decodes (" + list +
               "); write all, identity, or a comma-separated list of those");
      }
      out += (out.empty() ? "" : ", ") + item;
    }
    return out;
  }

  // `json`: a list of {pointer, equals, regex} maps (a targets_file item is checked here).
  std::vector<JsonAssertion> json_assertions(const ConfigNode& n) const {
    if (!n.is_list()) {
      n.fail(prefix_ + "option 'json': expected a list of maps such as "
                       "[{pointer: /status, equals: UP}]");
    }
    std::vector<JsonAssertion> out;
    for (std::size_t i = 0; i < n.items().size(); ++i) {
      const ConfigNode& item = n.items()[i];
      const std::string who = prefix_ + "option 'json[" + std::to_string(i) + "]";
      if (!item.is_map()) {
        item.fail(who + "': expected a map with pointer and equals or regex");
      }
      for (const auto& [key, value] : item.entries()) {
        if (find_spec(kJsonAssertionOptions, key) == nullptr) {
          value.fail(who + "': unknown option '" + key + "' (pointer, equals, regex)");
        }
      }
      const ConfigNode* pointer = item.find("pointer");
      if (pointer == nullptr || pointer->is_null()) {
        item.fail(who + "': missing required option 'pointer'");
      }
      JsonAssertion a;
      a.pointer = pointer->as_string();
      try {
        check_json_pointer(a.pointer);
      } catch (const std::invalid_argument& e) {
        pointer->fail(who + ".pointer': " + e.what());
      }
      if (const ConfigNode* eq = item.find("equals"); eq != nullptr && !eq->is_null()) {
        a.equals = eq->as_string();
      }
      if (const ConfigNode* re = item.find("regex"); re != nullptr && !re->is_null()) {
        try {
          a.regex = std::make_shared<const Regex>(re->as_string());
        } catch (const std::invalid_argument& e) {
          re->fail(who + ".regex': invalid regular expression '" + re->as_string() +
                   "': " + e.what());
        }
      }
      if (a.equals && a.regex != nullptr) {
        item.fail(who + "': set equals or regex, not both");
      }
      out.push_back(std::move(a));
    }
    return out;
  }

  std::string file_option(const ConfigNode& item, std::string_view key) const {
    const ConfigNode* n = pick(item, key);
    if (n == nullptr) {
      return {};
    }
    const std::string path = resolve_path(n->as_string(), *n);
    check_readable(*n, prefix_, std::string(key), path);
    return path;
  }

  const ConfigNode& plugin_;
  std::string prefix_;
  std::map<std::string, std::shared_ptr<const Regex>> plugin_regex_;
  std::shared_ptr<const Regex> scratch_;
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
  const int rc = pcre2_match(static_cast<const pcre2_code*>(code_),
                             reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                             static_cast<pcre2_match_data*>(match_data_), nullptr);
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

std::uint64_t stable_hash(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  // Final avalanche so that similar names spread evenly.
  h ^= h >> 33U;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33U;
  return h;
}

Settings parse_settings(const ConfigNode& config) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  Settings s;
  TargetBuilder builder(config);
  std::vector<Target> all;
  std::set<std::string, std::less<>> names;
  auto add = [&](const ConfigNode& item, const std::string& where_in_list) {
    Target t = builder.build(item, where_in_list);
    t.fingerprint = stable_hash(describe(item));
    if (!names.insert(t.name).second) {
      const ConfigNode* at = item.has("name") ? item.find("name") : item.find("url");
      at->fail("target '" + t.name + "' (" + where_in_list +
               "): option 'name': another target has the same name (names must be unique)");
    }
    all.push_back(std::move(t));
  };
  if (const ConfigNode* list = config.find("targets"); list != nullptr && list->is_list()) {
    for (std::size_t i = 0; i < list->items().size(); ++i) {
      add(list->items()[i], "targets[" + std::to_string(i) + "]");
    }
  }
  if (config.has("targets_file")) {
    const ConfigNode& file_option = *config.find("targets_file");
    s.targets_file = resolve_path(file_option.as_string(), file_option);
    const ConfigNode file_list = load_targets_file(*config.find("targets_file"));
    for (std::size_t i = 0; i < file_list.items().size(); ++i) {
      add(file_list.items()[i], "targets_file[" + std::to_string(i) + "]");
    }
  }
  if (all.empty()) {
    config.fail("http_check needs at least one target (option 'targets' or 'targets_file')");
  }
  s.targets_total = all.size();

  if (const ConfigNode* shard = config.find("shard"); shard != nullptr && shard->is_map()) {
    const std::int64_t count = shard->find("count")->as_int();
    const std::int64_t index = shard->find("index")->as_int();
    if (count < 1) {
      shard->find("count")->fail("option 'shard.count' must be 1 or more");
    }
    if (index < 0 || index >= count) {
      shard->find("index")->fail("option 'shard.index' must be between 0 and count - 1 (" +
                                 std::to_string(count - 1) + ")");
    }
    for (auto& t : all) {
      if (stable_hash(t.name) % static_cast<std::uint64_t>(count) ==
          static_cast<std::uint64_t>(index)) {
        s.targets.push_back(std::move(t));
      }
    }
  } else {
    s.targets = std::move(all);
  }

  const std::int64_t conc = config.get_int("max_concurrency", 500);
  if (conc < 1 || conc > 100'000) {
    config.find("max_concurrency")->fail("option 'max_concurrency' must be between 1 and 100000");
  }
  s.max_concurrency = static_cast<long>(conc);
  const std::int64_t threads = config.get_int("threads", 0);
  if (threads < 0 || threads > 64 || threads > conc) {
    config.find("threads")->fail(
        "option 'threads' must be 0 (one per CPU core) or between 1 and 64, and at most "
        "max_concurrency");
  }
  if (threads == 0) {
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
    s.threads = static_cast<int>(std::clamp<std::int64_t>(std::min({cores, conc, targets}), 1, 8));
  } else {
    s.threads = static_cast<int>(threads);
  }
  s.reuse_connections = config.get_bool("reuse_connections", false);
  s.user_agent = config.get_string("user_agent", "webmon-http-check/0.1");
  const std::int64_t batch = config.get_int("batch_size", 500);
  if (batch < 1 || batch > 1'000'000) {
    config.find("batch_size")->fail("option 'batch_size' must be between 1 and 1000000");
  }
  s.batch_size = static_cast<std::size_t>(batch);
  s.flush_interval = config.get_duration("flush_interval", std::chrono::milliseconds(100));
  s.dns_cache = config.get_duration("dns_cache", std::chrono::milliseconds(0));
  if (s.dns_cache.count() < 0) {
    config.find("dns_cache")->fail("option 'dns_cache' must not be negative");
  }
  s.once = config.get_bool("once", false);
  s.targets_file_poll = config.get_duration("targets_file_poll", std::chrono::milliseconds(1000));
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
        for (const char* c : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                              "fc00::/7"}) {
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
