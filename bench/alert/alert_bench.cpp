// alert state machine benchmark: results/s through Engine::observe with T targets (every
// `fail_every`-th target down for good, the others flapping below the threshold now and then),
// and memory per tracked target (heap in use, mallinfo2, before and after tracking N targets).
// Usage: alert_bench [TARGETS] [RESULTS] [TRACKED]
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine.hpp"

using webmon::plugins::alert::Engine;
using webmon::plugins::alert::Notification;
using webmon::plugins::alert::Observation;

namespace {

std::string name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "target-%05zu", i);
  return buf;
}

std::size_t heap_in_use() { return mallinfo2().uordblks; }

}  // namespace

int main(int argc, char** argv) {
  const std::size_t targets = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
  const std::size_t results = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20'000'000;
  const std::size_t tracked = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100'000;

  std::vector<std::string> names;
  for (std::size_t i = 0; i < targets; ++i) {
    names.push_back(name(i));
  }
  const std::string error = "http_status";
  const std::string message = "HTTP 503 Service Unavailable";
  const webmon::sdk::Labels labels{{"team", "web"}};
  {
    Engine engine({});
    std::vector<Notification> out;
    std::size_t notifications = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t n = 0; n < results; ++n) {
      const std::size_t t = n % targets;
      const std::size_t round = n / targets;
      Observation o;
      o.kind = "http_check";
      o.target = names[t];
      o.location = "agent-1";
      // 5% of targets down for good; the others fail one check in seven (never 3 in a row).
      o.success = t % 20 != 0 && (round + t) % 7 != 0;
      o.time = webmon::sdk::Timestamp{static_cast<std::int64_t>(round) * 30'000'000};
      o.error = o.success ? nullptr : &error;
      o.error_message = o.success ? nullptr : &message;
      o.labels = &labels;
      out.clear();
      engine.observe(o, out);
      notifications += out.size();
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "alert.engine targets=%zu results=%zu seconds=%.2f results_per_s=%.0f "
        "notifications=%zu tracked_at_end=%zu\n",
        targets, results, s, static_cast<double>(results) / s, notifications, engine.tracked());
  }
  {
    // Memory: N targets each failing (one location, error strings kept), then firing.
    const std::size_t before = heap_in_use();
    Engine engine({});
    std::vector<Notification> out;
    for (int round = 0; round < 3; ++round) {
      for (std::size_t i = 0; i < tracked; ++i) {
        const std::string target = name(i);
        Observation o;
        o.kind = "http_check";
        o.target = target;
        o.location = "agent-1";
        o.success = false;
        o.time = webmon::sdk::Timestamp{round * 30'000'000LL};
        o.error = &error;
        o.error_message = &message;
        o.labels = &labels;
        out.clear();
        engine.observe(o, out);
      }
    }
    const std::size_t after = heap_in_use();
    std::printf("alert.memory tracked=%zu heap_bytes=%zu bytes_per_tracked_target=%.0f\n",
                engine.tracked(), after - before,
                static_cast<double>(after - before) / static_cast<double>(engine.tracked()));
  }
  return 0;
}
