// A status page with targets in known states, for the browser test and the screenshot in
// docs/. Serves on 127.0.0.1 (any free port, written to PORT_FILE) until SIGTERM/SIGINT.
//
//   status_page_demo PORT_FILE NOW_SECONDS
//
// The page's clock is fixed at NOW_SECONDS. Every target has a check every 10 minutes at
// NOW - k * 10 min for k = 0 … 1007 (7 days), grouped by the label "team" in the order
// web, internal:
//   www      (web)       always up; certificate 80 days
//   api      (web)       down: k < 6 failed (http_status, "HTTP 503 Service Unavailable")
//   search   (web)       flapping: k < 12 and k even failed (timeout); certificate 60 days
//   shop     (web)       always up; certificate expires in 5 days
//   <script>alert(1)</script> (internal)  k == 30 failed (other, "bad <b>tag</b> from
//            https://admin:s3cret@internal.example/"); URL with credentials; certificate 30 days
//   db       (internal)  200 <= k < 206 failed (connect, "Failed to connect to db.internal port
//            5432: Connection refused"); no certificate (plain http)
// tests/browser_test.py replays the same rules to compute the expected figures.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "service.hpp"

namespace sp = webmon::plugins::status_page;

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int /*sig*/) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: status_page_demo PORT_FILE NOW_SECONDS\n";
    return 2;
  }
  const std::int64_t now = std::strtoll(argv[2], nullptr, 10) * 1'000'000LL;
  sp::ServiceOptions o;
  o.listen = sp::ListenAddress{"127.0.0.1", 0};
  o.page.title = "Example Corp status";
  o.page.grouped = true;
  o.page.groups = {"web", "internal"};
  o.page.refresh_seconds = 0;
  o.model.stale_after_us = 3600LL * 1'000'000;
  sp::StatusService service(
      o, [](bool, const std::string& m) { std::cerr << m << "\n"; }, [now] { return now; });
  service.start();

  constexpr std::int64_t kStep = 600LL * 1'000'000;
  constexpr std::int64_t kDay = 86'400LL * 1'000'000;
  const std::string script_name = "<script>alert(1)</script>";
  std::vector<sp::Check> checks;
  for (int k = 1007; k >= 0; --k) {
    const std::int64_t t = now - k * kStep;
    const double jitter = static_cast<double>((k * 7) % 13);
    auto add = [&](std::string_view target, std::string_view url, std::string_view group, bool ok,
                   double ms, std::string_view error, std::string_view message,
                   std::optional<std::int64_t> cert_days) {
      sp::Check c;
      c.target = target;
      c.url = url;
      c.group = group;
      c.time_us = t;
      c.success = ok;
      c.response_time_ms = ms;
      c.status_code = ok ? 200 : 0;
      if (!ok) {
        c.error = error;
        c.error_message = message;
      }
      if (cert_days) {
        c.cert_not_after_us = now + *cert_days * kDay + kDay / 2;
      }
      checks.push_back(c);
    };
    add("www", "https://www.example.com/", "web", true, 40 + jitter, "", "", 80);
    {
      const bool ok = k >= 6;
      add("api", "https://api.example.com/health", "web", ok, ok ? 80 + 2 * jitter : 12,
          "http_status", "HTTP 503 Service Unavailable", 200);
      if (!ok) {
        checks.back().status_code = 503;
      }
    }
    {
      const bool ok = !(k < 12 && k % 2 == 0);
      add("search", "https://search.example.com/", "web", ok, ok ? 150 + 5 * jitter : 5000,
          "timeout", "Operation timed out after 5000 milliseconds", 60);
    }
    add("shop", "https://shop.example.com/", "web", true, 120 + 3 * jitter, "", "", 5);
    add(script_name, "https://admin:s3cret@internal.example/", "internal", k != 30, 25 + jitter,
        "other", "bad <b>tag</b> from https://admin:s3cret@internal.example/", 30);
    add("db", "http://db.internal:8080/health", "internal", !(k >= 200 && k < 206), 8 + jitter,
        "connect", "Failed to connect to db.internal port 5432: Connection refused", std::nullopt);
    for (auto& c : checks) {
      if (!c.success && c.error == "connect") {
        c.response_time_ms = 1;
      }
    }
    service.apply(checks);
    checks.clear();
  }

  {
    std::ofstream port_file(std::string(argv[1]) + ".tmp");
    port_file << service.port() << "\n";
  }
  std::rename((std::string(argv[1]) + ".tmp").c_str(), argv[1]);
  std::cerr << "serving " << service.url() << "\n";

  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  while (g_stop == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  service.stop();
  return 0;
}
