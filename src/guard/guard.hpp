// The DDL guard (DESIGN.md capability 5): new tables in guarded schemas carry the tenant column,
// protected tables stay protected. It runs as steps of the DDL door (src/ddl).
#pragma once

#include "event/event.hpp"

namespace pg_tenant::guard {

// Called from _PG_init: pg_tenant.guarded_schemas, pg_tenant.enforce, pg_tenant.auto_protect.
void Init();

// True when schema is listed in pg_tenant.guarded_schemas. The list is parsed once, when it is
// set, the way PostgreSQL parses search_path: unquoted names are folded to lower case, quoted
// ones are taken as written ('"Billing", billing2'). The DDL guard and tenant.audit() (through
// tenant.guarded_schemas()) both ask here.
bool IsGuardedSchema(const char *schema);

// DDL door steps.
void AfterCommand(ddl::Event &event);
void AfterDrop(ddl::Event &event);

}  // namespace pg_tenant::guard
