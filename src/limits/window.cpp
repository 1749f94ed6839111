#include "limits/window.hpp"

#include <limits>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::limits {
namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kDay = 86400 * kSecond;
constexpr int64_t kPgEpochUnixDays = 10957;  // 2000-01-01 is day 10957 after 1970-01-01

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t *y, unsigned *m) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int64_t Truncate(int64_t at, int64_t unit) { return FloorDiv(at, unit) * unit; }

}  // namespace

std::optional<Period> ParsePeriod(std::string_view name) {
  if (name == "none") return Period::kNone;
  if (name == "second") return Period::kSecond;
  if (name == "minute") return Period::kMinute;
  if (name == "hour") return Period::kHour;
  if (name == "day") return Period::kDay;
  if (name == "month") return Period::kMonth;
  return std::nullopt;
}

const char *PeriodName(Period period) {
  switch (period) {
    case Period::kSecond: return "second";
    case Period::kMinute: return "minute";
    case Period::kHour: return "hour";
    case Period::kDay: return "day";
    case Period::kMonth: return "month";
    case Period::kNone: break;
  }
  return "none";
}

int64_t WindowStart(Period period, int64_t at) {
  switch (period) {
    case Period::kSecond: return Truncate(at, kSecond);
    case Period::kMinute: return Truncate(at, 60 * kSecond);
    case Period::kHour: return Truncate(at, 3600 * kSecond);
    case Period::kDay: return Truncate(at, kDay);
    case Period::kMonth: {
      int64_t y;
      unsigned m;
      CivilFromDays(FloorDiv(at, kDay) + kPgEpochUnixDays, &y, &m);
      return (DaysFromCivil(y, m, 1) - kPgEpochUnixDays) * kDay;
    }
    case Period::kNone: break;
  }
  return 0;
}

int64_t WindowEnd(Period period, int64_t at) {
  switch (period) {
    case Period::kSecond: return WindowStart(period, at) + kSecond;
    case Period::kMinute: return WindowStart(period, at) + 60 * kSecond;
    case Period::kHour: return WindowStart(period, at) + 3600 * kSecond;
    case Period::kDay: return WindowStart(period, at) + kDay;
    case Period::kMonth: {
      int64_t y;
      unsigned m;
      CivilFromDays(FloorDiv(at, kDay) + kPgEpochUnixDays, &y, &m);
      if (++m == 13) {
        m = 1;
        ++y;
      }
      return (DaysFromCivil(y, m, 1) - kPgEpochUnixDays) * kDay;
    }
    case Period::kNone: break;
  }
  return std::numeric_limits<int64_t>::max();
}

bool IsValidResourceName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace pg_tenant::limits
