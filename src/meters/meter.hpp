// Fast usage meters in shared memory (DESIGN.md capability 7): tenant.meter(), tenant.try_meter(),
// persisted by a background worker. Only when pg_tenant is in shared_preload_libraries are the
// settings defined, the shared memory requested and the worker registered (src/wiring/);
// otherwise the meter functions raise a clear error.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::meters {

// The settings (registered, with their texts, in src/wiring/settings.cpp) and their hooks.
enum MeterBackend { kBackendShmem, kBackendRedis };
enum RedisFailure { kFailClosed, kFailOpen, kFailLocal };
extern int max_meters;                       // pg_tenant.max_meters
extern int max_meters_per_tenant;            // pg_tenant.max_meters_per_tenant
extern int max_idempotency_keys;             // pg_tenant.max_idempotency_keys
extern int max_idempotency_keys_per_tenant;  // pg_tenant.max_idempotency_keys_per_tenant
extern int idempotency_horizon_s;            // pg_tenant.idempotency_horizon
extern int meter_backend;                    // pg_tenant.meter_backend
extern char *redis_url;                      // pg_tenant.redis_url
extern int redis_connect_timeout_ms;         // pg_tenant.redis_connect_timeout
extern int redis_command_timeout_ms;         // pg_tenant.redis_command_timeout
extern int redis_failure;                    // pg_tenant.redis_failure
bool CheckRedisUrl(char **newval, void **extra, GucSource source) noexcept;
void AssignRedisUrl(const char *newval, void *extra) noexcept;

namespace store {
extern int flush_interval_ms;  // pg_tenant.flush_interval
extern char *meter_database;   // pg_tenant.database
}  // namespace store

// The counters' shared memory (src/wiring/hooks.cpp).
void RequestSharedMemory() noexcept;
void StartSharedMemory() noexcept;

// The flusher worker (src/meters/flusher.cpp), registered while preloading.
void RegisterWorker();

}  // namespace pg_tenant::meters
