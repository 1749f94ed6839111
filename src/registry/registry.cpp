#include "registry/registry.hpp"

#include "registry/slug.hpp"

#include "bridge/cache.hpp"
#include "catalog/catalog.hpp"
#include "citus/citus.hpp"
#include "bridge/errcodes.hpp"
#include "common/uuid_text.hpp"

#include <string>

namespace pg_tenant::registry {

int cache_capacity = 10000;  // pg_tenant.tenant_cache_size (registered in src/wiring/settings.cpp)

namespace {

using bridge::PgCall;

// Where the registry lives in this database (the catalog's OIDs); resolved lazily, again after
// each change of catalog::Generation(). The tables' rows are read from tenants_rows and
// plans_rows: the tables themselves, or on Citus their shard on this node (citus::RowsOf), with
// the shard's indexes (watched by the catalog's invalidation callback).
struct RegistryOids {
  Oid tenants = InvalidOid;
  Oid plans = InvalidOid;
  Oid tenants_rows = InvalidOid;
  Oid plans_rows = InvalidOid;
  Oid tenants_pkey = InvalidOid;
  Oid tenants_slug_key = InvalidOid;
  Oid plans_pkey = InvalidOid;
  AttrNumber att_features = InvalidAttrNumber;       // tenants.feature_overrides
  AttrNumber att_plan_name = InvalidAttrNumber;      // plans.name
  AttrNumber att_plan_features = InvalidAttrNumber;  // plans.features
  AttrNumber att_plan_upgrade_url = InvalidAttrNumber;
  AttrNumber att_id = InvalidAttrNumber;
  AttrNumber att_slug = InvalidAttrNumber;
  AttrNumber att_plan = InvalidAttrNumber;
  AttrNumber att_status = InvalidAttrNumber;
};

struct SlugEntry {
  char slug[kNameBufferSize];  // hash key
  pg_uuid_t id;
};

RegistryOids oids;
uint64 oids_generation = 0;   // the catalog::Generation() oids were resolved under (0: never)
uint64 cache_generation = 0;  // the catalog::RegistryGeneration() the cached records were read under
MemoryContext cache_context = nullptr;
HTAB *by_id = nullptr;
HTAB *by_slug = nullptr;
bool tables_ready = false;  // by_id and by_slug point to live tables (CachedSlug reads them)
int64 cache_hits = 0;
int64 cache_misses = 0;
int64 cache_resets = 0;

// Empties the cache (no C++ objects alive here; PostgreSQL errors are plain OOM).
void ResetCache() {
  const uint64 read_under = catalog::RegistryGeneration();
  tables_ready = false;
  PgCall([] {
    cache::Reset(&cache_context, "pg_tenant registry cache");
    by_id = cache::Table(cache_context, "pg_tenant tenants by id", sizeof(pg_uuid_t), sizeof(TenantRecord), HASH_BLOBS);
    by_slug = cache::Table(cache_context, "pg_tenant tenants by slug", kNameBufferSize, sizeof(SlugEntry), HASH_STRINGS);
  });
  tables_ready = true;
  ++cache_resets;
  cache_generation = read_under;
}

bool cache_valid() { return cache_generation == catalog::RegistryGeneration(); }

void ResolveOids() {
  const uint64 resolved_under = catalog::Generation();
  RegistryOids found;
  found.tenants = catalog::RelationId(catalog::Rel::kTenants);
  found.plans = catalog::RelationId(catalog::Rel::kPlans);
  found.tenants_pkey = catalog::RelationId(catalog::Rel::kTenantsPkey);
  found.tenants_slug_key = catalog::RelationId(catalog::Rel::kTenantsSlugKey);
  found.plans_pkey = catalog::RelationId(catalog::Rel::kPlansPkey);
  if (OidIsValid(found.tenants) && OidIsValid(found.plans) && OidIsValid(found.tenants_pkey) &&
      OidIsValid(found.tenants_slug_key) && OidIsValid(found.plans_pkey)) {
    const citus::LocalRows tenants_by_id = citus::RowsOf(found.tenants, found.tenants_pkey);
    found.tenants_rows = tenants_by_id.table;
    found.tenants_pkey = tenants_by_id.index;
    found.tenants_slug_key = citus::RowsOf(found.tenants, found.tenants_slug_key).index;
    const citus::LocalRows plans = citus::RowsOf(found.plans, found.plans_pkey);
    found.plans_rows = plans.table;
    found.plans_pkey = plans.index;
    if (found.tenants_rows != found.tenants) catalog::WatchRegistryRelation(found.tenants_rows);
    if (found.plans_rows != found.plans) catalog::WatchRegistryRelation(found.plans_rows);
    PgCall([&] {
      found.att_plan_name = get_attnum(found.plans_rows, "name");
      found.att_plan_features = get_attnum(found.plans_rows, "features");
      found.att_plan_upgrade_url = get_attnum(found.plans_rows, "upgrade_url");
      found.att_id = get_attnum(found.tenants_rows, "id");
      found.att_slug = get_attnum(found.tenants_rows, "slug");
      found.att_plan = get_attnum(found.tenants_rows, "plan");
      found.att_status = get_attnum(found.tenants_rows, "status");
      found.att_features = get_attnum(found.tenants_rows, "feature_overrides");
    });
  }
  if (!OidIsValid(found.tenants) || !OidIsValid(found.plans) || !OidIsValid(found.tenants_pkey) ||
      !OidIsValid(found.tenants_slug_key) || found.att_id == InvalidAttrNumber ||
      found.att_slug == InvalidAttrNumber || found.att_plan == InvalidAttrNumber ||
      found.att_status == InvalidAttrNumber || !OidIsValid(found.plans_pkey) ||
      found.att_features == InvalidAttrNumber || found.att_plan_name == InvalidAttrNumber ||
      found.att_plan_features == InvalidAttrNumber || found.att_plan_upgrade_url == InvalidAttrNumber)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the pg_tenant registry is not installed in this database",
                "Schema \"tenant\" with tables \"tenants\" and \"plans\" was not found.",
                "Run CREATE EXTENSION pg_tenant in this database.");
  oids = found;
  // An invalidation during the look-ups (lock acquisition) makes the next call look again.
  oids_generation = resolved_under;
}

void EnsureReady() {
  if (oids_generation != catalog::Generation()) ResolveOids();
  if (!cache_valid()) ResetCache();
}

void CopyText(char (&to)[kNameBufferSize], Datum value) {
  char *copy = TextDatumGetCString(value);
  strlcpy(to, copy, sizeof(to));
  pfree(copy);
}

// Reads one tenant row through an index (the latest committed state, as catalog lookups do).
bool FetchTenant(Oid index, AttrNumber key_attribute, RegProcedure equality, Datum key_value,
                 TenantRecord *out) {
  return PgCall([&] {
    bool found = false;
    Relation rel = table_open(oids.tenants_rows, AccessShareLock);
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, key_attribute, BTEqualStrategyNumber, InvalidOid, DEFAULT_COLLATION_OID,
                           equality, key_value);
    SysScanDesc scan = systable_beginscan(rel, index, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    if (HeapTupleIsValid(tuple)) {
      TupleDesc desc = RelationGetDescr(rel);
      bool id_null, slug_null, plan_null, status_null;
      Datum id = heap_getattr(tuple, oids.att_id, desc, &id_null);
      Datum slug = heap_getattr(tuple, oids.att_slug, desc, &slug_null);
      Datum plan = heap_getattr(tuple, oids.att_plan, desc, &plan_null);
      Datum status = heap_getattr(tuple, oids.att_status, desc, &status_null);
      if (!id_null && !slug_null && !plan_null && !status_null) {
        memcpy(&out->id, DatumGetUUIDP(id), sizeof(pg_uuid_t));
        CopyText(out->slug, slug);
        CopyText(out->plan, plan);
        char status_text[kNameBufferSize];
        CopyText(status_text, status);
        out->read_only = strcmp(status_text, "read_only") == 0;
        out->active = out->read_only || strcmp(status_text, "active") == 0;
        bool features_null;
        Datum overrides = heap_getattr(tuple, oids.att_features, desc, &features_null);
        out->features = features_null ? nullptr : DatumGetJsonbPCopy(overrides);
        out->upgrade_url = nullptr;
        found = true;
      }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    if (found) {
      // The plan's defaults, overridden by the tenant's own flags (jsonb ||).
      Relation plans = table_open(oids.plans_rows, AccessShareLock);
      ScanKeyEntryInitialize(&key, 0, oids.att_plan_name, BTEqualStrategyNumber, InvalidOid, DEFAULT_COLLATION_OID,
                             F_TEXTEQ, CStringGetTextDatum(out->plan));
      SysScanDesc plan_scan = systable_beginscan(plans, oids.plans_pkey, true, nullptr, 1, &key);
      HeapTuple plan = systable_getnext(plan_scan);
      bool plan_null = true, url_null = true;
      Datum defaults = (Datum)0, url = (Datum)0;
      if (HeapTupleIsValid(plan)) {
        defaults = heap_getattr(plan, oids.att_plan_features, RelationGetDescr(plans), &plan_null);
        url = heap_getattr(plan, oids.att_plan_upgrade_url, RelationGetDescr(plans), &url_null);
      }
      if (!plan_null) {
        Datum merged = out->features != nullptr
                           ? DirectFunctionCall2(jsonb_concat, defaults, JsonbPGetDatum(out->features))
                           : defaults;
        out->features = DatumGetJsonbPCopy(merged);
      }
      out->upgrade_url = url_null ? nullptr : TextDatumGetCString(url);
      systable_endscan(plan_scan);
      table_close(plans, AccessShareLock);
    }
    return found;
  });
}

const TenantRecord *Remember(const TenantRecord &fetched) {
  // Reading the row can process invalidations (lock acquisition): start over if it did.
  if (!cache_valid() || hash_get_num_entries(by_id) >= cache_capacity) ResetCache();
  return PgCall([&] {
    bool found;
    auto *entry = static_cast<TenantRecord *>(hash_search(by_id, &fetched.id, HASH_ENTER, &found));
    *entry = fetched;
    // The cache keeps its own copies, freed with the cache.
    MemoryContext previous = MemoryContextSwitchTo(cache_context);
    if (fetched.features != nullptr)
      entry->features = DatumGetJsonbP(datumCopy(JsonbPGetDatum(fetched.features), false, -1));
    if (fetched.upgrade_url != nullptr) entry->upgrade_url = pstrdup(fetched.upgrade_url);
    MemoryContextSwitchTo(previous);
    auto *slug_entry = static_cast<SlugEntry *>(hash_search(by_slug, fetched.slug, HASH_ENTER, &found));
    slug_entry->id = fetched.id;
    return static_cast<const TenantRecord *>(entry);
  });
}

}  // namespace

const TenantRecord *FindById(const pg_uuid_t &id) {
  EnsureReady();
  auto *cached =
      PgCall([&] { return static_cast<TenantRecord *>(hash_search(by_id, &id, HASH_FIND, nullptr)); });
  if (cached != nullptr) {
    ++cache_hits;
    return cached;
  }
  ++cache_misses;
  TenantRecord fetched;
  if (!FetchTenant(oids.tenants_pkey, oids.att_id, F_UUID_EQ, UUIDPGetDatum(const_cast<pg_uuid_t *>(&id)),
                   &fetched))
    return nullptr;
  return Remember(fetched);
}

const TenantRecord *FindBySlug(std::string_view slug) {
  // Anything that is not a valid slug cannot be in the table (CHECK): no need to look.
  if (!IsValidSlug(slug)) return nullptr;
  EnsureReady();
  char key[kNameBufferSize];
  memcpy(key, slug.data(), slug.size());
  key[slug.size()] = '\0';
  auto *cached =
      PgCall([&] { return static_cast<SlugEntry *>(hash_search(by_slug, key, HASH_FIND, nullptr)); });
  if (cached != nullptr) {
    auto *record = PgCall(
        [&] { return static_cast<TenantRecord *>(hash_search(by_id, &cached->id, HASH_FIND, nullptr)); });
    if (record != nullptr) {
      ++cache_hits;
      return record;
    }
  }
  ++cache_misses;
  TenantRecord fetched;
  Datum key_datum = PgCall([&] { return PointerGetDatum(cstring_to_text(key)); });
  if (!FetchTenant(oids.tenants_slug_key, oids.att_slug, F_TEXTEQ, key_datum, &fetched)) return nullptr;
  return Remember(fetched);
}

bool IsRegistered(const pg_uuid_t &id) {
  try {
    return FindById(id) != nullptr;
  } catch (const Error &) {  // ours: the registry is not installed here (a PgError goes on)
    return false;
  }
}

bool CachedSlug(const pg_uuid_t &id, char (&out)[kNameBufferSize]) noexcept {
  if (!tables_ready) return false;
  // A HASH_FIND neither allocates nor raises.
  const auto *record = static_cast<const TenantRecord *>(hash_search(by_id, &id, HASH_FIND, nullptr));
  if (record == nullptr) return false;
  strlcpy(out, record->slug, sizeof(out));
  return true;
}

uint64 Generation() { return catalog::RegistryGeneration(); }

bool PlanExists(std::string_view plan) {
  EnsureReady();
  const std::string name(plan);
  return PgCall([&] {
    Relation plans = table_open(oids.plans_rows, AccessShareLock);
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, oids.att_plan_name, BTEqualStrategyNumber, InvalidOid, DEFAULT_COLLATION_OID,
                           F_TEXTEQ, CStringGetTextDatum(name.c_str()));
    SysScanDesc scan = systable_beginscan(plans, oids.plans_pkey, true, nullptr, 1, &key);
    const bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(plans, AccessShareLock);
    return found;
  });
}

Error TenantNotFound(const std::string &asked) {
  return Error(errcodes::kTenantNotFound, "tenant \"" + asked + "\" does not exist", "",
               "Tenants are registered with tenant.create().");
}

Error PlanNotFound(std::string_view plan) {
  return Error(errcodes::kPlanNotFound, "plan \"" + std::string(plan) + "\" does not exist", "",
               "Plans are rows of tenant.plans.");
}

std::string IdText(const pg_uuid_t &id) {
  UuidBytes bytes;
  memcpy(bytes.data(), id.data, UUID_LEN);
  return FormatUuid(bytes);
}


}  // namespace pg_tenant::registry

using namespace pg_tenant;
using pg_tenant::bridge::PgCall;

// tenant._registry_changed(): statement trigger on the registry's tables.
PG_TENANT_FUNCTION(pg_tenant_registry_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "tenant._registry_changed() must be called as a trigger");
  // Whatever registry table changed (tenants, plans, limits), invalidate tenant.tenants: that is
  // the relation every backend's callback watches.
  (void)catalog::Schema(false);
  const Oid tenants = catalog::RelationId(catalog::Rel::kTenants);
  if (OidIsValid(tenants)) PgCall([tenants] { CacheInvalidateRelcacheByRelid(tenants); });
  return PointerGetDatum(nullptr);
}

// tenant.is_valid_slug(text) returns boolean: the slug rule (also the tenants CHECK constraint).
PG_TENANT_FUNCTION(pg_tenant_is_valid_slug) {
  text *slug = PG_GETARG_TEXT_PP(0);
  PG_RETURN_BOOL(IsValidSlug(std::string_view(VARDATA_ANY(slug), VARSIZE_ANY_EXHDR(slug))));
}

// tenant.cache_info(): this backend's registry cache, for DBAs and tests.
PG_TENANT_FUNCTION(pg_tenant_cache_info) {
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "tenant.cache_info() must return a record");
  int64 entries =
      (registry::cache_valid() && registry::by_id != nullptr) ? hash_get_num_entries(registry::by_id) : 0;
  Datum values[5] = {Int64GetDatum(entries), Int32GetDatum(registry::cache_capacity),
                     Int64GetDatum(registry::cache_hits), Int64GetDatum(registry::cache_misses),
                     Int64GetDatum(registry::cache_resets)};
  bool nulls[5] = {false, false, false, false, false};
  return PgCall([&] { return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)); });
}

// tenant._check_plan(plan text): 22004 for NULL, TN003 unless the plan exists.
PG_TENANT_FUNCTION(pg_tenant_check_plan) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "plan must not be NULL");
  text *plan = PG_GETARG_TEXT_PP(0);
  const std::string_view name(VARDATA_ANY(plan), VARSIZE_ANY_EXHDR(plan));
  if (!registry::PlanExists(name)) throw registry::PlanNotFound(name);
  PG_RETURN_VOID();
}

// tenant._check_tenant(tenant uuid): 22004 for NULL, TN001 unless the tenant exists (any status).
PG_TENANT_FUNCTION(pg_tenant_check_tenant) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  const pg_uuid_t *id = PG_GETARG_UUID_P(0);
  if (registry::FindById(*id) == nullptr) throw registry::TenantNotFound(registry::IdText(*id));
  PG_RETURN_VOID();
}
