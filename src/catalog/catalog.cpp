#include "catalog/catalog.hpp"

#include "bridge/cache.hpp"

#include <cstring>

namespace pg_tenant::catalog {

using bridge::PgCall;

namespace detail {
Oid relations[static_cast<int>(Rel::kCount)];
uint64 generation = 1;
uint64 registry_generation = 1;
}  // namespace detail

namespace {

constexpr const char *kSchema = "tenant";
constexpr const char *kExtension = "pg_tenant";

// In the order of Rel.
constexpr const char *kRelationNames[] = {
    "tenants",      "tenants_pkey",      "tenants_slug_key", "plans",          "plans_pkey",
    "tenant_limits", "tenant_limits_pkey", "plan_limits",      "plan_limits_pkey", "row_counts",
    "row_counts_pkey", "row_quotas",      "row_quotas_pkey",  "scoped_tables",  "scoped_tables_pkey",
};
static_assert(sizeof(kRelationNames) / sizeof(kRelationNames[0]) == static_cast<size_t>(Rel::kCount));

// In the order of Func.
constexpr const char *kFunctionNames[] = {"current_id",          "_tenant_key_check",    "_row_quota_inserted",
                                           "_row_quota_updated",  "_row_quota_deleted",   "_row_quota_truncated"};
static_assert(sizeof(kFunctionNames) / sizeof(kFunctionNames[0]) == static_cast<size_t>(Func::kCount));

// The registry's data lives in these (an invalidation of one bumps the registry generation).
bool HoldsRegistryData(int index) {
  switch (static_cast<Rel>(index)) {
    case Rel::kTenants:
    case Rel::kPlans:
    case Rel::kTenantLimits:
    case Rel::kPlanLimits:
      return true;
    default:
      return false;
  }
}

// The anchor: schema and extension, cached only once tenant.tenants is found (its drop voids them).
Oid schema_oid = InvalidOid;
Oid extension_oid = InvalidOid;
Oid registry_owner = InvalidOid;

constexpr int kMaxWatched = 16;
Oid watched[kMaxWatched];
int watched_count = 0;

Oid functions[static_cast<int>(Func::kCount)];
uint32 function_hashes[static_cast<int>(Func::kCount)];

// Counts every invalidation this backend processed: a look-up during which one arrived is not
// cached (it may have read what the invalidation voids).
uint64 invalidations_seen = 0;

struct ScopedEntry {
  Oid relid;  // hash key
  bool scoped;
};
MemoryContext scoped_context = nullptr;
HTAB *scoped_cache = nullptr;

// Forgetting the watched shards too: until the registry watches them again (at its next look-up,
// after the generation change), an invalidation of one could be missed, so their holders start
// over as well (only on Citus: nothing is watched elsewhere).
void ForgetRelations() noexcept {
  for (Oid &relation : detail::relations) relation = InvalidOid;
  schema_oid = extension_oid = registry_owner = InvalidOid;
  if (watched_count > 0) ++detail::registry_generation;
  watched_count = 0;
  ++detail::generation;
}

}  // namespace

void OnRelcacheInvalidation(Datum, Oid relid) noexcept {
  ++invalidations_seen;
  if (relid == InvalidOid) {
    ForgetRelations();
    ++detail::registry_generation;
    scoped_cache = nullptr;  // emptied (with its memory) at the next look-up
    return;
  }
  bool ours = false, registry = false;
  for (int i = 0; i < static_cast<int>(Rel::kCount); ++i)
    if (detail::relations[i] == relid) {
      ours = true;
      registry = registry || HoldsRegistryData(i);
    }
  for (int i = 0; i < watched_count; ++i)
    if (watched[i] == relid) ours = registry = true;
  if (ours && (relid == detail::relations[static_cast<int>(Rel::kScopedTables)] ||
               relid == detail::relations[static_cast<int>(Rel::kScopedTablesPkey)]))
    scoped_cache = nullptr;
  if (ours) ForgetRelations();
  if (registry) ++detail::registry_generation;
  // A look-up in a backend-local hash table neither allocates nor raises.
  if (scoped_cache != nullptr) hash_search(scoped_cache, &relid, HASH_REMOVE, nullptr);
}

void OnProcInvalidation(Datum, int, uint32 hashvalue) noexcept {
  ++invalidations_seen;
  for (int i = 0; i < static_cast<int>(Func::kCount); ++i)
    if (hashvalue == 0 || function_hashes[i] == hashvalue) functions[i] = InvalidOid;
}

namespace {

// Schema tenant, and the anchor when tenant.tenants is there. Inside PgCall.
Oid ResolveSchema(bool missing_ok) {
  if (OidIsValid(schema_oid)) return schema_oid;
  const uint64 seen = invalidations_seen;
  const Oid schema = get_namespace_oid(kSchema, missing_ok);
  if (!OidIsValid(schema)) return InvalidOid;
  const Oid tenants = get_relname_relid(kRelationNames[static_cast<int>(Rel::kTenants)], schema);
  const Oid extension = get_extension_oid(kExtension, true);
  if (OidIsValid(tenants) && seen == invalidations_seen) {
    schema_oid = schema;
    extension_oid = extension;
    detail::relations[static_cast<int>(Rel::kTenants)] = tenants;
  }
  return schema;
}

}  // namespace

namespace detail {

Oid LookUpRelation(Rel rel) {
  const int index = static_cast<int>(rel);
  return PgCall([index] {
    const uint64 seen = invalidations_seen;
    const Oid schema = ResolveSchema(true);
    if (!OidIsValid(schema)) return InvalidOid;
    const Oid found = get_relname_relid(kRelationNames[index], schema);
    // Cached only under the anchor (schema_oid set), so a drop of the extension voids it.
    if (OidIsValid(found) && OidIsValid(schema_oid) && seen == invalidations_seen) relations[index] = found;
    return found;
  });
}

}  // namespace detail

Oid Schema(bool missing_ok) {
  if (OidIsValid(schema_oid)) return schema_oid;
  return PgCall([missing_ok] { return ResolveSchema(missing_ok); });
}

Oid FunctionId(Func func, bool missing_ok) {
  const int index = static_cast<int>(func);
  if (OidIsValid(functions[index])) return functions[index];
  return PgCall([index, missing_ok] {
    const uint64 seen = invalidations_seen;
    List *name = list_make2(makeString(pstrdup(kSchema)), makeString(pstrdup(kFunctionNames[index])));
    const Oid found = LookupFuncName(name, 0, nullptr, missing_ok);
    if (OidIsValid(found) && seen == invalidations_seen) {
      function_hashes[index] = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(found));
      functions[index] = found;
    }
    return found;
  });
}

Oid ExtensionOwner() {
  const Oid owner = PgCall([] {
    (void)ResolveSchema(true);
    const Oid extension = OidIsValid(extension_oid) ? extension_oid : get_extension_oid(kExtension, true);
    if (!OidIsValid(extension)) return InvalidOid;
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    const Oid found = HeapTupleIsValid(tuple) ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extowner : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
  });
  if (!OidIsValid(owner)) throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "pg_tenant is not installed in this database");
  return owner;
}

Oid RegistryOwner() {
  if (OidIsValid(registry_owner)) return registry_owner;
  (void)Schema(false);
  const Oid tenants = RelationId(Rel::kTenants);
  const uint64 seen = invalidations_seen;
  const Oid owner = PgCall([tenants] {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(tenants));
    if (!HeapTupleIsValid(tuple)) return InvalidOid;
    const Oid found = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return found;
  });
  if (!OidIsValid(owner))
    throw Error(ERRCODE_UNDEFINED_TABLE, "relation with OID " + std::to_string(tenants) + " does not exist");
  if (seen == invalidations_seen && detail::relations[static_cast<int>(Rel::kTenants)] == tenants) registry_owner = owner;
  return owner;
}

void WatchRegistryRelation(Oid relid) {
  for (int i = 0; i < watched_count; ++i)
    if (watched[i] == relid) return;
  if (watched_count < kMaxWatched)
    watched[watched_count++] = relid;
  else
    ++detail::registry_generation;  // cannot happen (a few shards); never miss one: look again
}

std::optional<std::string> ScopedColumn(Oid relid) {
  // In a database without the extension (the library is preloaded for all) nothing is scoped.
  const Oid catalog = RelationId(Rel::kScopedTables);
  const Oid index = OidIsValid(catalog) ? RelationId(Rel::kScopedTablesPkey) : InvalidOid;
  if (!OidIsValid(index)) return std::nullopt;
  char column[NAMEDATALEN] = {0};
  const bool found = PgCall([&] {
    Relation rel = table_open(catalog, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(rel, index, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    bool hit = false;
    if (HeapTupleIsValid(tuple)) {
      bool isnull;
      Datum value = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull);
      if (!isnull) {
        strlcpy(column, NameStr(*DatumGetName(value)), sizeof(column));
        hit = true;
      }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return hit;
  });
  if (!found) return std::nullopt;
  return std::string(column);
}

bool IsScoped(Oid relid) {
  if (scoped_cache == nullptr)
    PgCall([] {
      cache::Reset(&scoped_context, "pg_tenant scoped tables");
      scoped_cache = cache::Table(scoped_context, "pg_tenant scoped", sizeof(Oid), sizeof(ScopedEntry), HASH_BLOBS);
    });
  // A look-up in a backend-local hash table does not ereport.
  if (auto *hit = static_cast<ScopedEntry *>(hash_search(scoped_cache, &relid, HASH_FIND, nullptr))) return hit->scoped;
  const bool scoped = ScopedColumn(relid).has_value();
  if (scoped_cache != nullptr)  // reading may have processed an invalidation that emptied it
    PgCall([&] { static_cast<ScopedEntry *>(hash_search(scoped_cache, &relid, HASH_ENTER, nullptr))->scoped = scoped; });
  return scoped;
}

}  // namespace pg_tenant::catalog
