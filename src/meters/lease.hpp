// Redis meters at shared-memory speed (pg_tenant.meter_backend = redis): each server leases
// blocks of units from the shared count in Redis (redis/lease.hpp), serves calls from the lease
// in its shared memory, and its background worker reports what was used and returns what was
// not. Meters without a limit count here and the worker adds the sum to Redis. ARCHITECTURE.md,
// "Redis leases", says why the sum over servers never passes a limit.
#pragma once

#include <string>

#include "bridge/pg.hpp"
#include "redis/client.hpp"

namespace pg_tenant::meters::lease {

// From meters::Init while preloading: the lease GUCs, and shared memory for max_entries leases.
void Init(int max_entries);

// What a backend's session uses for Redis: its URL, a number that changes with the URL, and
// whether its connection is open.
struct Session {
  const char *url;
  uint64 url_version;
  bool connected;
};

// Serves a call from this server's lease of key (a meter without a limit: counts it here, for
// the worker to report) with no round trip; *used is the count as far as this server knows.
// False: the call needs Meter().
bool Serve(const Session &session, const std::string &key, uint64 amount, bool limited, uint64 limit, uint64 *used);

// The round trip when Serve could not: reports this server's lease of key, counts the call and
// leases more units (or, when leases are off or cannot be kept, client.Meter as before).
redis::MeterReply Meter(redis::Client &client, const Session &session, const std::string &key, int64 amount,
                        int64 limit, int64 ttl_ms, int64 window_end);

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
