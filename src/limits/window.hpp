// Meter periods and their windows, without PostgreSQL (unit-tested): windows are aligned to UTC
// boundaries, so every server counting the same tenant agrees on them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pg_tenant::limits {

enum class Period : int8_t { kNone = 0, kSecond, kMinute, kHour, kDay, kMonth };

std::optional<Period> ParsePeriod(std::string_view name);
const char *PeriodName(Period period);

// Start of the window holding `at`, both in PostgreSQL timestamp units (microseconds since
// 2000-01-01 00:00 UTC). Period kNone has a single window starting at 0.
int64_t WindowStart(Period period, int64_t at);

// Start of the next window (kNone: never, INT64_MAX).
int64_t WindowEnd(Period period, int64_t at);

// 1 to 63 of a-z, 0-9, '_', '.', '-'.
bool IsValidResourceName(std::string_view name);

}  // namespace pg_tenant::limits
