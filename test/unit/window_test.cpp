#include "limits/window.hpp"

#include <gtest/gtest.h>

namespace pg_tenant::limits {
namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kDay = 86400 * kSecond;
// 2026-11-26 07:42:13.5 UTC in PostgreSQL units (days since 2000-01-01: 9826).
constexpr int64_t kAt = 9826 * kDay + (7 * 3600 + 42 * 60 + 13) * kSecond + 500000;

TEST(Window, AlignsToUtcBoundaries) {
  EXPECT_EQ(WindowStart(Period::kSecond, kAt), kAt - 500000);
  EXPECT_EQ(WindowStart(Period::kMinute, kAt), kAt - 13 * kSecond - 500000);
  EXPECT_EQ(WindowStart(Period::kHour, kAt), 9826 * kDay + 7 * 3600 * kSecond);
  EXPECT_EQ(WindowStart(Period::kDay, kAt), 9826 * kDay);
  EXPECT_EQ(WindowStart(Period::kNone, kAt), 0);
}

TEST(Window, MonthsHaveTheirOwnLengths) {
  // 2026-11-01 is day 9801; 2026-12-01 is day 9831; 2027-01-01 is day 9862.
  EXPECT_EQ(WindowStart(Period::kMonth, kAt), 9801 * kDay);
  EXPECT_EQ(WindowEnd(Period::kMonth, kAt), 9831 * kDay);
  EXPECT_EQ(WindowStart(Period::kMonth, 9831 * kDay - 1), 9801 * kDay);
  EXPECT_EQ(WindowEnd(Period::kMonth, 9831 * kDay), 9862 * kDay);
  // February of a leap year: 2024-02-01 is day 8797, 2024-03-01 day 8826.
  EXPECT_EQ(WindowStart(Period::kMonth, 8825 * kDay + 1), 8797 * kDay);
  EXPECT_EQ(WindowEnd(Period::kMonth, 8797 * kDay), 8826 * kDay);
}

TEST(Window, RollsOverExactlyAtTheBoundary) {
  const int64_t boundary = 9826 * kDay + 8 * 3600 * kSecond;
  EXPECT_EQ(WindowStart(Period::kHour, boundary - 1), boundary - 3600 * kSecond);
  EXPECT_EQ(WindowStart(Period::kHour, boundary), boundary);
  EXPECT_EQ(WindowEnd(Period::kHour, boundary - 1), boundary);
  EXPECT_EQ(WindowStart(Period::kSecond, -1), -kSecond);  // before 2000 too
}

TEST(Period, ParsesTheDocumentedNames) {
  for (const char *name : {"none", "second", "minute", "hour", "day", "month"}) {
    auto period = ParsePeriod(name);
    ASSERT_TRUE(period.has_value()) << name;
    EXPECT_STREQ(PeriodName(*period), name);
  }
  EXPECT_FALSE(ParsePeriod("week").has_value());
  EXPECT_FALSE(ParsePeriod("Day").has_value());
}

TEST(ResourceName, IsASimpleLabel) {
  EXPECT_TRUE(IsValidResourceName("api_calls"));
  EXPECT_TRUE(IsValidResourceName("storage.bytes-v2"));
  EXPECT_FALSE(IsValidResourceName(""));
  EXPECT_FALSE(IsValidResourceName("API"));
  EXPECT_FALSE(IsValidResourceName("a b"));
  EXPECT_FALSE(IsValidResourceName(std::string(64, 'a')));
}

}  // namespace
}  // namespace pg_tenant::limits
