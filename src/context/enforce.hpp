// Per-statement enforcement of the context (strict context, read-only tenants): a step of the
// executor door (src/executor/door.cpp).
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::context {

// Before the executor starts a statement: TN008 (pg_tenant.missing_context = error, a scoped
// table and no tenant) and TN010 (a read-only tenant's INSERT, UPDATE or MERGE).
void CheckStatement(QueryDesc *query, int eflags) noexcept;

}  // namespace pg_tenant::context
