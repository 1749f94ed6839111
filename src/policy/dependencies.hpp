// What a view, materialized view or function reads or writes, followed through the catalogs:
// the guard refuses a materialized view that would copy scoped rows out, and the audit reports
// the ones that exist and the triggers that copy rows elsewhere.
#pragma once

#include "bridge/bridge.hpp"

#include <vector>

namespace pg_tenant::policy {

// The scoped tables a view or materialized view reads, at any depth: through views, materialized
// views, CTEs and SQL functions (their recorded dependencies, or their parsed body, whose
// unqualified names are resolved with the function's own search_path setting, else the current
// one). PL/pgSQL and C functions are opaque to it. Empty when it reads none.
std::vector<Oid> ScopedTablesRead(Oid relid);

// The tables a function writes to (INSERT, UPDATE, DELETE, MERGE, COPY): parsed for a SQL
// function, found by pattern in other bodies (policy/body_scan). Dynamic SQL is not seen.
std::vector<Oid> TablesWrittenBy(Oid function);

}  // namespace pg_tenant::policy
