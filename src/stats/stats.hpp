// Per-tenant observability (DESIGN.md capability 11): statement counters per (database, tenant)
// in shared memory, read through tenant.stats, tenant.top_tenants() and
// tenant.stats_for_export(); the tenant tag on server log lines (log_tag.cpp).
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::stats {

// Called from _PG_init: the executor hooks (always: they also remember each statement's tenant
// for the log tag) and, only when pg_tenant is in shared_preload_libraries, the shared memory,
// its GUCs and the file it is saved to; without preloading the SQL functions raise 55000.
void Init();

// The tenant of the top-level statement the client's current command ran last, when it had one:
// for a log line written after that statement's transaction ended (the slow-query log of an
// autocommit statement comes after its COMMIT reset tenant.set()). nullptr otherwise.
const pg_uuid_t *StatementTenant() noexcept;

// Called from Init: pg_tenant.log_tenant and the emit_log_hook (log_tag.cpp).
void InitLogTag();

}  // namespace pg_tenant::stats
