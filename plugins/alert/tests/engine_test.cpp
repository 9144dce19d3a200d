// The alert state machine driven directly with sequences of results and record times:
// properties over random sequences (flapping below the thresholds never fires; every firing
// is followed by exactly one resolved), exact check counts, locations, repeats, silences,
// and the state file round trip.
#include "engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "state_file.hpp"

namespace webmon::plugins::alert {
namespace {

constexpr std::int64_t kMinute = 60'000'000;

struct Feed {
  Engine engine;
  sdk::Labels labels;
  std::vector<Notification> out;
  std::int64_t t = 1'700'000'000'000'000;

  explicit Feed(EngineConfig c = {}) : engine(std::move(c)) {}

  /// Feeds one result 1 minute after the previous; returns the notifications it caused.
  std::vector<Notification> check(bool ok, std::string_view agent = "a",
                                  std::string_view target = "shop", Thresholds th = {}) {
    t += kMinute;
    Observation o;
    o.kind = "http_check";
    o.target = target;
    o.location = agent;
    o.success = ok;
    o.time = sdk::Timestamp{t};
    static const std::string kErr = "timeout";
    o.error = ok ? nullptr : &kErr;
    o.labels = &labels;
    o.thresholds = th;
    std::vector<Notification> now;
    engine.observe(o, now);
    out.insert(out.end(), now.begin(), now.end());
    return now;
  }
};

TEST(Engine, DownThenUpFiresAtThirdFailureAndResolvesAtSecondSuccess) {
  Feed f;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(f.check(true).empty());
  }
  EXPECT_TRUE(f.check(false).empty());
  EXPECT_TRUE(f.check(false).empty());
  auto firing = f.check(false);  // third consecutive failure
  ASSERT_EQ(firing.size(), 1U);
  EXPECT_TRUE(firing[0].firing);
  EXPECT_EQ(firing[0].consecutive_failures, 3);
  EXPECT_EQ(firing[0].locations_failing, 1);
  EXPECT_EQ(firing[0].at.micros - firing[0].since.micros, 2 * kMinute);
  EXPECT_EQ(firing[0].last_error, "timeout");
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(f.check(false).empty()) << "still down: no second firing";
  }
  EXPECT_TRUE(f.check(true).empty());
  auto resolved = f.check(true);  // second consecutive success
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_FALSE(resolved[0].firing);
  EXPECT_EQ(resolved[0].incident_id, firing[0].incident_id);
  EXPECT_EQ(resolved[0].consecutive_failures, 13);
  EXPECT_EQ(resolved[0].at.micros - resolved[0].since.micros, 14 * kMinute);
  EXPECT_EQ(f.engine.tracked(), 0U) << "a healthy target is forgotten";
}

TEST(Engine, OneSuccessDuringAnIncidentDoesNotResolveIt) {
  Feed f;
  for (int i = 0; i < 3; ++i) {
    f.check(false);
  }
  ASSERT_EQ(f.out.size(), 1U);
  EXPECT_TRUE(f.check(true).empty());
  EXPECT_TRUE(f.check(false).empty()) << "the streak of successes restarts";
  EXPECT_TRUE(f.check(true).empty());
  EXPECT_EQ(f.check(true).size(), 1U);
}

// Property: any sequence whose failure runs are all shorter than failure_threshold never
// fires, whatever the thresholds.
TEST(Engine, FlappingBelowTheThresholdNeverFires) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 500; ++round) {
    const int failure = 2 + static_cast<int>(rng() % 6);
    Feed f;
    int run = 0;
    for (int i = 0; i < 300; ++i) {
      bool ok = rng() % 2 == 0;
      if (!ok && run + 1 >= failure) {
        ok = true;
      }
      run = ok ? 0 : run + 1;
      ASSERT_TRUE(f.check(ok, "a", "shop", {failure, 2, 1}).empty())
          << "round " << round << " check " << i << " failure_threshold " << failure;
    }
  }
}

// Property: on random sequences, notifications alternate firing/resolved, each pair shares an
// incident id, a firing comes exactly at the check completing `failure` consecutive
// failures from ok, and a resolved exactly at `success` consecutive successes.
TEST(Engine, RandomSequencesAlternateAtTheRightCheckCounts) {
  std::mt19937 rng(777);
  for (int round = 0; round < 300; ++round) {
    const Thresholds th{1 + static_cast<int>(rng() % 5), 1 + static_cast<int>(rng() % 4), 1};
    Feed f;
    bool firing = false;
    int fails = 0;
    int oks = 0;
    std::string incident;
    for (int i = 0; i < 400; ++i) {
      const bool ok = rng() % 3 != 0;
      fails = ok ? 0 : fails + 1;
      oks = ok ? oks + 1 : 0;
      const auto got = f.check(ok, "a", "shop", th);
      bool expect = false;
      if (!firing && fails == th.failure) {
        expect = true;
        firing = true;
      } else if (firing && oks == th.success) {
        expect = true;
        firing = false;
      }
      ASSERT_EQ(got.size(), expect ? 1U : 0U) << "round " << round << " check " << i;
      if (expect) {
        EXPECT_EQ(got[0].firing, firing);
        if (firing) {
          EXPECT_NE(got[0].incident_id, incident);
          incident = got[0].incident_id;
        } else {
          EXPECT_EQ(got[0].incident_id, incident);
        }
      }
    }
  }
}

TEST(Engine, TwoLocationsWithMinLocationsTwo) {
  const Thresholds th{3, 2, 2};
  Feed f;
  // Only agent "a" sees failures: nothing, however long.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(f.check(false, "a", "shop", th).empty());
    EXPECT_TRUE(f.check(true, "b", "shop", th).empty());
  }
  // Now "b" fails too: firing at b's third failure, with both locations counted.
  EXPECT_TRUE(f.check(false, "b", "shop", th).empty());
  EXPECT_TRUE(f.check(false, "a", "shop", th).empty());
  EXPECT_TRUE(f.check(false, "b", "shop", th).empty());
  EXPECT_TRUE(f.check(false, "a", "shop", th).empty());
  auto firing = f.check(false, "b", "shop", th);
  ASSERT_EQ(firing.size(), 1U);
  EXPECT_EQ(firing[0].locations_failing, 2);
  // One location recovering is enough to drop below 2: resolved.
  EXPECT_TRUE(f.check(true, "a", "shop", th).empty());
  EXPECT_TRUE(f.check(false, "b", "shop", th).empty());
  auto resolved = f.check(true, "a", "shop", th);
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_FALSE(resolved[0].firing);
  EXPECT_EQ(resolved[0].locations_failing, 1);
}

TEST(Engine, SilentLocationsExpire) {
  EngineConfig c;
  c.location_expiry = std::chrono::minutes(10);
  Feed f(c);
  const Thresholds th{2, 1, 2};
  f.check(false, "a", "shop", th);
  f.check(false, "a", "shop", th);  // a failing; b never reported
  for (int i = 0; i < 15; ++i) {
    f.check(true, "c", "shop", th);  // time passes through another location
  }
  f.check(false, "b", "shop", th);
  EXPECT_TRUE(f.check(false, "b", "shop", th).empty()) << "a's failure is 17 min old";
}

TEST(Engine, RepeatIntervalUsesRecordTime) {
  EngineConfig c;
  c.repeat_interval = std::chrono::minutes(5);
  Feed f(c);
  for (int i = 0; i < 3; ++i) {
    f.check(false);
  }
  ASSERT_EQ(f.out.size(), 1U);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(f.check(false).empty());
  }
  auto again = f.check(false);  // 5 minutes after the firing
  ASSERT_EQ(again.size(), 1U);
  EXPECT_TRUE(again[0].repeat);
  EXPECT_EQ(again[0].incident_id, f.out[0].incident_id);
}

TEST(Engine, SilenceHoldsNotificationsButKeepsState) {
  Feed probe;
  EngineConfig c;
  Silence s;
  s.start = sdk::Timestamp{probe.t};
  s.end = sdk::Timestamp{probe.t + 5 * kMinute + 1};  // checks 1..5
  s.targets = {"sh*"};
  c.silences = {s};
  Feed f(c);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(f.check(false).empty()) << "silenced";
  }
  auto late = f.check(false);  // window over, still failing: the held firing goes out
  ASSERT_EQ(late.size(), 1U);
  EXPECT_TRUE(late[0].firing);
  EXPECT_EQ(late[0].consecutive_failures, 6);
}

TEST(Engine, IncidentResolvedDuringSilenceSendsNothing) {
  Feed probe;
  EngineConfig c;
  Silence s;
  s.start = sdk::Timestamp{probe.t};
  s.end = sdk::Timestamp{probe.t + 100 * kMinute};
  c.silences = {s};
  Feed f(c);
  for (int i = 0; i < 5; ++i) {
    f.check(false);
  }
  f.check(true);
  f.check(true);
  EXPECT_TRUE(f.out.empty());
  EXPECT_EQ(f.engine.tracked(), 0U);
}

TEST(Engine, StateFileRoundTripResumesTheIncident) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("alert-engine-test-" + std::to_string(::getpid()) + ".json"))
                        .string();
  Feed f;
  for (int i = 0; i < 4; ++i) {
    f.check(false);
  }
  ASSERT_EQ(f.out.size(), 1U);
  save_state(f.engine, path);

  Feed g;
  g.t = f.t;
  ASSERT_EQ(load_state(g.engine, path), 1U);
  EXPECT_TRUE(g.check(false).empty()) << "no second firing after a restart";
  EXPECT_TRUE(g.check(true).empty());
  auto resolved = g.check(true);
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_EQ(resolved[0].incident_id, f.out[0].incident_id);
  EXPECT_EQ(resolved[0].since, f.out[0].since);
  std::filesystem::remove(path);
}

TEST(Engine, MalformedStateFileIsNamed) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("alert-engine-bad-" + std::to_string(::getpid()) + ".json"))
                        .string();
  { std::ofstream(path) << "{not json"; }
  Engine e({});
  try {
    load_state(e, path);
    FAIL() << "accepted";
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find(path), std::string::npos) << ex.what();
    EXPECT_NE(std::string(ex.what()).find("move the file away"), std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST(Rfc3339, ParsesAndRejects) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01Z")->micros, 1'000'000);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00.5+01:00")->micros, 500'000);
  EXPECT_FALSE(parse_rfc3339("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("tomorrow"));
  EXPECT_FALSE(parse_rfc3339("2026-12-24 18:00"));
}

}  // namespace
}  // namespace webmon::plugins::alert
