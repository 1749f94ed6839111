// The meter store (meters/store.hpp, whose head comment has the locking): one counter per
// (database, tenant, resource, window) in a shared hash table, each tenant's share of it, the
// shared memory of the meters (with the idempotency keys' part, keys.cpp) and the hot path that
// moves a counter. CountIn takes the table's LWLock in shared mode and moves the counter with a
// compare-and-swap, so concurrent callers never pass the limit and never wait for each other;
// only the first call in a new window takes the lock exclusively to add the entry.
#include "meters/store.hpp"

#include "meters/keys.hpp"
#include "meters/share.hpp"

namespace pg_tenant::meters {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
int max_meters = 10000;
int max_meters_per_tenant = 64;

namespace store {

int flush_interval_ms = 1000;
char *meter_database = nullptr;
MeterShared *shared = nullptr;
AlertQueue *alert_queue = nullptr;
HTAB *meter_table = nullptr;
HTAB *share_table = nullptr;

using limits::Period;
using limits::WindowEnd;

namespace {

Size SharedSize() {
  return MAXALIGN(sizeof(MeterShared)) + MAXALIGN(sizeof(AlertQueue)) +
         hash_estimate_size(max_meters, sizeof(MeterEntry)) + hash_estimate_size(max_meters, sizeof(ShareEntry)) +
         keys::SharedSize();
}

}  // namespace

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

Count CountIn(const MeterKey &key, Period period, uint64 amount, bool limited, uint64 limit, bool pending) {
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

}  // namespace store

void RequestSharedMemory() noexcept {
  RequestAddinShmemSpace(store::SharedSize());
  RequestNamedLWLockTranche("pg_tenant", 2);  // the meters', the idempotency keys'
}

void StartSharedMemory() noexcept {
  using namespace store;
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
  keys::AttachSharedMemory(&(GetNamedLWLockTranche("pg_tenant"))[1].lock);
  LWLockRelease(AddinShmemInitLock);
}

}  // namespace pg_tenant::meters
