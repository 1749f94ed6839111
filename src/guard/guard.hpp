// Settings of the DDL guard (the guard itself comes with the DDL guard release; the audit
// already reads which schemas are guarded).
#pragma once

namespace pg_tenant::guard {

// Called from _PG_init: defines pg_tenant.guarded_schemas.
void Init();

}  // namespace pg_tenant::guard
