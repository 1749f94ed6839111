// Meters (DESIGN.md capability 7): the SQL entry points tenant.meter(), tenant.try_meter() (and
// their keyed forms), tenant._meter_usage(), tenant.meter_info(), tenant._meters_flushed_until(),
// and the call path that chooses where a call counts: the shared-memory store (store.cpp), the
// Redis backend (redis_backend.cpp), with an idempotency key in either (keys.cpp); the alert
// levels a count crossed go to alerts.cpp. The worker (flusher.cpp) writes the counters to
// tenant.meter_counts every pg_tenant.flush_interval and at shutdown, and loads them at start;
// counting is not transactional (like a sequence): a meter call is not refunded by ROLLBACK.
//
// Locking: none of its own. A call takes the lock of the store it counts in, through that
// store's functions, and holds none when it returns: the meters' LWLock (store.hpp) SHARED to
// move a counter, EXCLUSIVE only to add one; the keys' LWLock (keys.cpp) around a keyed call's
// count, never with the meters'. meter_info takes the meters' LWLock SHARED to read the sizes.
#include "meters/meter.hpp"

#include <optional>
#include <string>

#include "bridge/bridge.hpp"
#include "citus/citus.hpp"
#include "context/context.hpp"
#include "limits/limits.hpp"
#include "meters/keys.hpp"
#include "meters/lease.hpp"
#include "meters/redis_backend.hpp"
#include "meters/store.hpp"

namespace pg_tenant::meters {
namespace {

using namespace store;
using bridge::PgCall;
using limits::Period;
using limits::WindowEnd;
using limits::WindowStart;

// A keyed call (0.9.0), out of line: Meter() stays as short as before.
pg_noinline Count CountKeyed(std::string_view idempotency_key, const MeterKey &key, Period period, uint64 amount,
                             bool hard, uint64 limit, const limits::Limit &levels, bool *repeated) {
  if (meter_backend == kBackendRedis)
    return redis_backend::CountOnceInRedis(key, idempotency_key, period, amount, hard, limit, levels, repeated);
  return keys::CountOnce(key, idempotency_key, period, amount, hard, limit, repeated);
}

// The window of the last call: most calls fall in the window the call before them did.
struct WindowMemo {
  Period period = Period::kNone;
  int64 start = 0;
  int64 end = -1;  // empty until the first call
};
WindowMemo window_memo;

int64 CurrentWindowStart(Period period, TimestampTz now) {
  if (period != window_memo.period || now < window_memo.start || now >= window_memo.end)
    window_memo = {period, WindowStart(period, now), WindowEnd(period, now)};
  return window_memo.start;
}

// Shared-memory meters count per server. In a Citus cluster each node would count alone, so a
// tenant would get the limit once per node: workers refuse them, and the coordinator (where the
// application's calls arrive) warns once per session. Redis counts across the cluster. Looked
// up on the first shared-memory meter call of a session.
enum class CitusNode { kUnknown, kNone, kCoordinator, kWorker };
CitusNode citus_node = CitusNode::kUnknown;

void CheckShmemMeterOnCitus() {
  if (citus_node == CitusNode::kUnknown)
    citus_node = !citus::Installed() ? CitusNode::kNone : citus::IsWorker() ? CitusNode::kWorker : CitusNode::kCoordinator;
  if (citus_node == CitusNode::kNone) return;
  constexpr const char *kHint = "Set pg_tenant.meter_backend = redis on every node: Redis counts across the cluster.";
  if (citus_node == CitusNode::kWorker)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "shared-memory meters are refused on a Citus worker",
                "They count on one node only; the coordinator counts the calls that reach it.", kHint);
  citus_node = CitusNode::kNone;  // warned once
  PgCall([&] {
    ereport(WARNING, (errcode(ERRCODE_WARNING), errmsg("shared-memory meters count on this Citus coordinator only"),
                      errdetail("Calls made on the workers are refused, not counted."), errhint("%s", kHint)));
  });
}

// A call refused at the limit: tenant.meter() raises TN006 with these, after Meter() returned
// (thrown from Meter's own frame, the unwinder searched its long table of call sites: 96,000 ->
// 109,000 instructions per refused call in callgrind).
struct Refusal {
  const limits::Limit *limit = nullptr;  // valid until the next EffectiveLimit
  uint64 used = 0;
};

// tenant.meter / tenant.try_meter. Returns whether the amount was counted; *left is what the
// limit leaves after it (nullopt when unlimited); refused at the limit, *refusal says why.
bool Meter(FunctionCallInfo fcinfo, Refusal *refusal, std::optional<int64> *left) {
  if (meter_table == nullptr)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "tenant meters need pg_tenant in shared_preload_libraries",
                "Meters count in shared memory, which only a preloaded library can reserve.",
                "Add pg_tenant to shared_preload_libraries in postgresql.conf and restart the server.");
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "resource and amount must not be NULL");
  text *resource_text = PG_GETARG_TEXT_PP(0);
  const std::string_view resource(VARDATA_ANY(resource_text), VARSIZE_ANY_EXHDR(resource_text));
  const int64 amount = PG_GETARG_INT64(1);
  limits::CheckResourceName(resource);
  if (amount <= 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "meter amount must be positive, not " + std::to_string(amount));
  const bool keyed = PG_NARGS() > 2;  // 0.9.0: tenant.meter(resource, amount, idempotency_key)
  if (keyed) keys::IdempotencyKey(fcinfo);   // its errors before any count
  pg_uuid_t tenant;
  if (!context::CurrentTenant(&tenant)) throw context::NoTenant("Meters count for the current tenant.");
  const limits::Limit &limit = limits::EffectiveLimit(tenant, resource);
  MeterKey key;
  memset(&key, 0, sizeof(key));
  key.database = MyDatabaseId;
  key.tenant = tenant;
  memcpy(key.resource, resource.data(), resource.size());
  key.window_start = CurrentWindowStart(limit.period, GetCurrentTimestamp());
  if (meter_backend == kBackendShmem) CheckShmemMeterOnCitus();
  const bool hard = limit.limited && !limit.soft;  // a soft limit counts past its value
  bool repeated = false;
  Count count;
  if (!keyed) {
    count = meter_backend == kBackendRedis
                ? redis_backend::CountInRedis(key, limit.period, static_cast<uint64>(amount), hard, limit.value, limit)
                : PgCall([&] { return CountIn(key, limit.period, static_cast<uint64>(amount), hard, limit.value); });
  } else {
    count = CountKeyed(keys::IdempotencyKey(fcinfo), key, limit.period, static_cast<uint64>(amount), hard, limit.value, limit,
                       &repeated);
  }
  if (count.outcome == Outcome::kTableFull)
    throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "the meter table is full",
                "pg_tenant.max_meters (" + std::to_string(max_meters) + ") counters are in use.",
                "Raise pg_tenant.max_meters and restart; ended windows are freed once flushed.");
  if (count.outcome == Outcome::kShareFull)
    throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "the tenant holds its whole share of the meter table",
                "A tenant may hold pg_tenant.max_meters_per_tenant (" + std::to_string(max_meters_per_tenant) +
                    ") counters at once: one per resource and open window.",
                "Meter fewer distinct resources, or raise pg_tenant.max_meters_per_tenant.");
  if (count.outcome == Outcome::kOutOfRange)
    throw Error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "meter \"" + std::string(resource) + "\" would pass the largest bigint",
                "It holds " + std::to_string(count.used) + "; adding " + std::to_string(amount) + " would not fit.", "");
  if (count.outcome == Outcome::kOverLimit) {
    *refusal = {&limit, count.used};
    return false;
  }
  if (!limit.limited || count.used > kMostUsed) return true;  // unlimited, or open mode: unknown
  // The levels this call passed: from its count before it, or, served from a Redis lease, from
  // this server's high-water mark (its view of the count jumps when other servers' usage arrives).
  if (limit.alert_count > 0 && !repeated) {
    const uint64 before = count.before != lease::kNoMark ? count.before : count.used - static_cast<uint64>(amount);
    if (count.used > before) RecordCrossings(key, limit, before, count.used, meter_backend == kBackendRedis);
  }
  // Negative past a soft limit: the overage.
  *left = static_cast<int64>(limit.value) - static_cast<int64>(count.used);
  return true;
}


}  // namespace
}  // namespace pg_tenant::meters

using namespace pg_tenant;
using namespace pg_tenant::meters;

// tenant.meter(resource text, amount bigint) returns bigint: what the limit leaves, NULL when unlimited.
PG_TENANT_FUNCTION(pg_tenant_meter) {
  std::optional<int64> left;
  Refusal refusal;
  if (!Meter(fcinfo, &refusal, &left)) {
    text *resource = PG_GETARG_TEXT_PP(0);
    throw limits::LimitReached(std::string_view(VARDATA_ANY(resource), VARSIZE_ANY_EXHDR(resource)), *refusal.limit,
                               refusal.used);
  }
  if (!left) PG_RETURN_NULL();
  PG_RETURN_INT64(*left);
}

// tenant.try_meter(resource text, amount bigint) returns boolean: counted, or false at the limit.
PG_TENANT_FUNCTION(pg_tenant_try_meter) {
  std::optional<int64> left;
  Refusal refusal;
  PG_RETURN_BOOL(Meter(fcinfo, &refusal, &left));
}

// tenant._meter_usage(tenant uuid) returns table (resource text, window_start timestamptz, used bigint):
// the tenant's open windows in this database (with the Redis backend: of every server).
PG_TENANT_FUNCTION(pg_tenant_meter_usage) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  if (meter_backend == kBackendRedis && redis_backend::Usage(fcinfo, tenant)) return (Datum)0;
  PgCall([&] {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    if (meter_table == nullptr) return;
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    const TimestampTz now = GetCurrentTimestamp();
    ListCell *cell;
    foreach (cell, CopyCounters()) {
      auto *s = static_cast<CounterCopy *>(lfirst(cell));
      const auto period = static_cast<Period>(s->period);
      if (memcmp(&s->key.tenant, &tenant, sizeof(tenant)) != 0 || WindowEnd(period, s->key.window_start) <= now)
        continue;
      Datum values[3] = {CStringGetTextDatum(s->key.resource), TimestampTzGetDatum(s->key.window_start),
                         Int64GetDatum(static_cast<int64>(s->used))};
      bool nulls[3] = {false, period == Period::kNone, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return (Datum)0;
}

// tenant.meter_info(OUT entries bigint, OUT capacity integer, OUT tenant_share integer,
// OUT tenants bigint): the shared meter table now, every database (NULLs without preloading).
PG_TENANT_FUNCTION(pg_tenant_meter_info) {
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "tenant.meter_info() must return a record");
  return PgCall([&] {
    Datum values[4] = {0, Int32GetDatum(max_meters), Int32GetDatum(max_meters_per_tenant), 0};
    bool nulls[4] = {true, meter_table == nullptr, meter_table == nullptr, true};
    if (meter_table != nullptr) {
      LWLockAcquire(shared->lock, LW_SHARED);
      values[0] = Int64GetDatum(hash_get_num_entries(meter_table));
      values[3] = Int64GetDatum(hash_get_num_entries(share_table));
      LWLockRelease(shared->lock);
      nulls[0] = nulls[3] = false;
    }
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
  });
}

// tenant._meters_flushed_until() returns timestamptz: every window that ended by then is final in
// tenant.meter_counts (NULL before the worker's first flush, or without preloading).
PG_TENANT_FUNCTION(pg_tenant_meters_flushed_until) {
  if (shared == nullptr) PG_RETURN_NULL();
  const uint64 until = pg_atomic_read_u64(&shared->flushed_until);
  if (until == 0) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(static_cast<TimestampTz>(until));
}
