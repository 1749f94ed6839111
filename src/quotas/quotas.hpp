// Exact row quotas (DESIGN.md capability 6): tenant.limit_rows keeps a per-tenant row count in
// tenant.row_counts in the writing transaction. The counting triggers and the counter updates
// are C++ (quotas.cpp, ledger.cpp), and so are the quota triggers and the DDL bookkeeping
// (tables.cpp); enrolling a table and recounting are SQL (quotas.sql).
#pragma once

#include "event/event.hpp"

namespace pg_tenant::quotas {

// DDL door steps: after CREATE TABLE / ALTER TABLE, partitions and children join or leave
// their parent's quota; after a drop, dropped tables leave it (tables.cpp). Both do nothing
// while no table has a quota.
void AfterCommand(ddl::Event &event);
void AfterDrop(ddl::Event &event);

}  // namespace pg_tenant::quotas
