// pg_tenant's own catalog as seen from C++: the OIDs of schema tenant, its tables and the indexes
// the C++ scans, the functions it recognises in policies and triggers, the extension and its
// owner, and which user tables are tenant-scoped. Every other file asks here instead of looking
// names up (one cache per backend, as Citus keeps its metadata cache).
//
// Cached: an OID once found, until an invalidation names it. One relcache callback watches every
// cached relation (a DROP EXTENSION drops them all: each drop sends its relid; ALTER TABLE ...
// OWNER and renames send it too) and one syscache callback (PROCOID) the cached functions. The
// schema and the extension are cached only together with tenant.tenants, so dropping the
// extension always voids them. Nothing missing is cached: a database where the library is
// loaded but the extension not created (or only partly, during CREATE EXTENSION, or an older
// version without some table) looks again at each ask, as every caller did before.
// The callbacks never allocate or raise; the look-ups are made lazily, at the next ask.
#pragma once

#include "bridge/bridge.hpp"

#include <optional>
#include <string>

namespace pg_tenant::catalog {

enum class Rel : int {
  kTenants,
  kTenantsPkey,
  kTenantsSlugKey,
  kPlans,
  kPlansPkey,
  kTenantLimits,
  kTenantLimitsPkey,
  kPlanLimits,
  kPlanLimitsPkey,
  kRowCounts,
  kRowCountsPkey,
  kRowQuotas,
  kRowQuotasPkey,
  kScopedTables,
  kScopedTablesPkey,
  kCount
};

enum class Func : int {
  kCurrentId,
  kTenantKeyCheck,
  kRowQuotaInserted,  // the row quota's trigger functions, in src/quotas/tables.cpp's order
  kRowQuotaUpdated,
  kRowQuotaDeleted,
  kRowQuotaTruncated,
  kCount
};

namespace detail {
extern Oid relations[static_cast<int>(Rel::kCount)];
extern uint64 generation;
extern uint64 registry_generation;
Oid LookUpRelation(Rel rel);
}  // namespace detail

// The relation, or InvalidOid when it is not there (extension missing in this database, or an
// older version without it). A cached answer costs an array read. May throw PgError.
inline Oid RelationId(Rel rel) {
  const Oid cached = detail::relations[static_cast<int>(rel)];
  return OidIsValid(cached) ? cached : detail::LookUpRelation(rel);
}

// Schema tenant: InvalidOid when missing and missing_ok, else PostgreSQL's own error
// (get_namespace_oid's 3F000).
Oid Schema(bool missing_ok);

// The function (no arguments), or InvalidOid when missing and missing_ok, else PostgreSQL's own
// error (LookupFuncName's 42883).
Oid FunctionId(Func func, bool missing_ok);

// The owner of the pg_tenant extension, read from pg_extension by the cached extension OID each
// time (no invalidation reaches a backend when REASSIGN OWNED changes it). 55000 when the
// extension is not installed in this database.
Oid ExtensionOwner();

// The owner of tenant.tenants (the tenant key's check runs as it), cached; an ALTER TABLE ...
// OWNER invalidates it. 42P01 when the registry is missing.
Oid RegistryOwner();

// Changes whenever a cached relation (or every relation) is invalidated: who keeps something read
// from these relations (attribute numbers, Citus shards) reads it again.
inline uint64 Generation() { return detail::generation; }

// Changes whenever the registry's data may have changed: an invalidation of tenants, plans,
// tenant_limits, plan_limits (tenant._registry_changed sends one of tenant.tenants at each write),
// of a watched relation, or of every relation. registry::Generation() is this.
inline uint64 RegistryGeneration() { return detail::registry_generation; }

// Where the registry's rows are read from besides the tables (on Citus, their shards on this
// node): their invalidation counts as the registry's, until the next Generation() change.
void WatchRegistryRelation(Oid relid);

// The tenant column of a table in tenant.scoped_tables, or nullopt (one index lookup, no SQL;
// nullopt when the extension is not installed).
std::optional<std::string> ScopedColumn(Oid relid);

// Whether a table is in tenant.scoped_tables, remembered per backend until the table's relcache
// entry is invalidated (protect and unprotect alter the table): for the executor hook, which asks
// for every table of every statement in strict mode.
bool IsScoped(Oid relid);

// The invalidation callbacks (registered in src/wiring/hooks.cpp): a relcache invalidation of a
// cached relation (or of all) drops every OID; a pg_proc change drops the cached functions.
void OnRelcacheInvalidation(Datum arg, Oid relid) noexcept;
void OnProcInvalidation(Datum arg, int cache_id, uint32 hashvalue) noexcept;

}  // namespace pg_tenant::catalog
