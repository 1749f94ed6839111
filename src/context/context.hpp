// The tenant context: the GUC pg_tenant.tenant_id and the functions that set and read it.
#pragma once

#include "bridge/bridge.hpp"

#include <string>

namespace pg_tenant::context {

// Called from _PG_init: defines pg_tenant.tenant_id.
void Init();

// The current tenant, validated like tenant.current_id() (TN001/TN002 when the setting names an
// unknown or suspended tenant); false when there is none.
bool CurrentTenant(pg_uuid_t *tenant);

// TN008, for a function that needs a tenant and has none; detail says what needed it.
Error NoTenant(const std::string &detail);

}  // namespace pg_tenant::context
