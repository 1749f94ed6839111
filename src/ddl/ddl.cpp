// The DDL door. PostgreSQL fires event triggers of one event in the order of their names; pg_tenant
// has one trigger per event and writes the order of its steps here instead:
//
// ddl_command_end (CREATE TABLE [AS], SELECT INTO, CREATE SCHEMA, ALTER TABLE, CREATE/ALTER POLICY,
// CREATE MATERIALIZED VIEW):
//   1. guard: refuse a new table without the tenant column in a guarded schema (TN004) and any
//      weakening of a protected table (TN005); auto_protect. First, so nothing below acts on
//      DDL that is refused.
//   2. protect new children: a new or attached partition or child of a protected table is
//      protected in the same transaction.
//   3. row quotas: partitions and children join or leave their parent's quota; its triggers
//      stay ENABLE ALWAYS. After 2, so a new partition is protected before its rows are counted.
//   4. citus policies (CREATE POLICY): the restrictive policy restored on Citus shards, no other
//      policy on a protected Citus table (src/policy/citus_policy.hpp).
// sql_drop (every command that drops something):
//   1. forget dropped tables (tenant.scoped_tables).
//   2. guard: a dropped generated policy, tenant key or tenant column of a protected table.
//   3. row quotas: dropped counted tables leave their quota; the others are recounted.
#include "ddl/ddl.hpp"

#include "guard/guard.hpp"
#include "policy/citus_policy.hpp"
#include "policy/protect.hpp"
#include "quotas/quotas.hpp"

namespace pg_tenant::ddl {
namespace {

using bridge::PgCall;

constexpr Step kCommandEndSteps[] = {
    {"guard", guard::AfterCommand},
    {"protect new children", policy::ProtectNewChildren},
    {"row quotas", quotas::AfterCommand},
    {"citus policies", policy::AfterCreatePolicy},
};

constexpr Step kSqlDropSteps[] = {
    {"forget dropped tables", policy::ForgetDroppedTables},
    {"guard", guard::AfterDrop},
    {"row quotas", quotas::AfterDrop},
};

// How many door events are running: a step's own DDL (protect, quota triggers) passes the door
// again, inside the step.
int depth = 0;

class Depth {
 public:
  Depth() { ++depth; }
  ~Depth() { --depth; }
  Depth(const Depth &) = delete;
  Depth &operator=(const Depth &) = delete;
};

// DEBUG1 lines show the order the steps ran in (test/scripts/ddl_door.sh reads them).
void Trace(const Event &event, size_t index, size_t count, const Step &step) {
  PgCall([&] {
    if (message_level_is_interesting(DEBUG1))
      elog(DEBUG1, "pg_tenant %s step %zu of %zu: %s%s", event.IsDrop() ? "sql_drop" : "ddl_command_end", index + 1,
           count, step.name, depth > 1 ? " (nested)" : "");
  });
}

template <size_t N>
Datum RunSteps(FunctionCallInfo fcinfo, const Step (&steps)[N]) {
  Depth nested;
  Event event(fcinfo);
  for (size_t i = 0; i < N; ++i) {
    Trace(event, i, N, steps[i]);
    steps[i].run(event);
  }
  event.Finish();
  PG_RETURN_VOID();
}

}  // namespace

Datum RunAlone(FunctionCallInfo fcinfo, const Step &step) {
  Event event(fcinfo);
  step.run(event);
  event.Finish();
  PG_RETURN_VOID();
}

}  // namespace pg_tenant::ddl

using namespace pg_tenant;

// tenant._on_ddl_command_end(): the ddl_command_end event trigger.
PG_TENANT_FUNCTION(pg_tenant_on_ddl_command_end) { return ddl::RunSteps(fcinfo, ddl::kCommandEndSteps); }

// tenant._on_sql_drop(): the sql_drop event trigger.
PG_TENANT_FUNCTION(pg_tenant_on_sql_drop) { return ddl::RunSteps(fcinfo, ddl::kSqlDropSteps); }

// The event triggers of 0.3.0 and 0.4.0 (guard, protect new children), kept for databases that
// have not run ALTER EXTENSION pg_tenant UPDATE yet; the update drops them for the door.
PG_TENANT_FUNCTION(pg_tenant_guard_ddl_command_end) { return ddl::RunAlone(fcinfo, ddl::kCommandEndSteps[0]); }
PG_TENANT_FUNCTION(pg_tenant_protect_new_children) { return ddl::RunAlone(fcinfo, ddl::kCommandEndSteps[1]); }
PG_TENANT_FUNCTION(pg_tenant_guard_sql_drop) { return ddl::RunAlone(fcinfo, ddl::kSqlDropSteps[1]); }
