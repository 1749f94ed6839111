// Exact row quotas (DESIGN.md capability 6): tenant.limit_rows keeps a per-tenant row count in
// tenant.row_counts in the writing transaction. The counting triggers and the counter updates
// are C++ (here); enrolling tables, recounting and the DDL bookkeeping are SQL (quotas.sql).
#pragma once

#include "event/event.hpp"

namespace pg_tenant::quotas {

// DDL door steps: after CREATE TABLE / ALTER TABLE, partitions and children join or leave
// their parent's quota (tenant._row_quota_after_ddl); after a drop, dropped tables leave it
// (tenant._row_quota_after_drop). Both do nothing while no table has a quota.
void AfterCommand(ddl::Event &event);
void AfterDrop(ddl::Event &event);

}  // namespace pg_tenant::quotas
