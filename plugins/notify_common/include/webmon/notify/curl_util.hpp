// libcurl helpers shared by webhook_sink and email_sink: global init, TLS options like
// http_check's (tls_verify, ca_file, cert_file, key_file) and the destination as it may be
// logged (scheme://host:port only: webhook URLs often carry a secret in their path).
#pragma once

#include <curl/curl.h>

#include <string>

#include "webmon/sdk/config.hpp"

namespace webmon::notify {

struct TlsOptions {
  bool verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

/// curl_global_init once per process.
void curl_init_once();

/// Reads the TLS options from a component's config; a file that cannot be read is a
/// ConfigError at the option's position.
TlsOptions load_tls(const sdk::ConfigNode& config);

/// Applies TLS options to an easy handle.
void apply_tls(CURL* curl, const TlsOptions& tls);

/// "https://hooks.slack.com:443" for any URL (no path, query or credentials); the input
/// itself when it cannot be parsed.
std::string loggable_destination(const std::string& url);

/// The first `n` bytes of a response body, with control characters replaced, for logs.
std::string first_bytes(const std::string& body, std::size_t n = 200);

}  // namespace webmon::notify
