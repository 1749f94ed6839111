// Meters: one counter per (database, tenant, resource, window) in a shared hash table. The hot
// path takes the table's LWLock in shared mode and moves the counter with a compare-and-swap,
// so concurrent callers never pass the limit and never wait for each other; only the first call
// in a new window takes the lock exclusively to add the entry. The background worker
// (meters/flusher.cpp) writes the counters to tenant.meter_counts every pg_tenant.flush_interval
// and at shutdown, and loads them at start; counting is not transactional (like a sequence): a
// meter call is not refunded by ROLLBACK. The table and its locking: meters/store.hpp.
#include "meters/meter.hpp"
#include "meters/lease.hpp"
#include "meters/store.hpp"

#include <algorithm>

#include "citus/citus.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/settings.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
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
using namespace store;

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
int meter_backend = kBackendShmem;
char *redis_url = nullptr;
int redis_connect_timeout_ms = 200;
int redis_command_timeout_ms = 200;
int redis_failure = kFailClosed;
int max_meters = 10000;
int max_idempotency_keys = 10000;
int max_idempotency_keys_per_tenant = 1000;
int idempotency_horizon_s = 300;
int max_meters_per_tenant = 64;

namespace {

using bridge::PgCall;
using limits::Period;
using limits::PeriodName;
using limits::ParsePeriod;
using limits::WindowEnd;
using limits::WindowStart;

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

// Idempotency keys (0.9.0): tenant.meter(resource, amount, key) remembers each (database,
// tenant, resource, key) for pg_tenant.idempotency_horizon with the answer it got, in a shared
// hash of pg_tenant.max_idempotency_keys entries (its own LWLock). A repeated key counts
// nothing and gets the same answer; while the first call of a key is counting (microseconds),
// a second one waits for its answer. 0.10.0: a tenant holds at most
// pg_tenant.max_idempotency_keys_per_tenant of them (the meters' share rule, its own share
// table under the keys' lock), and a key is as old as it is: the horizon in force decides when
// it is forgotten, so a horizon shortened on reload frees keys at once.
constexpr size_t kMostKeyBytes = 64;

struct OnceKey {  // hashed as bytes: always fully zeroed before filling
  Oid database;
  pg_uuid_t tenant;
  char resource[kResourceSize];
  char key[kMostKeyBytes + 1];
};

struct OnceEntry {
  OnceKey key;
  TimestampTz made;
  int pid;       // the backend counting it, 0 once answered
  bool counted;  // the answer: counted, or refused at the limit
  uint64 used;   // the count the first call got back
  int64 amount;  // a repeat must ask for the same amount
};

uint64 redis_url_version = 0;

LWLock *once_lock = nullptr;
HTAB *once_table = nullptr;
HTAB *once_share_table = nullptr;
HTAB *share_table = nullptr;

Size SharedSize() {
  return MAXALIGN(sizeof(MeterShared)) + MAXALIGN(sizeof(AlertQueue)) +
         hash_estimate_size(max_meters, sizeof(MeterEntry)) + hash_estimate_size(max_meters, sizeof(ShareEntry)) +
         hash_estimate_size(max_idempotency_keys, sizeof(OnceEntry)) +
         hash_estimate_size(max_idempotency_keys, sizeof(ShareEntry));
}

}  // namespace

void RequestSharedMemory() noexcept {
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche("pg_tenant", 2);  // the meters', the idempotency keys'
}

void StartSharedMemory() noexcept {
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  shared = static_cast<MeterShared *>(ShmemInitStruct("pg_tenant meters", sizeof(MeterShared), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("pg_tenant"))->lock;
    shared->loaded = false;
    shared->oldest_key = 0;
    pg_atomic_init_u64(&shared->flushed_until, 0);
  }
  alert_queue = static_cast<AlertQueue *>(ShmemInitStruct("pg_tenant usage alerts", sizeof(AlertQueue), &found));
  if (!found) {
    SpinLockInit(&alert_queue->mutex);
    alert_queue->count = 0;
  }
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = sizeof(MeterKey);
  info.entrysize = sizeof(MeterEntry);
  meter_table = ShmemInitHash("pg_tenant meter table", max_meters, max_meters, &info, HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(ShareKey);
  info.entrysize = sizeof(ShareEntry);
  share_table = ShmemInitHash("pg_tenant meter shares", max_meters, max_meters, &info, HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(OnceKey);
  info.entrysize = sizeof(OnceEntry);
  once_table = ShmemInitHash("pg_tenant idempotency keys", max_idempotency_keys, max_idempotency_keys, &info,
                             HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(ShareKey);
  info.entrysize = sizeof(ShareEntry);
  once_share_table = ShmemInitHash("pg_tenant idempotency key shares", max_idempotency_keys, max_idempotency_keys,
                                   &info, HASH_ELEM | HASH_BLOBS);
  once_lock = &(GetNamedLWLockTranche("pg_tenant"))[1].lock;
  LWLockRelease(AddinShmemInitLock);
}

namespace {

// --- the hot path ---------------------------------------------------------------------------

struct Count {
  Outcome outcome;
  uint64 used;  // after counting, or the current value when refused
  uint64 before = lease::kNoMark;  // Redis leases: this server's high-water mark before the call
};

// The most a counter holds: it is read back as a bigint.
constexpr uint64 kMostUsed = static_cast<uint64>(std::numeric_limits<int64>::max());

// The share rule, one definition for every shared table with a per-tenant share (meters,
// idempotency keys): shares counts the entries each tenant of a database holds in its table.
// The caller holds the table's lock exclusively.
template <typename Key>
ShareKey ShareOf(const Key &key) {
  ShareKey share;
  memset(&share, 0, sizeof(share));
  share.database = key.database;
  share.tenant = key.tenant;
  return share;
}

bool ShareFull(HTAB *shares, const ShareKey &tenant, int most) {
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_FIND, nullptr));
  return share != nullptr && share->entries >= most;
}

// An entry of the tenant was added to the table.
void TakeShare(HTAB *shares, const ShareKey &tenant) {
  bool found;
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_ENTER_NULL, &found));
  if (share == nullptr) return;  // as many shares as entries: cannot happen
  if (!found) share->entries = 0;
  ++share->entries;
}

// An entry of the tenant was removed from the table.
void GiveShareBack(HTAB *shares, const ShareKey &tenant) {
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_FIND, nullptr));
  if (share != nullptr && --share->entries <= 0) hash_search(shares, &tenant, HASH_REMOVE, nullptr);
}

}  // namespace

namespace store {

int flush_interval_ms = 1000;
char *meter_database = nullptr;
MeterShared *shared = nullptr;
AlertQueue *alert_queue = nullptr;
HTAB *meter_table = nullptr;

// Adds the entry of key, within the tenant's share and the table's size; the caller holds the
// lock exclusively. nullptr with *refusal set when there is no room.
MeterEntry *AddEntry(const MeterKey &key, Period period, Outcome *refusal) {
  const ShareKey share_key = ShareOf(key);
  if (ShareFull(share_table, share_key, max_meters_per_tenant)) {
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
  TakeShare(share_table, share_key);
  return entry;
}

// Removes an entry and gives its place back to its tenant's share; the caller holds the lock
// exclusively.
void RemoveEntry(const MeterKey &key) {
  if (hash_search(meter_table, &key, HASH_REMOVE, nullptr) == nullptr) return;
  GiveShareBack(share_table, ShareOf(key));
}

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

}  // namespace store

namespace {

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

// --- idempotency keys (shared memory) ---------------------------------------------------------

enum class OnceState { kNew, kAnswered, kBusy, kFull, kShareFull };

TimestampTz Horizon() { return static_cast<TimestampTz>(idempotency_horizon_s) * USECS_PER_SEC; }

// Removes a key and gives its place back to its tenant's share; the caller holds the keys' lock.
void DropOnce(const OnceKey &key) {
  if (hash_search(once_table, &key, HASH_REMOVE, nullptr) != nullptr) GiveShareBack(once_share_table, ShareOf(key));
}

// Drops every key older than the horizon, unless none can be: then nothing is scanned. The
// caller holds the keys' lock exclusively.
void DropExpiredOnce(TimestampTz now) {
  if (shared->oldest_key > now - Horizon()) return;
  TimestampTz oldest = now;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, once_table);
  OnceEntry *old;
  while ((old = static_cast<OnceEntry *>(hash_seq_search(&status))) != nullptr) {
    if (old->made <= now - Horizon())
      DropOnce(old->key);  // removing the entry just returned is allowed during a scan
    else
      oldest = std::min(oldest, old->made);
  }
  shared->oldest_key = oldest;
}

// Plain C under the keys' lock. kNew: an entry pending for this backend was made; kAnswered:
// *seen is the first call's answer; kBusy: another backend is counting it; kFull: every entry is
// younger than the horizon; kShareFull: the tenant holds its whole share of them. An expired
// entry, or one left pending by a backend that is gone, is dropped first.
OnceState ClaimOnce(const OnceKey &key, int64 amount, OnceEntry *seen) {
  LWLockAcquire(once_lock, LW_EXCLUSIVE);
  const TimestampTz now = GetCurrentTimestamp();
  auto *entry = static_cast<OnceEntry *>(hash_search(once_table, &key, HASH_FIND, nullptr));
  if (entry != nullptr &&
      (entry->made <= now - Horizon() || (entry->pid != 0 && BackendPidGetProc(entry->pid) == nullptr))) {
    DropOnce(key);
    entry = nullptr;
  }
  if (entry != nullptr) {
    *seen = *entry;
    LWLockRelease(once_lock);
    return seen->pid != 0 ? OnceState::kBusy : OnceState::kAnswered;
  }
  const ShareKey share_key = ShareOf(key);
  if (hash_get_num_entries(once_table) >= max_idempotency_keys ||
      ShareFull(once_share_table, share_key, max_idempotency_keys_per_tenant))
    DropExpiredOnce(now);  // make room
  if (ShareFull(once_share_table, share_key, max_idempotency_keys_per_tenant)) {
    LWLockRelease(once_lock);
    return OnceState::kShareFull;
  }
  bool found;
  entry = hash_get_num_entries(once_table) < max_idempotency_keys
              ? static_cast<OnceEntry *>(hash_search(once_table, &key, HASH_ENTER_NULL, &found))
              : nullptr;
  if (entry == nullptr) {
    LWLockRelease(once_lock);
    return OnceState::kFull;
  }
  TakeShare(once_share_table, share_key);
  entry->made = now;
  entry->pid = MyProcPid;
  entry->counted = false;
  entry->used = 0;
  entry->amount = amount;
  LWLockRelease(once_lock);
  return OnceState::kNew;
}

// The first call's answer (answered), or its entry dropped (the call failed: a retry counts).
void SettleOnce(const OnceKey &key, bool answered, bool counted, uint64 used) {
  LWLockAcquire(once_lock, LW_EXCLUSIVE);
  auto *entry = static_cast<OnceEntry *>(hash_search(once_table, &key, HASH_FIND, nullptr));
  if (entry != nullptr && entry->pid == MyProcPid) {
    if (answered) {
      entry->counted = counted;
      entry->used = used;
      entry->pid = 0;
    } else {
      DropOnce(key);
    }
  }
  LWLockRelease(once_lock);
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
// What the worker needs to record the alert levels of this meter (lease::AlertSpec).
pg_noinline lease::AlertSpec SpecOf(const MeterKey &key, const limits::Limit &levels) {
  lease::AlertSpec spec;
  memset(&spec, 0, sizeof(spec));
  spec.tenant = key.tenant;
  memcpy(spec.resource, key.resource, sizeof(spec.resource));
  spec.window_start = key.window_start;
  spec.period = static_cast<int32>(levels.period);
  spec.soft = levels.soft;
  spec.limit = levels.value;
  spec.alert_count = levels.limited ? levels.alert_count : 0;
  memcpy(spec.alert_levels, levels.alert_levels, sizeof(spec.alert_levels));
  return spec;
}

// levels: the limit whose alert levels the call checks (for the worker's reports).
Count CountInRedis(const MeterKey &key, Period period, uint64 amount, bool limited, uint64 limit,
                   const limits::Limit &levels) {
  std::string error;
  const std::string redis_key = RedisKey(key);
  // Most calls are served from this server's lease of units (meters/lease.cpp): no round trip.
  const lease::Session session{redis_url, redis_url_version, redis_client.Connected()};
  uint64 served_used = 0, before = lease::kNoMark;
  if (lease::Serve(session, redis_key, amount, limited, limit, &served_used, &before))
    return {Outcome::kCounted, served_used, before};
  if (EnsureRedis(&error)) {
    redis::MeterReply reply = lease::Meter(redis_client, session, redis_key, static_cast<int64>(amount),
                                           limited ? static_cast<int64>(limit) : -1, TtlMs(period, key.window_start),
                                           WindowEnd(period, key.window_start), SpecOf(key, levels), &before);
    if (reply.status == redis::MeterReply::Status::kCounted)
      return {Outcome::kCounted, static_cast<uint64>(reply.used), before};
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

Error AmountDiffers(int64 first, int64 now) {
  return Error(ERRCODE_INVALID_PARAMETER_VALUE, "the idempotency key was used with another amount",
               "Its first call metered " + std::to_string(first) + ", this one " + std::to_string(now) + ".",
               "A repeated call must repeat the first one; a new event needs a new key.");
}

// The keyed and alert paths stay out of line (pg_noinline): Meter() stays as short as before.
// A keyed call in shared memory: the key's first call counts, a repeat gets its answer.
pg_noinline Count CountOnceInShmem(const MeterKey &key, const OnceKey &once, Period period, uint64 amount, bool hard,
                       uint64 limit, bool *repeated) {
  OnceEntry seen;
  const TimestampTz give_up = GetCurrentTimestamp() + 10 * USECS_PER_SEC;
  for (;;) {
    const OnceState state = PgCall([&] { return ClaimOnce(once, static_cast<int64>(amount), &seen); });
    if (state == OnceState::kNew) break;
    if (state == OnceState::kAnswered) {
      if (seen.amount != static_cast<int64>(amount)) throw AmountDiffers(seen.amount, static_cast<int64>(amount));
      *repeated = true;
      return {seen.counted ? Outcome::kCounted : Outcome::kOverLimit, seen.used};
    }
    if (state == OnceState::kFull)
      throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "too many idempotency keys",
                  "pg_tenant.max_idempotency_keys (" + std::to_string(max_idempotency_keys) +
                      ") keys are younger than pg_tenant.idempotency_horizon (" +
                      std::to_string(idempotency_horizon_s) + " s).",
                  "Raise pg_tenant.max_idempotency_keys (restart) or shorten pg_tenant.idempotency_horizon.");
    if (state == OnceState::kShareFull)
      throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "the tenant holds its whole share of the idempotency keys",
                  "pg_tenant.max_idempotency_keys_per_tenant (" + std::to_string(max_idempotency_keys_per_tenant) +
                      ") of its keys are younger than pg_tenant.idempotency_horizon (" +
                      std::to_string(idempotency_horizon_s) + " s).",
                  "Repeat keys already used, raise pg_tenant.max_idempotency_keys_per_tenant or shorten "
                  "pg_tenant.idempotency_horizon.");
    // kBusy: the same key's first call is counting in another backend.
    if (GetCurrentTimestamp() > give_up)
      throw Error(ERRCODE_LOCK_NOT_AVAILABLE, "a meter call with the same idempotency key is still in progress");
    PgCall([] {
      pg_usleep(1000L);
      CHECK_FOR_INTERRUPTS();
    });
  }
  Count count;
  try {
    count = PgCall([&] { return CountIn(key, period, amount, hard, limit); });
  } catch (...) {
    PgCall([&] { SettleOnce(once, false, false, 0); });
    throw;
  }
  // Refusals for room (table or share full, out of range) are not answers: a retry may count.
  const bool answered = count.outcome == Outcome::kCounted || count.outcome == Outcome::kOverLimit;
  PgCall([&] { SettleOnce(once, answered, count.outcome == Outcome::kCounted, count.used); });
  return count;
}

// A keyed call in Redis: one script. While Redis fails, closed refuses (TN009); open and local
// count as an unkeyed call would (the key is not remembered then).
pg_noinline Count CountOnceInRedis(const MeterKey &key, std::string_view once, Period period, uint64 amount, bool hard,
                       uint64 limit, const limits::Limit &levels, bool *repeated) {
  std::string error;
  if (EnsureRedis(&error)) {
    const std::string once_key = RedisTenantPrefix(key.tenant) + key.resource + ":once:" + std::string(once);
    const redis::MeterOnceReply reply =
        redis_client.MeterOnce(RedisKey(key), once_key, static_cast<int64>(amount), hard ? static_cast<int64>(limit) : -1,
                               TtlMs(period, key.window_start), static_cast<int64>(idempotency_horizon_s) * 1000);
    if (reply.meter.status != redis::MeterReply::Status::kFailed) {
      if (reply.repeated && reply.amount != static_cast<int64>(amount))
        throw AmountDiffers(reply.amount, static_cast<int64>(amount));
      *repeated = reply.repeated;
      return {reply.meter.status == redis::MeterReply::Status::kCounted ? Outcome::kCounted : Outcome::kOverLimit,
              static_cast<uint64>(reply.meter.used)};
    }
    error = reply.meter.error;
  }
  if (redis_failure == kFailClosed)
    throw Error(errcodes::kRedisUnavailable, "Redis meter backend unavailable: " + error, "",
                "Check pg_tenant.redis_url and the Redis server.");
  return CountInRedis(key, period, amount, hard, limit, levels);
}

// The third argument of a keyed call: 1 to 64 bytes.
pg_noinline std::string_view IdempotencyKey(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(2)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "the idempotency key must not be NULL");
  text *key_text = PG_GETARG_TEXT_PP(2);
  const std::string_view key(VARDATA_ANY(key_text), VARSIZE_ANY_EXHDR(key_text));
  if (key.empty() || key.size() > kMostKeyBytes)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "an idempotency key has 1 to 64 bytes, not " + std::to_string(key.size()));
  return key;
}

pg_noinline Count CountKeyed(std::string_view idempotency_key, const MeterKey &key, Period period, uint64 amount,
                             bool hard, uint64 limit, const limits::Limit &levels, bool *repeated) {
  if (meter_backend == kBackendRedis)
    return CountOnceInRedis(key, idempotency_key, period, amount, hard, limit, levels, repeated);
  OnceKey once;
  memset(&once, 0, sizeof(once));
  once.database = key.database;
  once.tenant = key.tenant;
  memcpy(once.resource, key.resource, sizeof(once.resource));
  memcpy(once.key, idempotency_key.data(), idempotency_key.size());
  return CountOnceInShmem(key, once, period, amount, hard, limit, repeated);
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
// limit leaves after it (nullopt when unlimited); refused at the limit, *refusal says why.
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

// The worker writes the alerts of its database (pg_tenant.database) only, as it saves only that
// database's counters.
bool InWorkerDatabase() {
  static int known = -1;
  if (known < 0)
    known = PgCall([] {
      const char *name = get_database_name(MyDatabaseId);
      return name != nullptr && meter_database != nullptr && strcmp(name, meter_database) == 0;
    });
  return known == 1;
}

// A full queue (the worker is behind by a thousand alerts): the caller writes the alert in its own
// transaction, as the extension owner; it is then lost if that transaction rolls back.
pg_noinline void WriteAlertNow(const AlertRecord &alert) {
  spi::Session spi;
  spi::AsRole as_owner(catalog::ExtensionOwner());
  pg_uuid_t tenant = alert.tenant;
  spi.Execute(kAlertSql, {{UUIDOID, UUIDPGetDatum(&tenant)},
                          {TEXTOID, spi::TextParam(alert.resource)},
                          {TIMESTAMPTZOID, TimestampTzGetDatum(alert.window_start)},
                          {TEXTOID, spi::TextParam(PeriodName(static_cast<Period>(alert.period)))},
                          {INT4OID, Int32GetDatum(alert.level)},
                          {INT8OID, Int64GetDatum(static_cast<int64>(alert.used))},
                          {INT8OID, Int64GetDatum(static_cast<int64>(alert.limit))},
                          {TEXTOID, spi::TextParam(alert.soft ? "soft" : "hard")}});
  spi.Finish();
}

// The levels a count that moved from before to after crossed. In shared memory each is crossed
// by exactly one call of the window. With Redis (claim) every server's high-water mark passes
// it, so a level is claimed first (SET NX of <key>:alert:<level>, one round trip for the levels
// of a call, with the backend's connection or a report's client): only the server that sets the
// key records it. A claim that fails (Redis unreachable) records anyway: at least once rather
// than never. A report (from_report: the worker, outside a transaction) writes no SQL: with the
// queue full it drops the alert with a LOG.
pg_noinline void RecordCrossings(const MeterKey &key, const limits::Limit &limit, uint64 before, uint64 after,
                                 bool claim = false, redis::Client *client = nullptr,
                                 const std::string *redis_key = nullptr, bool from_report = false) {
  if (RecoveryInProgress() || (!from_report && !InWorkerDatabase())) return;  // a standby writes nothing
  int crossed[limits::kMostAlertLevels];
  int count = 0;
  for (int i = 0; i < limit.alert_count && i < limits::kMostAlertLevels; ++i) {
    const uint64 threshold = limits::AlertThreshold(limit.value, limit.alert_levels[i]);
    if (before < threshold && threshold <= after) crossed[count++] = i;
  }
  bool mine[limits::kMostAlertLevels];
  for (int j = 0; j < count; ++j) mine[j] = true;
  std::string error;
  if (count > 0 && claim && (client != nullptr || EnsureRedis(&error))) {  // only on a crossing: rare
    const std::string counter = redis_key != nullptr ? *redis_key : RedisKey(key);
    std::vector<std::string> keys;
    for (int j = 0; j < count; ++j) keys.push_back(counter + ":alert:" + std::to_string(limit.alert_levels[crossed[j]]));
    std::vector<int64_t> claimed;
    if ((client != nullptr ? client : &redis_client)->Claim(keys, TtlMs(limit.period, key.window_start), &claimed, &error))
      for (int j = 0; j < count; ++j) mine[j] = claimed[j] == 1;
  }
  for (int j = 0; j < count; ++j) {
    if (!mine[j]) continue;  // another server records it
    const int i = crossed[j];
    AlertRecord alert;
    memset(&alert, 0, sizeof(alert));
    alert.tenant = key.tenant;
    memcpy(alert.resource, key.resource, sizeof(alert.resource));
    alert.window_start = key.window_start;
    alert.period = static_cast<int32>(limit.period);
    alert.level = limit.alert_levels[i];
    alert.used = after;
    alert.limit = limit.value;
    alert.soft = limit.soft;
    SpinLockAcquire(&alert_queue->mutex);
    const bool queued = alert_queue->count < kAlertQueueSize;
    if (queued) alert_queue->records[alert_queue->count++] = alert;
    SpinLockRelease(&alert_queue->mutex);
    if (!queued && !from_report) WriteAlertNow(alert);
    if (!queued && from_report)
      PgCall([&] {
        ereport(LOG, (errmsg("pg_tenant dropped usage alert %d%% of \"%s\": the alert queue is full", alert.level,
                             alert.resource)));
      });
  }
}

}  // namespace

// A report raised the mark of key (lease.hpp): the levels it passed, for the keys of the
// worker's database only (pg_tenant:<database>:...).
void RecordReportedCrossings(const lease::AlertSpec &spec, const std::string &redis_key, uint64 before, uint64 after,
                             redis::Client &client) {
  if (meter_database == nullptr || redis_key.rfind("pg_tenant:" + std::string(meter_database) + ":", 0) != 0) return;
  MeterKey key;
  memset(&key, 0, sizeof(key));
  key.database = MyDatabaseId;
  key.tenant = spec.tenant;
  memcpy(key.resource, spec.resource, sizeof(key.resource));
  key.window_start = spec.window_start;
  limits::Limit limit;
  limit.limited = true;
  limit.value = spec.limit;
  limit.period = static_cast<Period>(spec.period);
  limit.soft = spec.soft;
  limit.alert_count = spec.alert_count;
  memcpy(limit.alert_levels, spec.alert_levels, sizeof(limit.alert_levels));
  RecordCrossings(key, limit, before, after, true, &client, &redis_key, true);
}

namespace {

// A call refused at the limit: tenant.meter() raises TN006 with these, after Meter() returned
// (thrown from Meter's own frame, the unwinder searched its long table of call sites: 96,000 ->
// 109,000 instructions per refused call in callgrind).
struct Refusal {
  const limits::Limit *limit = nullptr;  // valid until the next EffectiveLimit
  uint64 used = 0;
};

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
  if (keyed) IdempotencyKey(fcinfo);   // its errors before any count
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
                ? CountInRedis(key, limit.period, static_cast<uint64>(amount), hard, limit.value, limit)
                : PgCall([&] { return CountIn(key, limit.period, static_cast<uint64>(amount), hard, limit.value); });
  } else {
    count = CountKeyed(IdempotencyKey(fcinfo), key, limit.period, static_cast<uint64>(amount), hard, limit.value, limit,
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

// A GUC check hook: the URL may hold a password (bridge::CheckSecretSetting).
bool CheckRedisUrl(char **newval, void **, GucSource source) noexcept {
  return bridge::CheckSecretSetting("pg_tenant.redis_url", "Redis URL", "The form is redis://[:password@]host:port[/db].",
                                    *newval, source, [](const char *value, std::string *error) {
                                      return redis::ParseRedisUrl(value, error).has_value();
                                    });
}

void AssignRedisUrl(const char *, void *) noexcept { ++redis_url_version; }

namespace {

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

// tenant._meters_flushed_until() returns timestamptz: every window that ended by then is final in
// tenant.meter_counts (NULL before the worker's first flush, or without preloading).
PG_TENANT_FUNCTION(pg_tenant_meters_flushed_until) {
  if (shared == nullptr) PG_RETURN_NULL();
  const uint64 until = pg_atomic_read_u64(&shared->flushed_until);
  if (until == 0) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(static_cast<TimestampTz>(until));
}
