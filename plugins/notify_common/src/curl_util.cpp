// libcurl helpers shared by the notifying sinks (see curl_util.hpp).
#include "webmon/notify/curl_util.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

namespace webmon::notify {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

TlsOptions check_tls(TlsOptions tls, const sdk::ConfigNode& config) {
  for (auto [name, file] :
       {std::pair{"ca_file", &tls.ca_file}, std::pair{"cert_file", &tls.cert_file},
        std::pair{"key_file", &tls.key_file}}) {
    if (file->empty()) {
      continue;
    }
    std::ifstream in(*file);
    if (!in) {
      const sdk::ConfigNode* at = config.find(name);
      (at != nullptr ? *at : config)
          .fail(std::string("option '") + name + "': cannot read '" + *file +
                "': " + std::strerror(errno));
    }
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    config.fail("options 'cert_file' and 'key_file' go together: set both or neither");
  }
  return tls;
}

void apply_tls(CURL* curl, const TlsOptions& tls) {
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
  if (!tls.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca_file.c_str());
  }
  if (!tls.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.key_file.c_str());
  }
}

std::string loggable_destination(const std::string& url) {
  CURLU* u = curl_url();
  std::string out = "(unparsable URL)";
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme != nullptr && host != nullptr) {
      out = std::string(scheme) + "://" + host + (port != nullptr ? ":" + std::string(port) : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

std::string first_bytes(const std::string& body, std::size_t n) {
  std::string out = body.substr(0, n);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  if (body.size() > n) {
    out += "...";
  }
  return out;
}

}  // namespace webmon::notify
