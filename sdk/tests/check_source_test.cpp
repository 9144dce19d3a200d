// sdk::CheckSource (webmon/sdk/check.hpp): the schedule loop a small check plugin inherits.
// Real time, short intervals, run with the test kit; every assertion is about values (grid
// spacing of the records' times, names, counts), never about how long anything took.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "webmon/sdk/check.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::sdk {
namespace {

using namespace std::chrono_literals;
using testing::FakeContext;
using testing::run_source;
using Duration = std::chrono::microseconds;

constexpr FieldSpec kFields[] = {{"target", FieldType::string, false, "", "target name"},
                                 {"n", FieldType::int64, false, "", "check number"}};
constexpr KindSpec kProbe = make_kind("probe", 1, kFields, "target", "a test check");
constexpr KindSpec kNoKey = make_kind("unkeyed", 1, kFields, nullptr, "a kind without key");

/// A check that records what it was given; throws when told to.
class Probe final : public CheckSource {
 public:
  Probe(const KindSpec& kind, const std::vector<std::pair<std::string, Duration>>& targets,
        bool once = false, bool throws = false)
      : CheckSource(kind), throws_(throws) {
    for (const auto& [name, interval] : targets) {
      add_target(name, interval);
    }
    set_once(once);
  }
  std::vector<Due> dues;  // read after run() returned

 protected:
  void check(const Due& due, Record& record) override {
    if (throws_) {
      throw std::runtime_error("boom");
    }
    dues.push_back(due);
    record.add("n", static_cast<std::int64_t>(dues.size()));
  }

 private:
  bool throws_;
};

std::map<std::string, std::vector<Record>> by_target(const std::vector<Record>& records) {
  std::map<std::string, std::vector<Record>> out;
  for (const auto& r : records) {
    out[*r.get<std::string>("target")].push_back(r);
  }
  return out;
}

TEST(CheckSource, EmitsOneRecordPerSlotOnEachTargetsGrid) {
  FakeContext ctx;
  Probe probe(kProbe, {{"a", 20ms}, {"b", 30ms}});
  ASSERT_TRUE(probe.start(ctx, ctx));
  const Status s = run_source(probe, ctx, [&] {
    const auto t = by_target(ctx.records());
    return t.size() == 2 && t.at("a").size() >= 3 && t.at("b").size() >= 3;
  });
  ASSERT_TRUE(s) << s.message();
  const auto records = ctx.records();
  const auto targets = by_target(records);
  ASSERT_EQ(targets.size(), 2U);
  const std::map<std::string, std::int64_t> interval_us = {{"a", 20'000}, {"b", 30'000}};
  std::set<std::string> ids;
  for (const auto& [name, list] : targets) {
    ASSERT_GE(list.size(), 3U) << name;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const Record& r = list[i];
      EXPECT_EQ(r.kind, "probe");
      ASSERT_EQ(r.fields.size(), 2U);
      EXPECT_EQ(r.fields[0].name, "target");  // the key field comes first, then check()'s
      EXPECT_EQ(r.fields[1].name, "n");
      ids.insert(r.id);
      if (i > 0) {  // consecutive records are whole intervals apart (slots may be skipped)
        const std::int64_t gap = r.time.micros - list[i - 1].time.micros;
        EXPECT_GT(gap, 0) << name;
        EXPECT_EQ(gap % interval_us.at(name), 0) << name << ": " << gap << " µs";
      }
    }
  }
  EXPECT_EQ(ids.size(), records.size()) << "every record has its own id";
  // check() saw the same slot, name and index the record carries.
  ASSERT_EQ(probe.dues.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(probe.dues[i].time.micros, records[i].time.micros);
    EXPECT_EQ(probe.dues[i].name, *records[i].get<std::string>("target"));
    EXPECT_EQ(probe.dues[i].target, probe.dues[i].name == "a" ? 0U : 1U);
    EXPECT_GE(probe.dues[i].lateness.count(), 0);
  }
  EXPECT_EQ(ctx.count("checks"), records.size());
}

TEST(CheckSource, OnceChecksEveryTargetOnceAndFinishes) {
  FakeContext ctx;
  Probe probe(kProbe, {{"a", 1h}, {"b", 1h}, {"c", 1h}}, /*once=*/true);
  ASSERT_TRUE(probe.start(ctx, ctx));
  // done() never holds: run() must return by itself.
  const Status s = run_source(probe, ctx, [] { return false; });
  ASSERT_TRUE(s) << s.message();
  const auto targets = by_target(ctx.records());
  ASSERT_EQ(targets.size(), 3U);
  for (const auto& [name, list] : targets) {
    EXPECT_EQ(list.size(), 1U) << name;
  }
}

TEST(CheckSource, AStopEndsTheWaitForAFarSlot) {
  FakeContext ctx;
  Probe probe(kProbe, {{"far", 24h}});
  ASSERT_TRUE(probe.start(ctx, ctx));
  // Stopped at once; the first slot may be hours away. Returning at all is the assertion
  // (a hang is caught by the test's timeout).
  const Status s = run_source(probe, ctx, [] { return true; });
  EXPECT_TRUE(s) << s.message();
}

TEST(CheckSource, WithoutTargetsItIdlesUntilStopped) {
  FakeContext ctx;
  Probe probe(kProbe, {});
  ASSERT_TRUE(probe.start(ctx, ctx));
  const Status s = run_source(probe, ctx, [] { return true; });
  EXPECT_TRUE(s) << s.message();
  EXPECT_TRUE(ctx.records().empty());
}

TEST(CheckSource, AKindWithoutKeyFieldGetsOnlyTheChecksFields) {
  FakeContext ctx;
  Probe probe(kNoKey, {{"a", 1h}}, /*once=*/true);
  ASSERT_TRUE(probe.start(ctx, ctx));
  ASSERT_TRUE(run_source(probe, ctx, [] { return false; }));
  const auto records = ctx.records();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].kind, "unkeyed");
  ASSERT_EQ(records[0].fields.size(), 1U);
  EXPECT_EQ(records[0].fields[0].name, "n");
}

TEST(CheckSource, AnExceptionInCheckEndsRunWithIt) {
  FakeContext ctx;
  Probe probe(kProbe, {{"a", 10ms}}, /*once=*/false, /*throws=*/true);
  ASSERT_TRUE(probe.start(ctx, ctx));
  const Status s = run_source(probe, ctx, [] { return false; });
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("boom"), std::string::npos) << s.message();
  EXPECT_TRUE(ctx.records().empty());
}

}  // namespace
}  // namespace webmon::sdk
