// What a statement may do in the current context, checked once per statement when the executor
// starts it (all statements, nested ones in functions and triggers included):
//  - pg_tenant.missing_context = error: a statement that reads or writes a tenant-scoped table
//    with no tenant set fails with TN008 naming the table, instead of seeing no rows;
//  - a read-only tenant (status 'read_only'): INSERT, UPDATE and MERGE on its scoped tables fail
//    with TN010; reads and deletes pass.
// Only tables to which row level security applies for the statement's user count (a superuser's,
// a BYPASSRLS role's or an unforced owner's statements pass), and a statement with a tenant set
// that writes nothing costs one test of its command type.
#include "context/enforce.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "catalog/catalog.hpp"
#include "context/context.hpp"
#include "registry/registry.hpp"

#include <string>

namespace pg_tenant::context {
namespace {

using bridge::PgCall;

// A tenant-scoped table whose rows this entry's user sees through row level security.
bool ScopedForUser(const RangeTblEntry *entry) {
  if (entry->rtekind != RTE_RELATION || !catalog::IsScoped(entry->relid)) return false;
  const Oid user = OidIsValid(entry->checkAsUser) ? entry->checkAsUser : GetUserId();
  return check_enable_rls(entry->relid, user, true) == RLS_ENABLED;
}

// The first scoped table among the plan's relations, or InvalidOid.
Oid FirstScopedTable(const PlannedStmt *statement) {
  ListCell *cell;
  foreach (cell, statement->rtable) {
    auto *entry = static_cast<RangeTblEntry *>(lfirst(cell));
    if (ScopedForUser(entry)) return entry->relid;
  }
  return InvalidOid;
}

// The first scoped table an INSERT, UPDATE or MERGE of the plan writes (its own or a CTE's);
// with for_user, only one to which row level security applies for the statement's user.
Oid FirstScopedTableWritten(const PlannedStmt *statement, bool for_user) {
  List *plans = lcons(statement->planTree, list_copy(statement->subplans));
  ListCell *cell;
  foreach (cell, plans) {
    auto *plan = static_cast<Plan *>(lfirst(cell));
    if (plan == nullptr || !IsA(plan, ModifyTable)) continue;
    auto *modify = reinterpret_cast<ModifyTable *>(plan);
    if (modify->operation == CMD_DELETE) continue;
    ListCell *index;
    foreach (index, modify->resultRelations) {
      const RangeTblEntry *entry = rt_fetch(lfirst_int(index), statement->rtable);
      if (for_user ? ScopedForUser(entry) : catalog::IsScoped(entry->relid)) return entry->relid;
    }
  }
  return InvalidOid;
}

bool Writes(const PlannedStmt *statement) {
  return statement->commandType == CMD_INSERT || statement->commandType == CMD_UPDATE ||
         statement->commandType == CMD_MERGE || statement->hasModifyingCTE;
}

void Check(const PlannedStmt *statement) {
  if (!HasContext()) {
    const Oid table = PgCall([&] { return FirstScopedTable(statement); });
    if (OidIsValid(table))
      throw Error(errcodes::kNoTenantContext, "no tenant is set",
                  "Table " + bridge::RelationName(table) + " is tenant-scoped, and pg_tenant.missing_context is error.",
                  "Call tenant.set() first.");
    return;
  }
  // Only a statement that writes a scoped table asks the registry (a database without the
  // extension has none). Unvalidated: an unknown or suspended tenant is refused where its rows are
  // touched (the policies call tenant.current_id()), not here.
  if (!OidIsValid(PgCall([&] { return FirstScopedTableWritten(statement, false); }))) return;
  const registry::TenantRecord *record = registry::FindById(*UnvalidatedTenant());
  if (record == nullptr || !record->read_only) return;
  const std::string slug = record->slug;
  const Oid table = PgCall([&] { return FirstScopedTableWritten(statement, true); });
  if (OidIsValid(table))
    throw Error(errcodes::kTenantReadOnly, "tenant \"" + slug + "\" is read-only",
                "Table " + bridge::RelationName(table) + " may be read and deleted from, not inserted into or updated.",
                "tenant.resume() makes it writable again.");
}

}  // namespace

void CheckStatement(QueryDesc *query, int eflags) noexcept {
  const PlannedStmt *statement = query->plannedstmt;
  // The common case costs a few tests: a statement in a tenant that writes nothing, or one with no
  // tenant under missing_context = empty. EXPLAIN without ANALYZE runs nothing.
  if (statement->commandType != CMD_UTILITY && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
      (HasContext() ? Writes(statement) : MissingContextIsError()))
    bridge::Guarded([&] { Check(statement); });
}

}  // namespace pg_tenant::context
