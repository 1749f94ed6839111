// The DDL guard: event triggers that keep guarded schemas tenant-scoped and protected tables
// protected (DESIGN.md capability 5).
#pragma once

namespace pg_tenant::guard {

// Called from _PG_init: pg_tenant.guarded_schemas, pg_tenant.enforce, pg_tenant.auto_protect.
void Init();

}  // namespace pg_tenant::guard
