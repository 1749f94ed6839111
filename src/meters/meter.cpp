// Meters: one counter per (database, tenant, resource, window) in a shared hash table. The hot
// path takes the table's LWLock in shared mode and moves the counter with a compare-and-swap,
// so concurrent callers never pass the limit and never wait for each other; only the first call
// in a new window takes the lock exclusively to add the entry. A background worker writes the
// counters to tenant.meter_counts every pg_tenant.flush_interval and at shutdown, and loads them
// at start; counting is not transactional (like a sequence): a meter call is not refunded by
// ROLLBACK.
#include "meters/meter.hpp"
#include "meters/lease.hpp"

#include "citus/citus.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/settings.hpp"
#include "context/context.hpp"
#include "redis/client.hpp"
#include "redis/url.hpp"
#include "registry/registry.hpp"
#include "limits/limits.hpp"
#include "common/uuid_text.hpp"

#include <algorithm>
#include <limits>

#include <string>
#include <vector>

namespace pg_tenant::meters {
namespace {

using bridge::PgCall;
using limits::Period;
using limits::PeriodName;
using limits::ParsePeriod;
using limits::WindowEnd;
using limits::WindowStart;

constexpr size_t kResourceSize = 64;

struct MeterKey {  // hashed as bytes: always fully zeroed before filling
  Oid database;
  pg_uuid_t tenant;
  char resource[kResourceSize];
  int64 window_start;
};

struct MeterEntry {
  MeterKey key;
  int32 period;
  pg_atomic_uint64 used;
  pg_atomic_uint64 pending;  // counted locally while Redis was unreachable, not yet added there
};

// How many entries a tenant of a database holds: its share of the table is bounded, so that no
// tenant can fill the table for the others.
struct ShareKey {  // hashed as bytes: always fully zeroed before filling
  Oid database;
  pg_uuid_t tenant;
};

struct ShareEntry {
  ShareKey key;
  int32 entries;
};

struct MeterShared {
  LWLock *lock;  // guards both tables' structure (shared for counting, exclusive to add or remove)
  bool loaded;   // the worker loaded tenant.meter_counts since shared memory was created
};

enum MeterBackend { kBackendShmem, kBackendRedis };
enum RedisFailure { kFailClosed, kFailOpen, kFailLocal };
const struct config_enum_entry kBackendOptions[] = {
    {"shmem", kBackendShmem, false}, {"redis", kBackendRedis, false}, {nullptr, 0, false}};
const struct config_enum_entry kFailureOptions[] = {
    {"closed", kFailClosed, false}, {"open", kFailOpen, false}, {"local", kFailLocal, false}, {nullptr, 0, false}};
int meter_backend = kBackendShmem;
char *redis_url = nullptr;
int redis_connect_timeout_ms = 200;
int redis_command_timeout_ms = 200;
int redis_failure = kFailClosed;
uint64 redis_url_version = 0;

int max_meters = 10000;
int max_meters_per_tenant = 64;
int flush_interval_ms = 1000;
char *meter_database = nullptr;

MeterShared *shared = nullptr;
HTAB *meter_table = nullptr;
HTAB *share_table = nullptr;
shmem_request_hook_type previous_shmem_request = nullptr;
shmem_startup_hook_type previous_shmem_startup = nullptr;

Size SharedSize() {
  return MAXALIGN(sizeof(MeterShared)) + hash_estimate_size(max_meters, sizeof(MeterEntry)) +
         hash_estimate_size(max_meters, sizeof(ShareEntry));
}

void RequestSharedMemory() noexcept {
  if (previous_shmem_request) previous_shmem_request();
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche("pg_tenant", 1);
}

void StartSharedMemory() noexcept {
  if (previous_shmem_startup) previous_shmem_startup();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  shared = static_cast<MeterShared *>(ShmemInitStruct("pg_tenant meters", sizeof(MeterShared), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("pg_tenant"))->lock;
    shared->loaded = false;
  }
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = sizeof(MeterKey);
  info.entrysize = sizeof(MeterEntry);
  meter_table = ShmemInitHash("pg_tenant meter table", max_meters, max_meters, &info, HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(ShareKey);
  info.entrysize = sizeof(ShareEntry);
  share_table = ShmemInitHash("pg_tenant meter shares", max_meters, max_meters, &info, HASH_ELEM | HASH_BLOBS);
  LWLockRelease(AddinShmemInitLock);
}

// --- the hot path ---------------------------------------------------------------------------

enum class Outcome { kCounted, kOverLimit, kTableFull, kShareFull, kOutOfRange };

struct Count {
  Outcome outcome;
  uint64 used;  // after counting, or the current value when refused
};

// The most a counter holds: it is read back as a bigint.
constexpr uint64 kMostUsed = static_cast<uint64>(std::numeric_limits<int64>::max());

ShareKey ShareOf(const MeterKey &key) {
  ShareKey share;
  memset(&share, 0, sizeof(share));
  share.database = key.database;
  share.tenant = key.tenant;
  return share;
}

// Adds the entry of key, within the tenant's share and the table's size; the caller holds the
// lock exclusively. nullptr with *refusal set when there is no room.
MeterEntry *AddEntry(const MeterKey &key, Period period, Outcome *refusal) {
  const ShareKey share_key = ShareOf(key);
  auto *share = static_cast<ShareEntry *>(hash_search(share_table, &share_key, HASH_FIND, nullptr));
  if (share != nullptr && share->entries >= max_meters_per_tenant) {
    *refusal = Outcome::kShareFull;
    return nullptr;
  }
  // The shared hashes could grow into spare shared memory: hold them to pg_tenant.max_meters.
  bool found = false;
  auto *entry = hash_get_num_entries(meter_table) < max_meters
                    ? static_cast<MeterEntry *>(hash_search(meter_table, &key, HASH_ENTER_NULL, &found))
                    : nullptr;
  if (entry == nullptr) {
    *refusal = Outcome::kTableFull;
    return nullptr;
  }
  if (found) return entry;
  entry->period = static_cast<int32>(period);
  pg_atomic_init_u64(&entry->used, 0);
  pg_atomic_init_u64(&entry->pending, 0);
  if (share == nullptr) {
    share = static_cast<ShareEntry *>(hash_search(share_table, &share_key, HASH_ENTER_NULL, &found));
    if (share != nullptr && !found) share->entries = 0;
  }
  if (share != nullptr) ++share->entries;
  return entry;
}

// Removes an entry and gives its place back to its tenant's share; the caller holds the lock
// exclusively.
void RemoveEntry(const MeterKey &key) {
  if (hash_search(meter_table, &key, HASH_REMOVE, nullptr) == nullptr) return;
  const ShareKey share_key = ShareOf(key);
  auto *share = static_cast<ShareEntry *>(hash_search(share_table, &share_key, HASH_FIND, nullptr));
  if (share != nullptr && --share->entries <= 0) hash_search(share_table, &share_key, HASH_REMOVE, nullptr);
}

// Plain C: no C++ object is alive here, and nothing in it can ereport but lock bookkeeping.
Count CountIn(const MeterKey &key, Period period, uint64 amount, bool limited, uint64 limit, bool pending = false) {
  LWLockAcquire(shared->lock, LW_SHARED);
  auto *entry = static_cast<MeterEntry *>(hash_search(meter_table, &key, HASH_FIND, nullptr));
  while (entry == nullptr) {
    LWLockRelease(shared->lock);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    Outcome refusal = Outcome::kCounted;
    entry = AddEntry(key, period, &refusal);
    LWLockRelease(shared->lock);
    if (entry == nullptr) return {refusal, 0};
    LWLockAcquire(shared->lock, LW_SHARED);
    entry = static_cast<MeterEntry *>(hash_search(meter_table, &key, HASH_FIND, nullptr));
  }
  // An unlimited counter stops at the largest bigint instead of wrapping around.
  const uint64 most = limited ? limit : kMostUsed;
  uint64 current = pg_atomic_read_u64(&entry->used);
  for (;;) {
    if (amount > most || current > most - amount) {
      LWLockRelease(shared->lock);
      return {limited ? Outcome::kOverLimit : Outcome::kOutOfRange, current};
    }
    if (pg_atomic_compare_exchange_u64(&entry->used, &current, current + amount)) break;
  }
  if (pending) pg_atomic_fetch_add_u64(&entry->pending, amount);
  LWLockRelease(shared->lock);
  return {Outcome::kCounted, current + amount};
}

// --- the Redis backend (pg_tenant.meter_backend = redis) ---------------------------------------

redis::Client redis_client;  // one lazy connection per backend, reused
uint64 connected_url_version = 0;
TimestampTz next_connect_attempt = 0;
int connect_backoff_ms = 0;
TimestampTz last_open_warning = 0;

// pg_tenant:<database>:<tenant>:<resource>:<window start>. The database by name: servers that
// share one Redis (a primary and its replicas, Citus nodes) agree on names, not on OIDs.
std::string RedisTenantPrefix(const pg_uuid_t &tenant_id) {
  static std::string database;
  static pg_uuid_t last_tenant;  // most calls of a backend are for the tenant of the call before
  static std::string last_prefix;
  if (!last_prefix.empty() && memcmp(&last_tenant, &tenant_id, sizeof(tenant_id)) == 0) return last_prefix;
  if (database.empty()) database = PgCall([] { return std::string(get_database_name(MyDatabaseId)); });
  char tenant[37];
  UuidBytes bytes;
  memcpy(bytes.data(), tenant_id.data, UUID_LEN);
  FormatUuid(bytes, tenant);
  last_prefix = "pg_tenant:" + database + ":" + tenant + ":";
  last_tenant = tenant_id;
  return last_prefix;
}

std::string RedisKey(const MeterKey &key) {
  return RedisTenantPrefix(key.tenant) + key.resource + ":" + std::to_string(key.window_start);
}

int64 TtlMs(Period period, int64 window_start) {
  if (period == Period::kNone) return 0;
  return (WindowEnd(period, window_start) - window_start) / 1000 + 1000;  // a second of grace
}

// Counts made locally (redis_failure = local) go to Redis once it answers again.
void Reconcile() {
  struct Pending {
    MeterKey key;
    int32 period;
    uint64 amount;
  };
  List *pending = PgCall([] {
    List *out = NIL;
    LWLockAcquire(shared->lock, LW_SHARED);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, meter_table);
    MeterEntry *entry;
    while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
      if (entry->key.database != MyDatabaseId || pg_atomic_read_u64(&entry->pending) == 0) continue;
      auto *p = static_cast<Pending *>(palloc(sizeof(Pending)));
      p->key = entry->key;
      p->period = entry->period;
      p->amount = pg_atomic_exchange_u64(&entry->pending, 0);
      out = lappend(out, p);
    }
    LWLockRelease(shared->lock);
    return out;
  });
  ListCell *cell;
  foreach (cell, pending) {
    auto *p = static_cast<Pending *>(lfirst(cell));
    std::string error;
    if (!redis_client.Add(RedisKey(p->key), static_cast<int64>(p->amount),
                          TtlMs(static_cast<Period>(p->period), p->key.window_start), &error)) {
      // Still unreachable: keep them for the next time (the entry is still there: only the
      // flusher frees entries, and only those of ended windows).
      PgCall([&] {
        LWLockAcquire(shared->lock, LW_SHARED);
        auto *entry = static_cast<MeterEntry *>(hash_search(meter_table, &p->key, HASH_FIND, nullptr));
        if (entry != nullptr) pg_atomic_fetch_add_u64(&entry->pending, p->amount);
        LWLockRelease(shared->lock);
      });
    }
  }
}

// Connects lazily; after a failure, waits (doubling up to 5 s) before the next attempt, so a
// Redis outage costs each call no more than a check of the clock.
bool EnsureRedis(std::string *error) {
  if (connected_url_version != redis_url_version) {
    redis_client.Disconnect();
    connected_url_version = redis_url_version;
    next_connect_attempt = 0;
  }
  if (redis_client.Connected()) return true;
  const TimestampTz now = GetCurrentTimestamp();
  if (now < next_connect_attempt) {
    *error = "Redis was unreachable; reconnecting after a pause";
    return false;
  }
  std::string url_error;
  auto url = redis::ParseRedisUrl(redis_url != nullptr ? redis_url : "", &url_error);
  if (!url) {
    *error = "pg_tenant.redis_url is not set or invalid: " + url_error;
    return false;
  }
  if (!redis_client.Connect(*url, redis_connect_timeout_ms, redis_command_timeout_ms, error)) {
    connect_backoff_ms = connect_backoff_ms == 0 ? 100 : std::min(connect_backoff_ms * 2, 5000);
    next_connect_attempt = now + static_cast<TimestampTz>(connect_backoff_ms) * 1000;
    return false;
  }
  connect_backoff_ms = 0;
  Reconcile();
  return true;
}

// Returns the count as meters() does; on a Redis failure applies pg_tenant.redis_failure.
Count CountInRedis(const MeterKey &key, Period period, uint64 amount, bool limited, uint64 limit) {
  std::string error;
  const std::string redis_key = RedisKey(key);
  // Most calls are served from this server's lease of units (meters/lease.cpp): no round trip.
  const lease::Session session{redis_url, redis_url_version, redis_client.Connected()};
  uint64 served_used = 0;
  if (lease::Serve(session, redis_key, amount, limited, limit, &served_used)) return {Outcome::kCounted, served_used};
  if (EnsureRedis(&error)) {
    redis::MeterReply reply = lease::Meter(redis_client, session, redis_key, static_cast<int64>(amount),
                                           limited ? static_cast<int64>(limit) : -1, TtlMs(period, key.window_start),
                                           WindowEnd(period, key.window_start));
    if (reply.status == redis::MeterReply::Status::kCounted) return {Outcome::kCounted, static_cast<uint64>(reply.used)};
    if (reply.status == redis::MeterReply::Status::kOverLimit) return {Outcome::kOverLimit, static_cast<uint64>(reply.used)};
    error = reply.error;
    connect_backoff_ms = connect_backoff_ms == 0 ? 100 : std::min(connect_backoff_ms * 2, 5000);
    next_connect_attempt = GetCurrentTimestamp() + static_cast<TimestampTz>(connect_backoff_ms) * 1000;
  }
  switch (redis_failure) {
    case kFailOpen: {
      const TimestampTz now = GetCurrentTimestamp();
      if (now - last_open_warning >= 10 * USECS_PER_SEC) {
        last_open_warning = now;
        PgCall([&] {
          ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                            errmsg("Redis meter backend unavailable, letting meter calls through: %s", error.c_str()),
                            errhint("pg_tenant.redis_failure = open; this warning repeats at most every 10 s.")));
        });
      }
      return {Outcome::kCounted, std::numeric_limits<uint64>::max()};  // not counted anywhere: left unknown
    }
    case kFailLocal:
      return PgCall([&] { return CountIn(key, period, amount, limited, limit, true); });
    default:
      throw Error(errcodes::kRedisUnavailable, "Redis meter backend unavailable: " + error, "",
                  "Check pg_tenant.redis_url and the Redis server; pg_tenant.redis_failure = open or local keeps "
                  "meters working during an outage.");
  }
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

// tenant.meter / tenant.try_meter. Returns whether the amount was counted; *left is what the
// limit leaves after it (nullopt when unlimited).
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

bool Meter(FunctionCallInfo fcinfo, bool raise, std::optional<uint64> *left) {
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
  const Count count =
      meter_backend == kBackendRedis
          ? CountInRedis(key, limit.period, static_cast<uint64>(amount), limit.limited, limit.value)
          : PgCall([&] { return CountIn(key, limit.period, static_cast<uint64>(amount), limit.limited, limit.value); });
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
    if (raise) throw limits::LimitReached(resource, limit, count.used);
    return false;
  }
  if (limit.limited && count.used <= limit.value) *left = limit.value - count.used;  // open mode: unknown
  return true;
}

// --- the background worker -------------------------------------------------------------------

struct CounterCopy {
  MeterKey key;
  int32 period;
  uint64 used;
};

// Copies this database's counters.
List *CopyCounters() {
  List *out = NIL;
  LWLockAcquire(shared->lock, LW_SHARED);
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, meter_table);
  MeterEntry *entry;
  while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
    if (entry->key.database != MyDatabaseId) continue;
    auto *s = static_cast<CounterCopy *>(palloc(sizeof(CounterCopy)));
    s->key = entry->key;
    s->period = entry->period;
    s->used = pg_atomic_read_u64(&entry->used);
    out = lappend(out, s);
  }
  LWLockRelease(shared->lock);
  return out;
}

// Frees the entries of windows that ended before cutoff, of every database: the worker calls it
// once the flush that saved this database's has committed (the other databases' meters are not
// persisted; an ended window takes no more calls, so nothing counted is lost).
void FreeEndedWindows(TimestampTz cutoff) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, meter_table);
  MeterEntry *entry;
  while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
    if (WindowEnd(static_cast<Period>(entry->period), entry->key.window_start) > cutoff) continue;
    const MeterKey key = entry->key;
    RemoveEntry(key);  // dynahash allows removing the entry a scan just returned
  }
  LWLockRelease(shared->lock);
}

bool CountsTableExists() {
  int rc = SPI_execute("SELECT pg_catalog.to_regclass('tenant.meter_counts') IS NOT NULL", true, 1);
  bool isnull;
  return rc == SPI_OK_SELECT && SPI_processed == 1 &&
         DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

// The flush upsert, prepared once. It keeps the greater count: a promoted standby's counts, or a
// backend's counts after a crash, never replace higher ones already saved.
SPIPlanPtr flush_plan = nullptr;

void Flush() {
  const TimestampTz cutoff = GetCurrentTimestamp();
  if (RecoveryInProgress()) {  // a standby counts in memory only; its tables are read-only
    FreeEndedWindows(cutoff);
    return;
  }
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "pg_tenant: flushing meters");
  if (CountsTableExists()) {
    Oid types[5] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID};
    if (flush_plan == nullptr) {
      SPIPlanPtr plan = SPI_prepare(
          "INSERT INTO tenant.meter_counts AS c (tenant_id, resource, window_start, period, used) "
          "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, resource, window_start) DO UPDATE "
          "SET used = EXCLUDED.used, flushed_at = pg_catalog.now() WHERE c.used OPERATOR(pg_catalog.<) EXCLUDED.used",
          5, types);
      if (plan == nullptr || SPI_keepplan(plan) != 0) elog(ERROR, "could not prepare the meter flush (%d)", SPI_result);
      flush_plan = plan;
    }
    ListCell *cell;
    foreach (cell, CopyCounters()) {
      auto *s = static_cast<CounterCopy *>(lfirst(cell));
      Datum values[5] = {UUIDPGetDatum(&s->key.tenant), CStringGetTextDatum(s->key.resource),
                         TimestampTzGetDatum(s->key.window_start),
                         CStringGetTextDatum(PeriodName(static_cast<Period>(s->period))),
                         Int64GetDatum(static_cast<int64>(s->used))};
      if (SPI_execute_plan(flush_plan, values, nullptr, false, 0) < 0) elog(ERROR, "the meter flush failed");
    }
  }
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_activity(STATE_IDLE, nullptr);
  FreeEndedWindows(cutoff);  // only now: had the flush failed, they would be saved next time
}

// At start, counters of windows that are still open come back from the table (once per life
// of shared memory: a restarted worker must not add them twice).
void Load() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  if (!shared->loaded && CountsTableExists() &&
      SPI_execute("SELECT tenant_id, resource, window_start, period, used FROM tenant.meter_counts", true, 0) ==
          SPI_OK_SELECT) {
    const TimestampTz now = GetCurrentTimestamp();
    for (uint64 i = 0; i < SPI_processed; ++i) {
      HeapTuple row = SPI_tuptable->vals[i];
      TupleDesc desc = SPI_tuptable->tupdesc;
      bool isnull;
      MeterKey key;
      memset(&key, 0, sizeof(key));
      key.database = MyDatabaseId;
      key.tenant = *DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull));
      strlcpy(key.resource, TextDatumGetCString(SPI_getbinval(row, desc, 2, &isnull)), sizeof(key.resource));
      key.window_start = DatumGetTimestampTz(SPI_getbinval(row, desc, 3, &isnull));
      Period period = ParsePeriod(TextDatumGetCString(SPI_getbinval(row, desc, 4, &isnull))).value_or(Period::kNone);
      const uint64 used = static_cast<uint64>(DatumGetInt64(SPI_getbinval(row, desc, 5, &isnull)));
      if (WindowEnd(period, key.window_start) <= now) continue;
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      Outcome refusal;
      MeterEntry *entry = AddEntry(key, period, &refusal);
      if (entry != nullptr) pg_atomic_fetch_add_u64(&entry->used, used);  // calls made before the load add up
      LWLockRelease(shared->lock);
    }
    shared->loaded = true;
  }
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
}

// Runs a step of the worker with interrupts held, so a shutdown request waits for it, and with
// its own error recovery: the error is logged, its transaction aborted, and the worker goes on
// (at the next interval) instead of exiting and being restarted.
void RunGuarded(void (*step)()) {
  MemoryContext context = CurrentMemoryContext;
  volatile bool failed = false;
  HOLD_INTERRUPTS();
  PG_TRY();
  { step(); }
  PG_CATCH();
  {
    failed = true;
    MemoryContextSwitchTo(context);
    EmitErrorReport();
    AbortCurrentTransaction();
    FlushErrorState();
    pgstat_report_activity(STATE_IDLE, nullptr);
  }
  PG_END_TRY();
  if (!failed) RESUME_INTERRUPTS();  // an error's longjmp has reset the holdoff count already
}

// A GUC check hook: the URL may hold a password (bridge::CheckSecretSetting).
bool CheckRedisUrl(char **newval, void **, GucSource source) noexcept {
  return bridge::CheckSecretSetting("pg_tenant.redis_url", "Redis URL", "The form is redis://[:password@]host:port[/db].",
                                    *newval, source, [](const char *value, std::string *error) {
                                      return redis::ParseRedisUrl(value, error).has_value();
                                    });
}

void AssignRedisUrl(const char *, void *) noexcept { ++redis_url_version; }

// --- forgetting a purged tenant ----------------------------------------------------------------

// Tenants of this database purged by the current transaction: their entries go at commit (before
// it, a rollback would have lost their counts).
struct PurgedTenant {
  pg_uuid_t tenant;
  int nest_level;  // of the (sub)transaction that purged it
};
std::vector<PurgedTenant> purged_tenants;
bool purge_callback_registered = false;

// A purge rolled back to a savepoint forgets nothing.
void KeepPurgesOfLiveSubtransactions(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    while (!purged_tenants.empty() && purged_tenants.back().nest_level >= level) purged_tenants.pop_back();
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (PurgedTenant &purged : purged_tenants)
      if (purged.nest_level >= level) purged.nest_level = level - 1;
  }
}

// Plain C at commit: nothing can fail here but lock bookkeeping.
void ForgetPurgedTenants(XactEvent event, void *) noexcept {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
      event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
    return;
  if (event == XACT_EVENT_COMMIT && meter_table != nullptr && !purged_tenants.empty()) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, meter_table);
    MeterEntry *entry;
    while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
      if (entry->key.database != MyDatabaseId) continue;
      for (const PurgedTenant &purged : purged_tenants) {
        if (memcmp(&entry->key.tenant, &purged.tenant, sizeof(purged.tenant)) != 0) continue;
        const MeterKey key = entry->key;
        RemoveEntry(key);
        break;
      }
    }
    LWLockRelease(shared->lock);
  }
  purged_tenants.clear();
}

}  // namespace

void Init() {
  if (!process_shared_preload_libraries_in_progress) return;
  DefineCustomIntVariable("pg_tenant.max_meters", "Most meter counters kept in shared memory.",
                          "One counter per database, tenant, resource and window.", &max_meters, 10000, 16,
                          10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.max_meters_per_tenant", "Most meter counters one tenant may hold at once.",
                          "Its share of pg_tenant.max_meters: one counter per resource and open window. A tenant "
                          "past it is refused (53400); the others are not affected.",
                          &max_meters_per_tenant, 64, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.flush_interval", "How often meters are written to tenant.meter_counts.",
                          "A crash loses at most this much counting.", &flush_interval_ms, 1000, 10, 3600000,
                          PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("pg_tenant.database", "The database whose meters the background worker persists.",
                             nullptr, &meter_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomEnumVariable("pg_tenant.meter_backend", "Where meters count: shmem (this server) or redis (shared).",
                           nullptr, &meter_backend, kBackendShmem, kBackendOptions, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomStringVariable("pg_tenant.redis_url", "The Redis server of the redis meter backend.",
                             "redis://[:password@]host:port[/db]", &redis_url, "", PGC_SUSET, GUC_SUPERUSER_ONLY,
                             CheckRedisUrl, AssignRedisUrl, nullptr);
  DefineCustomIntVariable("pg_tenant.redis_connect_timeout", "Longest wait to connect to Redis.", nullptr,
                          &redis_connect_timeout_ms, 200, 1, 60000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.redis_command_timeout", "Longest wait for a Redis reply.", nullptr,
                          &redis_command_timeout_ms, 200, 1, 60000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomEnumVariable("pg_tenant.redis_failure",
                           "When Redis is unreachable: closed (error), open (let calls through), local (count here).",
                           nullptr, &redis_failure, kFailClosed, kFailureOptions, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  previous_shmem_request = shmem_request_hook;
  shmem_request_hook = RequestSharedMemory;
  previous_shmem_startup = shmem_startup_hook;
  shmem_startup_hook = StartSharedMemory;
  lease::Init(max_meters);

  BackgroundWorker worker;
  memset(&worker, 0, sizeof(worker));
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_ConsistentState;  // on a standby too (it loads, never flushes)
  worker.bgw_restart_time = 5;
  strlcpy(worker.bgw_library_name, "pg_tenant", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "pg_tenant_meter_worker_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "pg_tenant meter flusher", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "pg_tenant meter flusher", BGW_MAXLEN);
  RegisterBackgroundWorker(&worker);
}

}  // namespace pg_tenant::meters

using namespace pg_tenant;
using namespace pg_tenant::meters;

extern "C" PGDLLEXPORT void pg_tenant_meter_worker_main(Datum);

// The worker's life: PostgreSQL code only (no C++ object lives here), in the pg_cron style, with
// PostgreSQL's own SIGTERM handler (die): a shutdown request ends the wait, the worker flushes
// once more (the flush holds interrupts) and exits.
void pg_tenant_meter_worker_main(Datum) {
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(meter_database, nullptr, 0);
  RunGuarded(Load);
  TimestampTz next_flush = 0;
  for (;;) {
    // Wakes for the flush and, more often, to report and return Redis leases (meters/lease.cpp).
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, lease::TickMs(flush_interval_ms),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    if (ProcDiePending) break;
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    RunGuarded(lease::WorkerTick);
    const TimestampTz now = GetCurrentTimestamp();
    if (now >= next_flush) {
      next_flush = now + static_cast<TimestampTz>(flush_interval_ms) * 1000;
      RunGuarded(Flush);
    }
  }
  RunGuarded(lease::WorkerShutdown);  // clean shutdown: used units reach Redis, unused ones go back
  RunGuarded(Flush);  // clean shutdown: nothing counted is lost
  proc_exit(0);
}

// tenant.meter(resource text, amount bigint) returns bigint: what the limit leaves, NULL when unlimited.
PG_TENANT_FUNCTION(pg_tenant_meter) {
  std::optional<uint64> left;
  Meter(fcinfo, true, &left);
  if (!left) PG_RETURN_NULL();
  PG_RETURN_INT64(static_cast<int64>(*left));
}

// tenant.try_meter(resource text, amount bigint) returns boolean: counted, or false at the limit.
PG_TENANT_FUNCTION(pg_tenant_try_meter) {
  std::optional<uint64> left;
  PG_RETURN_BOOL(Meter(fcinfo, false, &left));
}

namespace pg_tenant::meters {
namespace {

// With the Redis backend, the tenant's open windows as every server counted them: Redis's count
// plus what this server served and has not reported yet (other servers report theirs every half
// pg_tenant.redis_lease_time). False, with a WARNING, when Redis cannot answer.
bool RedisUsage(FunctionCallInfo fcinfo, const pg_uuid_t &tenant) {
  struct Row {
    std::string resource;
    int64 window_start;
    int64 used;
    bool no_window;
  };
  std::vector<Row> rows;
  std::string error;
  std::vector<std::pair<std::string, int64_t>> values;
  const std::string prefix = RedisTenantPrefix(tenant);
  if (!EnsureRedis(&error) || !redis_client.ValuesWithPrefix(prefix, &values, &error)) {
    PgCall([&] {
      ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                        errmsg("tenant usage shows this server's meter counters only: %s", error.c_str())));
    });
    return false;
  }
  const TimestampTz now = GetCurrentTimestamp();
  for (const auto &[key, used] : values) {
    const std::string rest = key.substr(prefix.size());  // <resource>:<window start>
    const size_t colon = rest.find(':');
    if (colon == std::string::npos || rest.find(':', colon + 1) != std::string::npos) continue;
    const std::string resource = rest.substr(0, colon);
    if (!limits::IsValidResourceName(resource)) continue;
    const int64 window_start = std::strtoll(rest.c_str() + colon + 1, nullptr, 10);
    const Period period = limits::EffectiveLimit(tenant, resource).period;
    if (WindowEnd(period, window_start) <= now) continue;
    rows.push_back({resource, window_start, used + static_cast<int64>(lease::Unreported(key)), period == Period::kNone});
  }
  PgCall([&] {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    for (const Row &row : rows) {
      Datum datums[3] = {CStringGetTextDatum(row.resource.c_str()), TimestampTzGetDatum(row.window_start),
                         Int64GetDatum(row.used)};
      bool nulls[3] = {false, row.no_window, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, datums, nulls);
    }
  });
  return true;
}

}  // namespace
}  // namespace pg_tenant::meters

// tenant._meter_usage(tenant uuid) returns table (resource text, window_start timestamptz, used bigint):
// the tenant's open windows in this database (with the Redis backend: of every server).
PG_TENANT_FUNCTION(pg_tenant_meter_usage) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  if (meter_backend == kBackendRedis && RedisUsage(fcinfo, tenant)) return (Datum)0;
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

// tenant._forget_meters(tenant uuid): for tenant.purge(). Redis keys are deleted now (a rollback
// of the purge loses them: they are counters, not data); shared memory entries at commit.
PG_TENANT_FUNCTION(pg_tenant_forget_meters) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  if (meter_table == nullptr) PG_RETURN_VOID();  // not preloaded: no meter was ever counted
  if (!purge_callback_registered) {
    PgCall([] {
      RegisterXactCallback(ForgetPurgedTenants, nullptr);
      RegisterSubXactCallback(KeepPurgesOfLiveSubtransactions, nullptr);
    });
    purge_callback_registered = true;
  }
  purged_tenants.push_back({tenant, GetCurrentTransactionNestLevel()});
  lease::Forget(RedisTenantPrefix(tenant));  // nothing of it may reach Redis after the keys are gone
  if (meter_backend == kBackendRedis) {
    std::string error;
    int64 deleted = 0;
    if (!EnsureRedis(&error) || !redis_client.DeletePrefix(RedisTenantPrefix(tenant), &deleted, &error)) {
      if (redis_failure == kFailClosed)
        throw Error(errcodes::kRedisUnavailable, "cannot delete the tenant's meters in Redis: " + error, "",
                    "Retry when Redis answers; with pg_tenant.redis_failure = open or local the purge goes on "
                    "with a warning and the keys expire with their windows.");
      PgCall([&] {
        ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                          errmsg("the tenant's meters in Redis were not deleted: %s", error.c_str())));
      });
    }
  }
  PG_RETURN_VOID();
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
