// Fast usage meters in shared memory (DESIGN.md capability 7): tenant.meter(), tenant.try_meter(),
// persisted by a background worker.
#pragma once

namespace pg_tenant::meters {

// Called from _PG_init. Only when pg_tenant is in shared_preload_libraries does it request shared
// memory, define the meter GUCs and register the worker; otherwise the meter functions raise a
// clear error.
void Init();

}  // namespace pg_tenant::meters
