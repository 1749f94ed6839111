// Per-tenant observability (DESIGN.md capability 11): statement counters per (database, tenant)
// in shared memory, read through tenant.stats, tenant.top_tenants() and
// tenant.stats_for_export(); the tenant tag on server log lines (log_tag.cpp).
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::stats {

// The settings (registered, with their texts, in src/wiring/settings.cpp: pg_tenant.stats,
// stats_max_tenants and stats_period only when pg_tenant is preloaded; log_tenant always).
enum LogTenant { kLogOff, kLogId, kLogSlug };
extern bool stats_enabled;
extern int max_tenants;
extern int period_seconds;
extern int log_tenant;

// The statistics' steps of the executor door (src/executor/door.cpp): each measures a top-level
// statement around `inner` (the door's later steps and PostgreSQL's executor) and counts a
// statement that fails inside it (a re-throwing PG_CATCH). Always installed: they also remember
// each statement's tenant for the log tag.
void MeasureStart(QueryDesc *query, int eflags, ExecutorStart_hook_type inner) noexcept;
void MeasureRun(QueryDesc *query, ScanDirection direction, uint64 count, bool execute_once,
                ExecutorRun_hook_type inner) noexcept;
void MeasureFinish(QueryDesc *query, ExecutorFinish_hook_type inner) noexcept;
// Before ExecutorEnd: a top-level statement's measurements are stored.
void CountEnded(QueryDesc *query) noexcept;

// Shared memory (only when preloaded; without it the SQL functions raise 55000), and the file
// of the last clean shutdown: for src/wiring/hooks.cpp.
void RequestSharedMemory() noexcept;
void StartSharedMemory() noexcept;

// The tenant of the top-level statement the client's current command ran last, when it had one:
// for a log line written after that statement's transaction ended (the slow-query log of an
// autocommit statement comes after its COMMIT reset tenant.set()). nullptr otherwise.
const pg_uuid_t *StatementTenant() noexcept;

// The emit_log_hook's step (log_tag.cpp): masks secrets, tags the entry with the tenant.
void TagLogEntry(ErrorData *edata) noexcept;

}  // namespace pg_tenant::stats
