#include "stats/counters.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace pg_tenant::stats {
namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kPeriod = 60 * kSecond;
constexpr int64_t kT0 = 9826LL * 86400 * kSecond;  // a period boundary (a multiple of 60 s)

Counters Calls(int64_t calls, double time = 1) {
  Counters c;
  c.calls = calls;
  c.total_time = time;
  c.max_time = time;
  c.rows = 2 * calls;
  return c;
}

TEST(Counters, AddSumsAndKeepsTheMax) {
  Counters a = Calls(1, 5);
  a.Add(Calls(2, 3));
  EXPECT_EQ(a.calls, 3);
  EXPECT_EQ(a.rows, 6);
  EXPECT_DOUBLE_EQ(a.total_time, 8);
  EXPECT_DOUBLE_EQ(a.max_time, 5);
}

TEST(Periods, AlignedStarts) {
  EXPECT_EQ(PeriodStart(kT0 + 59 * kSecond, kPeriod), kT0);
  EXPECT_EQ(PeriodStart(kT0 + 60 * kSecond, kPeriod), kT0 + kPeriod);
  EXPECT_EQ(PeriodStart(-1, kPeriod), -kPeriod);  // before 2000-01-01
}

TEST(Periods, RotateOnePeriodAtATime) {
  Periods p;
  p.Record(kT0 + kSecond, kPeriod, Calls(3));
  Counters current, previous;
  p.View(kT0 + 2 * kSecond, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 3);
  EXPECT_EQ(previous.calls, 0);
  // Read in the next period, untouched: what was current is now previous.
  p.View(kT0 + kPeriod + kSecond, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 0);
  EXPECT_EQ(previous.calls, 3);
  // Written in the next period: rotates.
  p.Record(kT0 + kPeriod + kSecond, kPeriod, Calls(4));
  p.View(kT0 + kPeriod + 2 * kSecond, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 4);
  EXPECT_EQ(previous.calls, 3);
  // Two periods later, both are gone.
  p.View(kT0 + 3 * kPeriod, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 0);
  EXPECT_EQ(previous.calls, 0);
  p.Record(kT0 + 3 * kPeriod, kPeriod, Calls(1));
  p.View(kT0 + 3 * kPeriod, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 1);
  EXPECT_EQ(previous.calls, 0);
}

TEST(Periods, AClockThatGoesBackCountsInTheNewestPeriod) {
  Periods p;
  p.Record(kT0 + kPeriod, kPeriod, Calls(1));
  p.Record(kT0 + kSecond, kPeriod, Calls(1));
  Counters current, previous;
  p.View(kT0 + kPeriod, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 2);
}

TEST(Periods, MergeAlignsBothRows) {
  Periods other;  // "other": last written two periods ago
  other.Record(kT0, kPeriod, Calls(10));
  Periods evicted;  // written in the previous and the current period
  evicted.Record(kT0 + kPeriod, kPeriod, Calls(2));
  evicted.Record(kT0 + 2 * kPeriod, kPeriod, Calls(5));
  other.Merge(kT0 + 2 * kPeriod + kSecond, kPeriod, evicted);
  Counters current, previous;
  other.View(kT0 + 2 * kPeriod + kSecond, kPeriod, &current, &previous);
  EXPECT_EQ(current.calls, 5);
  EXPECT_EQ(previous.calls, 2);  // other's own 10 are older than the previous period
}

TEST(Score, GrowsPerStatementAndHalvesPerPeriod) {
  Score s;
  for (int i = 0; i < 8; ++i) s.Bump(kT0 + i, kPeriod);
  EXPECT_DOUBLE_EQ(s.At(kT0 + kSecond, kPeriod), 8);
  EXPECT_DOUBLE_EQ(s.At(kT0 + kPeriod, kPeriod), 4);
  EXPECT_DOUBLE_EQ(s.At(kT0 + 3 * kPeriod, kPeriod), 1);
  s.Bump(kT0 + kPeriod, kPeriod);  // 8 halved once, plus one
  EXPECT_DOUBLE_EQ(s.At(kT0 + kPeriod, kPeriod), 5);
  EXPECT_DOUBLE_EQ(s.At(kT0 + 100 * kPeriod, kPeriod), 0);
}

TEST(Eviction, LowestScoresFirstThenLeastRecentlySeen) {
  std::vector<Candidate> c = {{5, 100, 0}, {1, 300, 1}, {9, 50, 2}, {1, 200, 3}, {3, 10, 4}, {7, 1, 5}};
  ChooseEvictions(c.data(), c.size(), 3);
  std::vector<uint32_t> chosen = {c[0].index, c[1].index, c[2].index};
  std::sort(chosen.begin(), chosen.end());
  EXPECT_EQ(chosen, (std::vector<uint32_t>{1, 3, 4}));
  // Among equal scores, the one seen longest ago goes first.
  std::vector<Candidate> tie = {{1, 300, 0}, {1, 200, 1}, {2, 0, 2}};
  ChooseEvictions(tie.data(), tie.size(), 1);
  EXPECT_EQ(tie[0].index, 1u);
}

TEST(Eviction, CountIsClamped) {
  std::vector<Candidate> c = {{5, 0, 0}, {1, 0, 1}};
  ChooseEvictions(c.data(), c.size(), 10);  // no crash, nothing lost
  EXPECT_EQ(c.size(), 2u);
  ChooseEvictions(c.data(), 0, 1);
}

TEST(Eviction, HardCapacityLeavesAMargin) {
  EXPECT_EQ(HardCapacity(10), 18u);      // at least 8 more
  EXPECT_EQ(HardCapacity(1000), 1250u);  // a quarter more: one eviction per 250 new tenants
}

}  // namespace
}  // namespace pg_tenant::stats
