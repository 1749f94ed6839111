// Redis meters at shared-memory speed (pg_tenant.meter_backend = redis): each server leases
// blocks of units from the shared count in Redis (redis/lease.hpp), serves calls from the lease
// in its shared memory, and its background worker reports what was used and returns what was
// not. Meters without a limit count here and the worker adds the sum to Redis. ARCHITECTURE.md,
// "Redis leases", says why the sum over servers never passes a limit.
#pragma once

#include <string>

#include "bridge/pg.hpp"
#include "limits/limits.hpp"
#include "redis/client.hpp"

namespace pg_tenant::meters::lease {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
extern int lease_max;      // pg_tenant.redis_lease_max
extern int lease_time_ms;  // pg_tenant.redis_lease_time

// Shared memory for as many leases as there are meters (src/wiring/hooks.cpp).
void RequestSharedMemory() noexcept;
void StartSharedMemory() noexcept;

// What a backend's session uses for Redis: its URL, a number that changes with the URL, and
// whether its connection is open.
struct Session {
  const char *url;
  uint64 url_version;
  bool connected;
};

// Usage alerts across servers: each entry keeps the highest count of its key this server has
// seen (a high-water mark, raised by calls and by round trips). A call or report that raises it
// from before to after checks the alert levels in (before, after], so a jump of the count (other
// servers' usage arriving) skips none. kNoMark: the call has no mark (no lease entry).
constexpr uint64 kNoMark = ~static_cast<uint64>(0);

// What the worker needs to record the levels a report crossed: the meter and its limit as the
// last round trip for the entry saw them.
struct AlertSpec {
  pg_uuid_t tenant;
  char resource[64];
  int64 window_start;
  int32 period;
  bool soft;
  uint64 limit;
  int alert_count;  // 0: no alert levels
  int16 alert_levels[limits::kMostAlertLevels];
};

// Serves a call from this server's lease of key (a meter without a limit: counts it here, for
// the worker to report) with no round trip; *used is the count as far as this server knows and
// *before the entry's mark before the call. False: the call needs Meter().
bool Serve(const Session &session, const std::string &key, uint64 amount, bool limited, uint64 limit, uint64 *used,
           uint64 *before);

// The round trip when Serve could not: reports this server's lease of key, counts the call and
// leases more units (or, when leases are off or cannot be kept, client.Meter as before). A call
// counted: *before is the entry's mark before it (kNoMark without an entry); spec is kept for
// the worker.
redis::MeterReply Meter(redis::Client &client, const Session &session, const std::string &key, int64 amount,
                        int64 limit, int64 ttl_ms, int64 window_end, const AlertSpec &spec, uint64 *before);

// The worker, every TickMs(): reports used units, returns leases past pg_tenant.redis_lease_time
// or their window, frees idle entries. Plain C for RunGuarded: errors are PostgreSQL errors.
void WorkerTick();
int TickMs(int flush_interval_ms);
// At clean shutdown: as WorkerTick, returning every lease.
void WorkerShutdown();

// Units of key used here and not yet reported to Redis (tenant.usage() adds them).
uint64 Unreported(const std::string &key);

// tenant.purge(): forgets this server's leases of the keys that start with prefix.
void Forget(const std::string &prefix);

}  // namespace pg_tenant::meters::lease

namespace pg_tenant::meters {

// In alerts.cpp, for reports (the worker's, and a refused call's round trip): records the alert
// levels of spec in (before, after] for key, each claimed in Redis with client first. Writes no
// SQL: a full alert queue drops the alert with a LOG.
void RecordReportedCrossings(const lease::AlertSpec &spec, const std::string &key, uint64 before, uint64 after,
                             redis::Client &client);

}  // namespace pg_tenant::meters
