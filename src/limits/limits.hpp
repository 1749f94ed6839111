// Limits (DESIGN.md capabilities 6 and 7): which limit applies to a tenant's resource, and the one
// error every limit raises (TN006). Meters (C++) and row quotas (through SQL) both call here, so
// a meter call never leaves C++: the limit comes from a per-backend cache, read on a miss with
// index scans of tenant.tenant_limits and tenant.plan_limits, dropped when the registry changes.
#pragma once

#include <string>
#include <string_view>

#include "bridge/bridge.hpp"
#include "limits/window.hpp"

namespace pg_tenant::limits {

constexpr int kMostAlertLevels = 8;  // tenant.is_valid_alert_levels()

// Where a limit comes from: the tenant's own override, its plan's, or none (unlimited).
enum class Source { kNone, kPlan, kTenant };

struct Limit {
  bool limited = false;
  uint64 value = 0;
  Period period = Period::kNone;
  Source source = Source::kNone;
  const char *upgrade_url = nullptr;  // the tenant's plan's, or nullptr; owned by the cache
  bool soft = false;                  // 0.9.0: lets a call or statement pass the limit (the overage is reported)
  int alert_count = 0;                // 0.9.0: alert levels, percents of value, ascending
  int16 alert_levels[kMostAlertLevels] = {};
};

// The count at which a level (percent of limit) is reached: the first whole count at or above it.
uint64 AlertThreshold(uint64 limit, int level);

// The limit of (tenant, resource): valid until the next call. TN001 when the tenant does not exist.
const Limit &EffectiveLimit(const pg_uuid_t &tenant, std::string_view resource);

// TN006: "limit of R reached", DETAIL "resource R: limit N, current M[, period P]", HINT with the
// plan's upgrade URL. used is the count the refused call or statement found or would reach.
Error LimitReached(std::string_view resource, const Limit &limit, uint64 used);

// 22023 unless name is a valid resource name (IsValidResourceName); 22004 for NULL is the caller's.
void CheckResourceName(std::string_view name);

}  // namespace pg_tenant::limits
