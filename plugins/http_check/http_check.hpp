// http_check source: checks HTTP(S) targets on their own intervals with libcurl's multi
// interface (one thread, event-driven) and emits one http_check record per check.
//
// Contract (README.md and docs/wire-format.md, http_check record): every record carries all
// fields of the table, with null where a value does not exist; `time` is the scheduled start;
// `error` is one of kErrorClasses. Construction parses and validates the whole configuration
// (including targets_file) and never touches the network; checks start in run(). targets_file
// is reloaded while running (on SIGHUP and when the file changes): see Reloader in
// http_check.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::http_check {

/// A compiled PCRE2 pattern (JIT when available). Not thread-safe: used by the check loop only.
class Regex {
 public:
  /// Throws std::invalid_argument with PCRE2's message and offset.
  explicit Regex(std::string pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  [[nodiscard]] bool search(std::string_view text) const;
  [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;        // pcre2_code_8*
  void* match_data_ = nullptr;  // pcre2_match_data_8*
};

struct StatusRange {
  int lo;
  int hi;
};

/// Parses items such as "200", "200-399", "301-302,404" into ranges; throws
/// std::invalid_argument naming the bad item.
std::vector<StatusRange> parse_status_ranges(const std::vector<std::string>& items);
bool status_accepted(const std::vector<StatusRange>& ranges, long code) noexcept;

enum class IpVersion : std::uint8_t { any, v4, v6 };

/// follow_redirects: no, yes (any http(s) URL), or only to the same host name.
enum class RedirectMode : std::uint8_t { none, all, same_host };

/// An address block (CIDR) of internal_networks. IPv4 blocks are stored as IPv4-mapped IPv6.
struct Network {
  unsigned char addr[16] = {};
  int prefix = 0;  // of the 128 bits
};

/// Parses internal_networks items: CIDRs ("10.0.0.0/8", "fd00::/8"), single addresses, and
/// the names loopback, private, link_local; "none" alone is the empty list. Throws
/// std::invalid_argument naming the bad item.
std::vector<Network> parse_networks(const std::vector<std::string>& items);
/// Whether a textual IPv4/IPv6 address lies in one of `networks` (false for non-addresses).
bool address_in(const std::vector<Network>& networks, std::string_view address) noexcept;
/// The same for a socket address (sockaddr_in or sockaddr_in6).
bool sockaddr_in_networks(const std::vector<Network>& networks, const void* sockaddr) noexcept;

/// Content encodings this libcurl decodes, in the order it asks for them (e.g. "deflate, gzip,
/// br, zstd" on Debian 12).
std::vector<std::string> supported_encodings();

/// One item of `json`: the value at `pointer` must exist and, when given, equal `equals` or
/// match `regex` (both compared with the value's text: a string's content, any other value as
/// compact JSON).
struct JsonAssertion {
  std::string pointer;
  std::optional<std::string> equals;
  std::shared_ptr<const Regex> regex;
};

/// The failure of the `json` assertions on `body`: {"json_invalid" | "json_mismatch",
/// message}, or nullopt when every assertion holds.
std::optional<std::pair<std::string_view, std::string>> check_json(
    const std::vector<JsonAssertion>& assertions, std::string_view body);

/// Throws std::invalid_argument when `pointer` is not a JSON pointer (RFC 6901).
void check_json_pointer(const std::string& pointer);

/// One target with every option resolved (target value, else plugin-level value or default).
struct Target {
  std::string name;
  std::string url;
  std::string host;  // from the URL, lower case
  std::string method;
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds timeout{};
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  std::vector<StatusRange> expect_status;
  std::string expect_status_text;  // as configured, for messages
  std::shared_ptr<const Regex> body_regex;
  std::shared_ptr<const Regex> body_regex_absent;
  RedirectMode follow_redirects = RedirectMode::all;
  long max_redirects = 10;
  // A redirect from an address outside these may not lead to one inside.
  std::shared_ptr<const std::vector<Network>> internal_networks;
  std::string accept_encoding;  // CURLOPT_ACCEPT_ENCODING: "" = every supported encoding
  bool tls_verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  IpVersion ip_version = IpVersion::any;
  std::optional<std::string> proxy;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> bearer_token;
  std::uint64_t max_body_size = 0;
  std::vector<JsonAssertion> json;
  std::optional<std::chrono::milliseconds> max_response_time;  // unset: no limit
  std::optional<std::chrono::milliseconds> min_cert_validity;  // unset: off
  sdk::Labels labels;
  std::uint64_t fingerprint = 0;  // hash of the target's configuration: a change on reload
};

struct Settings {
  std::vector<Target> targets;    // after sharding
  std::size_t targets_total = 0;  // before sharding
  long max_concurrency = 500;
  int threads = 1;  // check loops; target i belongs to loop i % threads
  bool reuse_connections = false;
  std::chrono::milliseconds dns_cache{0};
  std::string user_agent;
  std::size_t batch_size = 500;
  std::chrono::milliseconds flush_interval{100};
  bool once = false;
  std::string targets_file;                           // resolved path; "" without targets_file
  std::chrono::milliseconds targets_file_poll{1000};  // 0: reload on SIGHUP only
};

/// Parses and validates the (host-validated, defaults filled) plugin configuration. Throws
/// sdk::ConfigError naming the position, the target and the option.
Settings parse_settings(const sdk::ConfigNode& config);

/// The fixed error classes (README.md, "Error classes"; common/src/schema.cpp has the same
/// list for the consumers). When several conditions fail, the first in this order is reported:
/// transport (dns … other), http_status, body_mismatch, json_invalid, json_mismatch, slow,
/// cert_expiring.
inline constexpr std::string_view kErrorClasses[] = {
    // transport and redirects
    "dns", "connect", "timeout", "tls", "too_many_redirects", "other",
    // conditions on the response, in the order they are checked
    "http_status", "body_mismatch", "json_invalid", "json_mismatch", "slow", "cert_expiring"};

/// Error class of a libcurl result code (CURLcode as int); "" for CURLE_OK.
std::string_view classify_curl_error(int curl_code) noexcept;

/// Deterministic 64-bit hash used for start offsets, sharding and target fingerprints: the
/// SDK's, shared with every check (webmon/sdk/scheduler.hpp).
using sdk::stable_hash;

class HttpCheckSource final : public sdk::Source {
 public:
  HttpCheckSource(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~HttpCheckSource() override;
  HttpCheckSource(const HttpCheckSource&) = delete;
  HttpCheckSource& operator=(const HttpCheckSource&) = delete;

 protected:
  sdk::Status on_start() override;
  sdk::Status on_run() override;
  void on_stop_requested() override;
  /// SIGHUP (through the host): re-read targets_file.
  sdk::Status on_reload() override;
  void on_acknowledge(std::uint64_t token, sdk::AckStatus status) override;

 private:
  struct Engine;
  struct Shared;
  struct Reloader;
  sdk::ConfigNode config_;  // kept to re-resolve targets_file on reload
  Settings settings_;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::unique_ptr<Reloader> reloader_;
};

}  // namespace webmon::plugins::http_check
