// libcurl helpers shared by webhook_sink and email_sink: global init, TLS options like
// http_check's (tls_verify, ca_file, cert_file, key_file: their option rows are declared once
// here) and the destination as it may be logged (scheme://host:port only: webhook URLs often
// carry a secret in their path).
#pragma once

#include <curl/curl.h>

#include <string>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/options.hpp"

namespace webmon::notify {

struct TlsOptions {
  bool verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

/// curl_global_init once per process.
void curl_init_once();

/// The TLS option rows of both sinks, bound to the members `tls_verify` (bool), `ca_file`,
/// `cert_file` and `key_file` (std::string) of the sink's options struct `Options`:
///   constexpr OptionSpec kOptions[] = {..., WEBMON_NOTIFY_TLS_OPTIONS(Options), ...};
///   const TlsOptions tls = check_tls({o.tls_verify, o.ca_file, o.cert_file, o.key_file}, config);
#define WEBMON_NOTIFY_TLS_OPTIONS(Options)                                                   \
  {.name = "tls_verify",                                                                     \
   .type = ::webmon::sdk::OptionType::boolean,                                               \
   .default_value = "true",                                                                  \
   .required = false,                                                                        \
   .description = "verify the server certificate and host name",                             \
   .assign = ::webmon::sdk::bind<&Options::tls_verify>()},                                   \
      {.name = "ca_file",                                                                    \
       .type = ::webmon::sdk::OptionType::string,                                            \
       .default_value = nullptr,                                                             \
       .required = false,                                                                    \
       .description = "PEM CA bundle to verify the server with (default: the system store)", \
       .assign = ::webmon::sdk::bind<&Options::ca_file>()},                                  \
      {.name = "cert_file",                                                                  \
       .type = ::webmon::sdk::OptionType::string,                                            \
       .default_value = nullptr,                                                             \
       .required = false,                                                                    \
       .description = "PEM client certificate (mutual TLS)",                                 \
       .assign = ::webmon::sdk::bind<&Options::cert_file>()},                                \
  {                                                                                          \
    .name = "key_file", .type = ::webmon::sdk::OptionType::string, .default_value = nullptr, \
    .required = false, .description = "PEM private key of cert_file",                        \
    .assign = ::webmon::sdk::bind<&Options::key_file>()                                      \
  }

/// Checks the TLS options a sink loaded with those rows: each file given (not empty) must be
/// readable, cert_file and key_file go together. A problem is a ConfigError at the option's
/// position in `config` (the sink's configuration).
TlsOptions check_tls(TlsOptions tls, const sdk::ConfigNode& config);

/// Applies TLS options to an easy handle.
void apply_tls(CURL* curl, const TlsOptions& tls);

/// "https://hooks.slack.com:443" for any URL (no path, query or credentials); the input
/// itself when it cannot be parsed.
std::string loggable_destination(const std::string& url);

/// The first `n` bytes of a response body, with control characters replaced, for logs.
std::string first_bytes(const std::string& body, std::size_t n = 200);

}  // namespace webmon::notify
