// status_page benchmark: fills the model with N targets and 7 days of hourly history plus a
// full sparkline each, then measures the HTML and JSON render time, the apply rate of the
// core, the snapshot size and write/read time, and the memory the state takes (RSS growth).
// Prints `status_page.<what> key=value …` lines. Usage: status_page_bench [TARGETS] [RECORDS]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "model.hpp"
#include "render.hpp"
#include "snapshot.hpp"

namespace sp = webmon::plugins::status_page;
using Clock = std::chrono::steady_clock;

namespace {

double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int targets = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const long records = argc > 2 ? std::atol(argv[2]) : 5'000'000;
  const std::int64_t now = 1'796'207'400'000'000LL;
  std::vector<std::string> names;
  std::vector<std::string> urls;
  for (int i = 0; i < targets; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "target-%05d", i);
    names.emplace_back(buf);
    urls.push_back("https://" + names.back() + ".example/health");
  }
  const std::string error_message = "HTTP 500 Internal Server Error";

  const double rss_before = rss_mib();
  sp::StatusModel model(sp::ModelOptions{});
  // History: one check per target per hour for 7 days, then 60 recent checks.
  std::vector<sp::Check> batch;
  auto make = [&](int t, std::int64_t time, long seq) {
    sp::Check c;
    c.target = names[static_cast<std::size_t>(t)];
    c.url = urls[static_cast<std::size_t>(t)];
    c.time_us = time;
    c.success = seq % 20 != 0;
    c.response_time_ms = 20.0 + static_cast<double>(seq % 97);
    c.status_code = c.success ? 200 : 500;
    if (!c.success) {
      c.error = "http_status";
      c.error_message = error_message;
    }
    c.cert_not_after_us = now + 40LL * 86'400'000'000LL;
    return c;
  };
  long seq = 0;
  for (int h = 167; h >= 1; --h) {
    for (int t = 0; t < targets; ++t) {
      model.apply(make(t, now - h * sp::kHourMicros, seq++));
    }
  }
  for (int k = 60; k >= 0; --k) {
    for (int t = 0; t < targets; ++t) {
      model.apply(make(t, now - k * 30'000'000LL, seq++));
    }
  }
  const double rss_after = rss_mib();
  std::printf("status_page.memory targets=%d rss_growth_mib=%.1f per_target_kib=%.2f\n", targets,
              rss_after - rss_before, (rss_after - rss_before) * 1024.0 / targets);

  // Render: median of 9.
  sp::PageOptions page;
  page.title = "Bench";
  std::vector<double> html_ms;
  std::vector<double> json_ms;
  std::size_t html_bytes = 0;
  std::size_t json_bytes = 0;
  for (int i = 0; i < 9; ++i) {
    auto start = Clock::now();
    const auto groups = sp::group_targets(model.view(now), page);
    const std::string html = sp::render_html(groups, now, page);
    html_ms.push_back(ms_since(start));
    html_bytes = html.size();
    start = Clock::now();
    const auto groups2 = sp::group_targets(model.view(now), page);
    const std::string json = sp::render_json(groups2, now, page);
    json_ms.push_back(ms_since(start));
    json_bytes = json.size();
  }
  std::sort(html_ms.begin(), html_ms.end());
  std::sort(json_ms.begin(), json_ms.end());
  std::printf(
      "status_page.render targets=%d html_ms=%.1f (min %.1f max %.1f) html_mib=%.1f "
      "json_ms=%.1f json_mib=%.1f\n",
      targets, html_ms[4], html_ms.front(), html_ms.back(),
      static_cast<double>(html_bytes) / 1048576.0, json_ms[4],
      static_cast<double>(json_bytes) / 1048576.0);

  // Apply rate of the core, batches of 500 (the checks are prepared beforehand).
  std::vector<std::vector<sp::Check>> batches;
  const long per_batch = 500;
  for (long i = 0; i < 200; ++i) {
    std::vector<sp::Check> b;
    for (long j = 0; j < per_batch; ++j) {
      b.push_back(make(static_cast<int>((i * per_batch + j) % targets), now, i * per_batch + j));
    }
    batches.push_back(std::move(b));
  }
  const auto start = Clock::now();
  long applied = 0;
  while (applied < records) {
    for (const auto& b : batches) {
      for (const auto& c : b) {
        model.apply(c);
      }
      applied += per_batch;
    }
  }
  const double secs = ms_since(start) / 1000.0;
  std::printf("status_page.apply records=%ld seconds=%.2f records_per_s=%.0f\n", applied, secs,
              static_cast<double>(applied) / secs);

  // Snapshot.
  auto snap_start = Clock::now();
  const std::string data = sp::encode_snapshot(model);
  const std::string path = "/tmp/status_page_bench.snapshot";
  sp::write_file_atomically(path, data);
  const double write_ms = ms_since(snap_start);
  snap_start = Clock::now();
  std::string read_back;
  sp::read_file(path, read_back);
  sp::StatusModel restored(sp::ModelOptions{});
  sp::decode_snapshot(read_back, restored);
  const double read_ms = ms_since(snap_start);
  std::remove(path.c_str());
  std::printf("status_page.snapshot targets=%zu mib=%.1f write_ms=%.1f read_ms=%.1f\n",
              restored.size(), static_cast<double>(data.size()) / 1048576.0, write_ms, read_ms);
  return 0;
}
