// The DDL guard (DESIGN.md capability 5): new tables in guarded schemas carry the tenant column,
// protected tables stay protected. It runs as steps of the DDL door (src/ddl).
#pragma once

#include "event/event.hpp"

namespace pg_tenant::guard {

// The settings (registered, with their texts, in src/wiring/settings.cpp) and their hooks.
enum EnforceMode { kEnforceError, kEnforceWarn, kEnforceOff };
extern char *guarded_schemas_setting;  // pg_tenant.guarded_schemas
extern int enforce;                    // pg_tenant.enforce
extern bool auto_protect;              // pg_tenant.auto_protect
bool CheckGuardedSchemas(char **newval, void **extra, GucSource source) noexcept;
void AssignGuardedSchemas(const char *newval, void *extra) noexcept;

// True when schema is listed in pg_tenant.guarded_schemas. The list is parsed once, when it is
// set, the way PostgreSQL parses search_path: unquoted names are folded to lower case, quoted
// ones are taken as written ('"Billing", billing2'). The DDL guard and tenant.audit() (through
// tenant.guarded_schemas()) both ask here.
bool IsGuardedSchema(const char *schema);

// DDL door steps.
void AfterCommand(ddl::Event &event);
void AfterDrop(ddl::Event &event);

}  // namespace pg_tenant::guard
