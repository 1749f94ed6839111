#include "limits/limits.hpp"

#include <limits>

#include "bridge/cache.hpp"
#include "bridge/errcodes.hpp"
#include "catalog/catalog.hpp"
#include "citus/citus.hpp"
#include "registry/registry.hpp"

namespace pg_tenant::limits {
namespace {

using bridge::PgCall;

constexpr size_t kResourceBufferSize = 64;  // resource names are at most 63 bytes
constexpr long kCacheCapacity = 10000;      // entries; a full cache is emptied and refilled

struct LimitKey {  // hashed as bytes: always zeroed before filling
  pg_uuid_t tenant;
  char resource[kResourceBufferSize];
};

struct LimitEntry {
  LimitKey key;
  Limit limit;
};

// Where the limit tables are, resolved again whenever the registry generation changes.
struct LimitTables {
  Oid tenant_limits = InvalidOid, tenant_limits_pkey = InvalidOid;
  Oid plan_limits = InvalidOid, plan_limits_pkey = InvalidOid;
  AttrNumber tenant_tenant_id = InvalidAttrNumber, tenant_resource = InvalidAttrNumber;
  AttrNumber tenant_limit = InvalidAttrNumber, tenant_period = InvalidAttrNumber;
  AttrNumber plan_plan = InvalidAttrNumber, plan_resource = InvalidAttrNumber;
  AttrNumber plan_limit = InvalidAttrNumber, plan_period = InvalidAttrNumber;
  // 0.9.0 (InvalidAttrNumber while the database has not been updated: hard, no levels).
  AttrNumber tenant_enforcement = InvalidAttrNumber, tenant_alert_levels = InvalidAttrNumber;
  AttrNumber plan_enforcement = InvalidAttrNumber, plan_alert_levels = InvalidAttrNumber;
};

// The columns of a limit row FetchLimit reads.
struct LimitColumns {
  AttrNumber limit, period, enforcement, alert_levels;
};

LimitTables tables;
MemoryContext cache_context = nullptr;
HTAB *limit_table = nullptr;
uint64 cache_generation = 0;
// The entry of the last look-up: a meter called in a loop asks for the same one again.
const LimitEntry *last = nullptr;

void Reset() {
  PgCall([] {
    cache::Reset(&cache_context, "pg_tenant limit cache");
    limit_table = cache::Table(cache_context, "pg_tenant limits", sizeof(LimitKey), sizeof(LimitEntry), HASH_BLOBS);
    last = nullptr;
  });
  LimitTables t;
  t.tenant_limits = catalog::RelationId(catalog::Rel::kTenantLimits);
  t.tenant_limits_pkey = catalog::RelationId(catalog::Rel::kTenantLimitsPkey);
  t.plan_limits = catalog::RelationId(catalog::Rel::kPlanLimits);
  t.plan_limits_pkey = catalog::RelationId(catalog::Rel::kPlanLimitsPkey);
  tables = t;
  if (OidIsValid(tables.tenant_limits) && OidIsValid(tables.plan_limits) && OidIsValid(tables.tenant_limits_pkey) &&
      OidIsValid(tables.plan_limits_pkey)) {
    // On Citus, this node's shard of the reference tables (citus::RowsOf).
    const citus::LocalRows tenant_rows = citus::RowsOf(tables.tenant_limits, tables.tenant_limits_pkey);
    const citus::LocalRows plan_rows = citus::RowsOf(tables.plan_limits, tables.plan_limits_pkey);
    tables.tenant_limits = tenant_rows.table;
    tables.tenant_limits_pkey = tenant_rows.index;
    tables.plan_limits = plan_rows.table;
    tables.plan_limits_pkey = plan_rows.index;
    if (tenant_rows.table != t.tenant_limits) catalog::WatchRegistryRelation(tenant_rows.table);
    if (plan_rows.table != t.plan_limits) catalog::WatchRegistryRelation(plan_rows.table);
    PgCall([] {
      tables.tenant_tenant_id = get_attnum(tables.tenant_limits, "tenant_id");
      tables.tenant_resource = get_attnum(tables.tenant_limits, "resource");
      tables.tenant_limit = get_attnum(tables.tenant_limits, "limit");
      tables.tenant_period = get_attnum(tables.tenant_limits, "period");
      tables.plan_plan = get_attnum(tables.plan_limits, "plan");
      tables.plan_resource = get_attnum(tables.plan_limits, "resource");
      tables.plan_limit = get_attnum(tables.plan_limits, "limit");
      tables.plan_period = get_attnum(tables.plan_limits, "period");
      tables.tenant_enforcement = get_attnum(tables.tenant_limits, "enforcement");
      tables.tenant_alert_levels = get_attnum(tables.tenant_limits, "alert_levels");
      tables.plan_enforcement = get_attnum(tables.plan_limits, "enforcement");
      tables.plan_alert_levels = get_attnum(tables.plan_limits, "alert_levels");
    });
  }
  if (!OidIsValid(tables.tenant_limits_pkey) || !OidIsValid(tables.plan_limits_pkey) ||
      tables.tenant_period == InvalidAttrNumber || tables.plan_period == InvalidAttrNumber)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "the pg_tenant limit tables are not installed in this database",
                "", "Run CREATE EXTENSION pg_tenant (or ALTER EXTENSION pg_tenant UPDATE) in this database.");
  cache_generation = registry::Generation();
}

// One row of a limit table by its primary key (key1, resource): the latest committed state.
bool FetchLimit(Oid rel, Oid index, AttrNumber key1, RegProcedure key1_equal, Datum key1_value,
                AttrNumber resource_column, const char *resource, const LimitColumns &columns, Limit *out) {
  return PgCall([&] {
    Relation table = table_open(rel, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyEntryInitialize(&keys[0], 0, key1, BTEqualStrategyNumber, InvalidOid, DEFAULT_COLLATION_OID, key1_equal,
                           key1_value);
    ScanKeyEntryInitialize(&keys[1], 0, resource_column, BTEqualStrategyNumber, InvalidOid, DEFAULT_COLLATION_OID,
                           F_TEXTEQ, CStringGetTextDatum(resource));
    SysScanDesc scan = systable_beginscan(table, index, true, nullptr, 2, keys);
    HeapTuple tuple = systable_getnext(scan);
    bool found = false;
    if (HeapTupleIsValid(tuple)) {
      bool limit_null, period_null;
      TupleDesc desc = RelationGetDescr(table);
      Datum limit = heap_getattr(tuple, columns.limit, desc, &limit_null);
      Datum period = heap_getattr(tuple, columns.period, desc, &period_null);
      if (!limit_null && !period_null) {
        out->limited = true;
        out->value = static_cast<uint64>(DatumGetInt64(limit));
        char *period_name = TextDatumGetCString(period);
        out->period = ParsePeriod(period_name).value_or(Period::kNone);
        pfree(period_name);
        found = true;
        bool null = true;
        Datum value = columns.enforcement != InvalidAttrNumber ? heap_getattr(tuple, columns.enforcement, desc, &null) : 0;
        if (!null) {
          char *enforcement = TextDatumGetCString(value);
          out->soft = strcmp(enforcement, "soft") == 0;
          pfree(enforcement);
        }
        value = columns.alert_levels != InvalidAttrNumber ? heap_getattr(tuple, columns.alert_levels, desc, &null) : 0;
        if (!null) {
          Datum *levels;
          bool *level_nulls;
          int n;
          deconstruct_array(DatumGetArrayTypeP(value), INT4OID, 4, true, TYPALIGN_INT, &levels, &level_nulls, &n);
          for (int i = 0; i < n && out->alert_count < kMostAlertLevels; ++i)
            if (!level_nulls[i]) out->alert_levels[out->alert_count++] = static_cast<int16>(DatumGetInt32(levels[i]));
        }
      }
    }
    systable_endscan(scan);
    table_close(table, AccessShareLock);
    return found;
  });
}

// The limit with no upgrade URL yet: *upgrade_url gets the plan's ("" for none). Copies are taken
// at once: the registry record is valid only until the next lookup or invalidation.
Limit Read(const pg_uuid_t &tenant, const char *resource, std::string *upgrade_url, bool *has_url) {
  const registry::TenantRecord *record = registry::FindById(tenant);
  if (record == nullptr) throw registry::TenantNotFound(registry::IdText(tenant));
  Limit limit;
  *has_url = record->upgrade_url != nullptr;
  *upgrade_url = *has_url ? record->upgrade_url : "";
  const std::string plan = record->plan;
  if (FetchLimit(tables.tenant_limits, tables.tenant_limits_pkey, tables.tenant_tenant_id, F_UUID_EQ,
                 UUIDPGetDatum(const_cast<pg_uuid_t *>(&tenant)), tables.tenant_resource, resource,
                 {tables.tenant_limit, tables.tenant_period, tables.tenant_enforcement, tables.tenant_alert_levels},
                 &limit)) {
    limit.source = Source::kTenant;
  } else if (FetchLimit(tables.plan_limits, tables.plan_limits_pkey, tables.plan_plan, F_TEXTEQ,
                        PgCall([&] { return CStringGetTextDatum(plan.c_str()); }), tables.plan_resource, resource,
                        {tables.plan_limit, tables.plan_period, tables.plan_enforcement, tables.plan_alert_levels},
                        &limit)) {
    limit.source = Source::kPlan;
  }
  return limit;
}

const char *SourceName(Source source) {
  switch (source) {
    case Source::kTenant: return "tenant";
    case Source::kPlan: return "plan";
    case Source::kNone: break;
  }
  return "none";
}

}  // namespace

const Limit &EffectiveLimit(const pg_uuid_t &tenant, std::string_view resource) {
  if (limit_table == nullptr || cache_generation != registry::Generation()) Reset();
  if (resource.size() >= kResourceBufferSize) CheckResourceName(resource);
  if (last != nullptr && memcmp(&last->key.tenant, &tenant, sizeof(tenant)) == 0 &&
      strncmp(last->key.resource, resource.data(), resource.size()) == 0 && last->key.resource[resource.size()] == '\0')
    return last->limit;
  LimitKey key;
  memset(&key, 0, sizeof(key));
  key.tenant = tenant;
  memcpy(key.resource, resource.data(), resource.size());
  // A look-up in a backend-local hash table does not ereport.
  auto *hit = static_cast<LimitEntry *>(hash_search(limit_table, &key, HASH_FIND, nullptr));
  if (hit != nullptr) {
    last = hit;
    return hit->limit;
  }
  std::string upgrade_url;
  bool has_url;
  const Limit limit = Read(tenant, key.resource, &upgrade_url, &has_url);
  // Reading can process invalidations (a lock was taken): what was read is still the latest
  // committed state, but the cache must start again.
  if (cache_generation != registry::Generation() || hash_get_num_entries(limit_table) >= kCacheCapacity) Reset();
  last = PgCall([&] {
    auto *entry = static_cast<LimitEntry *>(hash_search(limit_table, &key, HASH_ENTER, nullptr));
    entry->limit = limit;
    entry->limit.upgrade_url = has_url ? MemoryContextStrdup(cache_context, upgrade_url.c_str()) : nullptr;
    return entry;
  });
  return last->limit;
}

uint64 AlertThreshold(uint64 limit, int level) {
  // limit * level / 100 rounded up, in 128 bits: 1000% of a large limit does not wrap around (a
  // threshold past the largest count is never reached).
  const unsigned __int128 threshold = (static_cast<unsigned __int128>(limit) * static_cast<unsigned>(level) + 99) / 100;
  return threshold > std::numeric_limits<uint64>::max() ? std::numeric_limits<uint64>::max()
                                                        : static_cast<uint64>(threshold);
}

Error LimitReached(std::string_view resource, const Limit &limit, uint64 used) {
  const std::string name = Echo(resource);
  std::string detail = "resource " + name + ": limit " + std::to_string(limit.value) + ", current " + std::to_string(used);
  if (limit.period != Period::kNone) detail += std::string(", period ") + PeriodName(limit.period);
  std::string hint;
  const std::string_view url = limit.upgrade_url != nullptr ? limit.upgrade_url : "";
  // A blank URL (spaces only) is none.
  if (url.find_first_not_of(' ') != std::string_view::npos) hint = "Upgrade your plan: " + std::string(url);
  return Error(errcodes::kLimitReached, "limit of \"" + name + "\" reached", detail, hint);
}

void CheckResourceName(std::string_view name) {
  if (!IsValidResourceName(name))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid resource name: \"" + Echo(name) + "\"", "",
                "A resource name is 1 to 63 of a-z, 0-9, '_', '.' and '-'.");
}

}  // namespace pg_tenant::limits

using namespace pg_tenant;
using namespace pg_tenant::limits;

namespace {

std::string_view TextArgument(FunctionCallInfo fcinfo, int n) {
  text *value = PG_GETARG_TEXT_PP(n);
  return std::string_view(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

}  // namespace

// tenant.is_valid_resource(text) returns boolean: the resource-name rule (also the CHECK
// constraints of the limit and quota tables).
PG_TENANT_FUNCTION(pg_tenant_is_valid_resource) { PG_RETURN_BOOL(IsValidResourceName(TextArgument(fcinfo, 0))); }

// tenant.is_valid_period(text) returns boolean: second, minute, hour, day, month or none.
PG_TENANT_FUNCTION(pg_tenant_is_valid_period) { PG_RETURN_BOOL(ParsePeriod(TextArgument(fcinfo, 0)).has_value()); }

// tenant._check_resource(resource text): 22004 for NULL, 22023 for an invalid name.
PG_TENANT_FUNCTION(pg_tenant_check_resource) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "resource must not be NULL");
  CheckResourceName(TextArgument(fcinfo, 0));
  PG_RETURN_VOID();
}

// tenant.effective_limit(tenant uuid, resource text, OUT "limit" bigint, OUT period text,
// OUT source text, OUT upgrade_url text): the limit that applies (NULL limit: unlimited).
PG_TENANT_FUNCTION(pg_tenant_effective_limit) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant and resource must not be NULL");
  const limits::Limit limit = EffectiveLimit(*PG_GETARG_UUID_P(0), TextArgument(fcinfo, 1));
  return PgCall([&] {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
    Datum levels[kMostAlertLevels];
    for (int i = 0; i < limit.alert_count; ++i) levels[i] = Int32GetDatum(limit.alert_levels[i]);
    Datum values[6] = {Int64GetDatum(static_cast<int64>(limit.value)), CStringGetTextDatum(PeriodName(limit.period)),
                       CStringGetTextDatum(SourceName(limit.source)),
                       limit.upgrade_url != nullptr ? CStringGetTextDatum(limit.upgrade_url) : (Datum)0,
                       CStringGetTextDatum(limit.soft ? "soft" : "hard"),
                       PointerGetDatum(construct_array(levels, limit.alert_count, INT4OID, 4, true, TYPALIGN_INT))};
    bool nulls[6] = {!limit.limited, false, false, limit.upgrade_url == nullptr, false, false};
    // Through an earlier version's definition (4 columns) heap_form_tuple takes the first four.
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
  });
}

// tenant._raise_limit_reached(resource text, "limit" bigint, used bigint, upgrade_url text,
// period text DEFAULT 'none'): raises the TN006 of LimitReached with the numbers it is given.
PG_TENANT_FUNCTION(pg_tenant_raise_limit_reached) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "resource, limit and used must not be NULL");
  limits::Limit limit;
  limit.limited = true;
  limit.value = static_cast<uint64>(PG_GETARG_INT64(1));
  const std::string url = PG_ARGISNULL(3) ? "" : std::string(TextArgument(fcinfo, 3));
  limit.upgrade_url = PG_ARGISNULL(3) ? nullptr : url.c_str();
  if (!PG_ARGISNULL(4)) {
    const auto period = ParsePeriod(TextArgument(fcinfo, 4));
    if (!period) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown period: \"" + std::string(TextArgument(fcinfo, 4)) + "\"");
    limit.period = *period;
  }
  throw LimitReached(TextArgument(fcinfo, 0), limit, static_cast<uint64>(PG_GETARG_INT64(2)));
}

// tenant.window_end(period text, window_start timestamptz) returns timestamptz: when the window
// starting there ends (NULL for period none: it never does). 22023 for an unknown period.
PG_TENANT_FUNCTION(pg_tenant_window_end) {
  const auto period = ParsePeriod(TextArgument(fcinfo, 0));
  if (!period) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown period: \"" + Echo(TextArgument(fcinfo, 0)) + "\"");
  if (*period == Period::kNone) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(WindowEnd(*period, PG_GETARG_TIMESTAMPTZ(1)));
}
