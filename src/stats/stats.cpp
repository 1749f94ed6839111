// Reading the statistics (SQL): tenant._stats() (behind the tenant.stats view, top_tenants()
// and stats_for_export()), stats_reset(), _forget_stats() (for tenant.purge()), stats_info().
// Who sees which rows is decided here, in C++: every row of this database for superusers and
// members of pg_read_all_stats, else only the row of the tenant the caller is in, validated.
// These functions are callable by PUBLIC as the SQL grants them; they run with the caller's
// rights and run no user code.
//
// Locking (store.hpp): readers take the table's LWLock SHARED (rows copied under each row's
// spinlock, into memory allocated before the lock is taken); a reset takes it EXCLUSIVE.
#include "bridge/bridge.hpp"
#include "context/context.hpp"
#include "stats/store.hpp"

namespace pg_tenant::stats {
namespace {

using bridge::PgCall;

// What a caller may see: every row of this database (superusers, members of pg_read_all_stats)
// or only the row of the tenant it is in, validated (TN001/TN002 as tenant.current_id()).
struct Visibility {
  bool all;
  bool has_tenant;
  pg_uuid_t tenant;
};

Visibility CallerVisibility() {
  Visibility v{};
  v.all = PgCall([] { return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS); });
  if (!v.all) v.has_tenant = context::CurrentTenant(&v.tenant);
  return v;
}

void RequirePreloaded() {
  if (shared == nullptr)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "tenant statistics need pg_tenant in shared_preload_libraries",
                "Statistics are counted in shared memory, which only a preloaded library can reserve.",
                "Add pg_tenant to shared_preload_libraries in postgresql.conf and restart the server.");
}

// Copies the visible rows of this database (palloc'd, allocated before the lock is taken).
// Plain C inside: run it through PgCall.
Row *CopyRows(const Visibility &v, int *count) {
  for (;;) {
    LWLockAcquire(shared->lock, LW_SHARED);
    const long capacity = v.all ? hash_get_num_entries(table) + 8 : 1;
    LWLockRelease(shared->lock);
    Row *rows = static_cast<Row *>(palloc_extended(capacity * sizeof(Row), MCXT_ALLOC_HUGE));
    int n = 0;
    bool overflow = false;
    LWLockAcquire(shared->lock, LW_SHARED);
    if (!v.all) {
      if (v.has_tenant) {
        const StatsKey key = KeyOf(MyDatabaseId, kTenant, &v.tenant);
        auto *entry = static_cast<StatsEntry *>(hash_search(table, &key, HASH_FIND, nullptr));
        if (entry != nullptr) {
          SpinLockAcquire(&entry->mutex);
          rows[n++] = entry->row;
          SpinLockRelease(&entry->mutex);
        }
      }
    } else {
      HASH_SEQ_STATUS status;
      hash_seq_init(&status, table);
      StatsEntry *entry;
      while ((entry = static_cast<StatsEntry *>(hash_seq_search(&status))) != nullptr) {
        if (entry->key.database != MyDatabaseId) continue;
        if (n >= capacity) {
          overflow = true;
          hash_seq_term(&status);
          break;
        }
        SpinLockAcquire(&entry->mutex);
        rows[n++] = entry->row;
        SpinLockRelease(&entry->mutex);
      }
    }
    LWLockRelease(shared->lock);
    if (!overflow) {
      *count = n;
      return rows;
    }
    pfree(rows);  // rows were added meanwhile: again, with room for them
  }
}

}  // namespace
}  // namespace pg_tenant::stats

using namespace pg_tenant;
using namespace pg_tenant::stats;

// tenant._stats(): the rows of this database the caller may see (CallerVisibility).
PG_TENANT_FUNCTION(pg_tenant_stats) {
  RequirePreloaded();
  const Visibility visibility = CallerVisibility();
  PgCall([&] {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    int n = 0;
    Row *rows = CopyRows(visibility, &n);
    const TimestampTz now = GetCurrentTimestamp();
    const int64 period = PeriodUs();
    for (int i = 0; i < n; ++i) {
      const Row &r = rows[i];
      Counters current, previous;
      r.periods.View(now, period, &current, &previous);
      Datum values[25];
      bool nulls[25];
      memset(nulls, 0, sizeof(nulls));
      int k = 0;
      values[k] = UUIDPGetDatum(const_cast<pg_uuid_t *>(&r.key.tenant));
      nulls[k++] = r.key.kind != kTenant;
      values[k++] = CStringGetTextDatum(kKindNames[r.key.kind]);
      values[k++] = Int64GetDatum(r.total.calls);
      values[k++] = Int64GetDatum(r.total.errors);
      values[k++] = Float8GetDatum(r.total.total_time);
      values[k++] = Float8GetDatum(r.total.max_time);
      values[k++] = Int64GetDatum(r.total.rows);
      values[k++] = Int64GetDatum(r.total.shared_blks_hit);
      values[k++] = Int64GetDatum(r.total.shared_blks_read);
      values[k++] = Int64GetDatum(r.total.shared_blks_dirtied);
      values[k++] = Int64GetDatum(r.total.temp_blks_written);
      values[k++] = Int64GetDatum(r.total.wal_bytes);
      values[k++] = TimestampTzGetDatum(PeriodStart(now, period));
      for (const Counters *c : {&current, &previous}) {
        values[k++] = Int64GetDatum(c->calls);
        values[k++] = Int64GetDatum(c->errors);
        values[k++] = Float8GetDatum(c->total_time);
        values[k++] = Int64GetDatum(c->rows);
        values[k++] = Int64GetDatum(c->shared_blks_hit + c->shared_blks_read);
      }
      values[k++] = TimestampTzGetDatum(r.first_seen);
      values[k++] = TimestampTzGetDatum(r.last_seen);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return (Datum)0;
}

// tenant.stats_reset(tenant uuid DEFAULT NULL) returns bigint: forgets this database's rows (all
// of them, "none" and "other" included, or one tenant's); returns how many went.
PG_TENANT_FUNCTION(pg_tenant_stats_reset) {
  RequirePreloaded();
  const bool one = !PG_ARGISNULL(0);
  const pg_uuid_t tenant = one ? *PG_GETARG_UUID_P(0) : pg_uuid_t{};
  if (one) PG_RETURN_INT64(RemoveTenantRow(tenant) ? 1 : 0);
  const int64 removed = PgCall([&] {
    int64 n = 0;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    {
      HASH_SEQ_STATUS status;
      hash_seq_init(&status, table);
      StatsEntry *entry;
      while ((entry = static_cast<StatsEntry *>(hash_seq_search(&status))) != nullptr) {
        if (entry->key.database != MyDatabaseId) continue;
        const StatsKey key = entry->key;
        if (RemoveRow(key)) ++n;
      }
    }
    LWLockRelease(shared->lock);
    return n;
  });
  PG_RETURN_INT64(removed);
}

// tenant._forget_stats(tenant uuid): for tenant.purge(), the tenant's row of this database goes
// (nothing without preloading: there are no statistics then).
PG_TENANT_FUNCTION(pg_tenant_forget_stats) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  if (shared == nullptr) PG_RETURN_VOID();
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  (void)RemoveTenantRow(tenant);
  PG_RETURN_VOID();
}

// tenant.stats_info(OUT tenants integer, OUT max_tenants integer, OUT evictions bigint,
// OUT dropped bigint): the shared table now, every database.
PG_TENANT_FUNCTION(pg_tenant_stats_info) {
  RequirePreloaded();
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "tenant.stats_info() must return a record");
  return PgCall([&] {
    LWLockAcquire(shared->lock, LW_SHARED);
    Datum values[4] = {Int32GetDatum(shared->tenant_rows), Int32GetDatum(max_tenants),
                       Int64GetDatum(shared->evictions), Int64GetDatum(shared->dropped)};
    LWLockRelease(shared->lock);
    bool nulls[4] = {false, false, false, false};
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
  });
}
