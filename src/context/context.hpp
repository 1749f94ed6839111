// The tenant context: the GUC pg_tenant.tenant_id and the functions that set and read it.
#pragma once

namespace pg_tenant::context {

// Called from _PG_init: defines pg_tenant.tenant_id.
void Init();

}  // namespace pg_tenant::context
