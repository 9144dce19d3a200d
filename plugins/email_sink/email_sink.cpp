// email_sink: sends each record (an alert, or any record) as a plain-text email by SMTP with
// libcurl: STARTTLS or implicit TLS (smtps://), AUTH, several recipients, subject and body
// templates. One message per record; a batch is delivered once every message was accepted.
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "webmon/notify/curl_util.hpp"
#include "webmon/notify/template.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::email_sink {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

constexpr const char* kDefaultBody =
    "{{summary}}\n"
    "\n"
    "target:               {{target}}\n"
    "check kind:           {{check_kind}}\n"
    "state:                {{state}}\n"
    "incident:             {{incident_id}}\n"
    "since:                {{since}}\n"
    "duration (ms):        {{duration_ms}}\n"
    "consecutive failures: {{consecutive_failures}}\n"
    "locations failing:    {{locations_failing}}\n"
    "last error:           {{last_error}} {{last_status_code}} {{last_error_message}}\n"
    "decided by agent:     {{agent}}\n"
    "\n"
    "-- \n"
    "webmon\n";

struct Options {
  std::string url;
  std::string starttls;
  std::string username;
  std::string password;
  std::string from;
  std::vector<std::string> to;
  std::string subject_template;
  std::optional<std::string> body_template;
  bool tls_verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds timeout{};
};

// Declared once: the host checks types, bounds and choices and fills the defaults;
// load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "url",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "SMTP server: smtp://host:587 (STARTTLS per `starttls`) or smtps://host:465 "
                    "(implicit TLS)",
     .assign = sdk::bind<&Options::url>()},
    {.name = "starttls",
     .type = OptionType::string,
     .default_value = "try",
     .required = false,
     .description = "with smtp://: required (fail without STARTTLS), try, or never",
     .choices = "required|try|never",
     .assign = sdk::bind<&Options::starttls>()},
    {.name = "username",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "SMTP AUTH user name (no AUTH when unset)",
     .assign = sdk::bind<&Options::username>()},
    {.name = "password",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "SMTP AUTH password (use ${VAR})",
     .secret = true,
     .assign = sdk::bind<&Options::password>()},
    {.name = "from",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "sender address, e.g. webmon@example.com",
     .assign = sdk::bind<&Options::from>()},
    {.name = "to",
     .type = OptionType::string_list,
     .default_value = nullptr,
     .required = true,
     .description = "recipient addresses",
     .min = "1",
     .max = "100",
     .assign = sdk::bind<&Options::to>()},
    {.name = "subject_template",
     .type = OptionType::string,
     .default_value = "{{summary}}",
     .required = false,
     .description = "subject with {{placeholders}}",
     .assign = sdk::bind<&Options::subject_template>()},
    {.name = "body_template",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "body with {{placeholders}} (default: a summary and every alert field)",
     .assign = sdk::bind<&Options::body_template>()},
    WEBMON_NOTIFY_TLS_OPTIONS(Options),
    {.name = "timeout",
     .type = OptionType::duration,
     .default_value = "30s",
     .required = false,
     .description = "whole SMTP session of one message",
     .min = "1ms",
     .max = "10m",
     .assign = sdk::bind<&Options::timeout>()},
};

std::string one_line(std::string s) {
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return s;
}

/// RFC 2047 encoded-word when the text is not plain ASCII.
std::string header_text(const std::string& s) {
  const bool ascii =
      std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    return s;
  }
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "=?UTF-8?B?";
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(s[i]) << 16) |
                       (static_cast<unsigned char>(s[i + 1]) << 8) |
                       static_cast<unsigned char>(s[i + 2]);
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
  }
  if (i + 1 == s.size()) {
    const unsigned v = static_cast<unsigned char>(s[i]) << 16;
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == s.size()) {
    const unsigned v =
        (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8);
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
  }
  return out + "?=";
}

std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) {
      out += '\r';
    }
    out += text[i];
  }
  return out;
}

struct Upload {
  const std::string* data;
  std::size_t offset = 0;
};

std::size_t on_read(char* buffer, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const std::size_t len = std::min(size * n, u->data->size() - u->offset);
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result): libcurl's buffer is a byte count
  std::memcpy(buffer, u->data->data() + u->offset, len);
  u->offset += len;
  return len;
}

class EmailSink final : public sdk::Sink {
 public:
  EmailSink(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)),
        tls_(notify::check_tls({o_.tls_verify, o_.ca_file, o_.cert_file, o_.key_file}, config)) {
    notify::curl_init_once();
    if (o_.url.rfind("smtp://", 0) != 0 && o_.url.rfind("smtps://", 0) != 0) {
      config.find("url")->fail("option 'url': expected smtp://host:port or smtps://host:port");
    }
    use_ssl_ = o_.starttls == "required" ? CURLUSESSL_ALL
               : o_.starttls == "never"  ? CURLUSESSL_NONE
                                         : CURLUSESSL_TRY;
    if (o_.url.rfind("smtps://", 0) == 0) {
      use_ssl_ = CURLUSESSL_ALL;
    }
    for (const auto& address : o_.to) {
      if (address.find('@') == std::string::npos ||
          address.find_first_of("\r\n<> ") != std::string::npos) {
        config.find("to")->fail("option 'to': '" + address + "' is not an email address");
      }
    }
    if (o_.from.find('@') == std::string::npos ||
        o_.from.find_first_of("\r\n<> ") != std::string::npos) {
      config.find("from")->fail("option 'from': '" + o_.from + "' is not an email address");
    }
    // Template errors name the option's position (the component's, for the defaults).
    auto where = [&](const char* name) -> const sdk::ConfigNode& {
      const sdk::ConfigNode* n = config.find(name);
      return n != nullptr && !n->is_null() ? *n : config;
    };
    subject_ =
        notify::Template(o_.subject_template, notify::Escape::none, where("subject_template"));
    body_ = notify::Template(o_.body_template.value_or(kDefaultBody), notify::Escape::none,
                             where("body_template"));
    destination_ = notify::loggable_destination(o_.url);
  }

  ~EmailSink() override {
    if (curl_ != nullptr) {
      curl_easy_cleanup(curl_);
    }
  }
  EmailSink(const EmailSink&) = delete;
  EmailSink& operator=(const EmailSink&) = delete;

 protected:
  sdk::Status on_start() override {
    curl_ = curl_easy_init();
    if (curl_ == nullptr) {
      return sdk::Status::error("curl_easy_init failed");
    }
    char host[256] = "localhost";
    ::gethostname(host, sizeof host - 1);
    hostname_ = host;
    ctx().info("sending mail through " + destination_ + " to " + std::to_string(o_.to.size()) +
               " recipient(s)");
    return sdk::Status::ok();
  }

  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override {
    bool retry = false;
    bool rejected = false;
    for (const auto& r : batch.records) {
      if (!r.id.empty() && answered_.contains(r.id)) {
        continue;
      }
      const auto s = send(r);
      if (s == sdk::AckStatus::retryable) {
        retry = true;
        break;
      }
      rejected |= s == sdk::AckStatus::rejected;
      remember(r.id);
    }
    ack.resolve(retry      ? sdk::AckStatus::retryable
                : rejected ? sdk::AckStatus::rejected
                           : sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }

 private:
  std::string message(const sdk::Record& r) const {
    char date[64];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    std::string to;
    for (const auto& a : o_.to) {
      to += (to.empty() ? "" : ", ") + a;
    }
    std::string m;
    m += "Date: " + std::string(date) + "\r\n";
    m += "From: " + o_.from + "\r\n";
    m += "To: " + to + "\r\n";
    m += "Subject: " + header_text(one_line(subject_.render(r))) + "\r\n";
    m += "Message-ID: <" + (r.id.empty() ? std::to_string(now) : r.id) + "@" + hostname_ + ">\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: text/plain; charset=utf-8\r\n";
    m += "Content-Transfer-Encoding: 8bit\r\n";
    m += "X-Webmon-Kind: " + one_line(r.kind) + "\r\n";
    m += "\r\n";
    m += crlf(body_.render(r));
    return m;
  }

  sdk::AckStatus send(const sdk::Record& r) {
    const std::string data = message(r);
    Upload upload{&data};
    curl_slist* rcpt = nullptr;
    for (const auto& a : o_.to) {
      rcpt = curl_slist_append(rcpt, ("<" + a + ">").c_str());
    }
    const std::string from = "<" + o_.from + ">";
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, o_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_USE_SSL, static_cast<long>(use_ssl_));
    curl_easy_setopt(curl_, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(curl_, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl_, CURLOPT_READFUNCTION, &on_read);
    curl_easy_setopt(curl_, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout.count()));
    if (!o_.username.empty()) {
      curl_easy_setopt(curl_, CURLOPT_USERNAME, o_.username.c_str());
      curl_easy_setopt(curl_, CURLOPT_PASSWORD, o_.password.c_str());
    }
    notify::apply_tls(curl_, tls_);
    ctx().counter("messages").add();
    const CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(rcpt);
    if (rc == CURLE_OK) {
      ctx().counter("messages_sent").add();
      return sdk::AckStatus::delivered;
    }
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    const bool permanent = (code >= 500 && code < 600) || rc == CURLE_LOGIN_DENIED;
    ctx().counter(permanent ? "messages_rejected" : "messages_retryable").add();
    limiter_.log(ctx(), permanent ? sdk::LogLevel::error : sdk::LogLevel::warn,
                 permanent ? "rejected" : "retryable",
                 destination_ + ": " + curl_easy_strerror(rc) +
                     (code != 0 ? " (SMTP " + std::to_string(code) + ")" : std::string()) +
                     (permanent ? "; record " + r.id + " is rejected"
                                : std::string("; the batch will be retried")));
    return permanent ? sdk::AckStatus::rejected : sdk::AckStatus::retryable;
  }

  void remember(const std::string& id) {
    if (id.empty()) {
      return;
    }
    answered_.insert(id);
    order_.push_back(id);
    if (order_.size() > 100'000) {
      answered_.erase(order_.front());
      order_.pop_front();
    }
  }

  Options o_;
  notify::TlsOptions tls_;
  curl_usessl use_ssl_ = CURLUSESSL_TRY;
  notify::Template subject_;
  notify::Template body_;
  std::string destination_;
  std::string hostname_;
  CURL* curl_ = nullptr;
  std::unordered_set<std::string> answered_;
  std::deque<std::string> order_;
  sdk::LogLimiter limiter_{std::chrono::seconds(10)};
};

}  // namespace
}  // namespace webmon::plugins::email_sink

WEBMON_PLUGIN_SINK(webmon::plugins::email_sink::EmailSink, "email_sink", "1.0.0",
                   "Sends records (alerts) by SMTP: STARTTLS/TLS, AUTH, templates",
                   webmon::plugins::email_sink::kOptions, webmon::sdk::KindFacts{})
