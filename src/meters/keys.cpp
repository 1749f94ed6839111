// Idempotency keys (0.9.0): tenant.meter(resource, amount, key) remembers each (database,
// tenant, resource, key) for pg_tenant.idempotency_horizon with the answer it got, in a shared
// hash of pg_tenant.max_idempotency_keys entries. A repeated key counts nothing and gets the same
// answer; while the first call of a key is counting (microseconds), a second one waits for its
// answer. 0.10.0: a tenant holds at most pg_tenant.max_idempotency_keys_per_tenant of them (the
// share rule, meters/share.hpp, with a share table of its own), and a key is as old as it is:
// the horizon in force decides when it is forgotten, so a horizon shortened on reload frees keys
// at once.
//
// Locking: the keys' LWLock (tranche "pg_tenant", the second; only keyed calls take it: an
// unkeyed call pays a test of PG_NARGS()) guards the key table, its share table and
// MeterShared::oldest_key. ClaimOnce takes it EXCLUSIVE to find the key or make it pending (the
// backend's pid), SettleOnce EXCLUSIVE to store the answer or drop the entry. The count itself
// runs between the two, outside this lock, under the meters' lock (store::CountIn); the two locks
// are never held together. A repeat that finds the entry pending sleeps 1 ms, holding no lock,
// and looks again.
#include "meters/keys.hpp"

#include <algorithm>
#include <string>

#include "bridge/errcodes.hpp"
#include "meters/share.hpp"

namespace pg_tenant::meters {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
int max_idempotency_keys = 10000;
int max_idempotency_keys_per_tenant = 1000;
int idempotency_horizon_s = 300;

namespace keys {
namespace {

using bridge::PgCall;
using limits::Period;
using namespace store;

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

LWLock *once_lock = nullptr;
HTAB *once_table = nullptr;
HTAB *once_share_table = nullptr;

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

// A keyed call in shared memory: the key's first call counts, a repeat gets its answer.
Count CountOnceInShmem(const MeterKey &key, const OnceKey &once, Period period, uint64 amount, bool hard,
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

}  // namespace

Size SharedSize() {
  return hash_estimate_size(max_idempotency_keys, sizeof(OnceEntry)) +
         hash_estimate_size(max_idempotency_keys, sizeof(ShareEntry));
}

void AttachSharedMemory(LWLock *lock) noexcept {
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = sizeof(OnceKey);
  info.entrysize = sizeof(OnceEntry);
  once_table = ShmemInitHash("pg_tenant idempotency keys", max_idempotency_keys, max_idempotency_keys, &info,
                             HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(ShareKey);
  info.entrysize = sizeof(ShareEntry);
  once_share_table = ShmemInitHash("pg_tenant idempotency key shares", max_idempotency_keys, max_idempotency_keys,
                                   &info, HASH_ELEM | HASH_BLOBS);
  once_lock = lock;
}

std::string_view IdempotencyKey(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(2)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "the idempotency key must not be NULL");
  text *key_text = PG_GETARG_TEXT_PP(2);
  const std::string_view key(VARDATA_ANY(key_text), VARSIZE_ANY_EXHDR(key_text));
  if (key.empty() || key.size() > kMostKeyBytes)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "an idempotency key has 1 to 64 bytes, not " + std::to_string(key.size()));
  return key;
}

Count CountOnce(const MeterKey &key, std::string_view idempotency_key, Period period, uint64 amount, bool hard,
                uint64 limit, bool *repeated) {
  OnceKey once;
  memset(&once, 0, sizeof(once));
  once.database = key.database;
  once.tenant = key.tenant;
  memcpy(once.resource, key.resource, sizeof(once.resource));
  memcpy(once.key, idempotency_key.data(), idempotency_key.size());
  return CountOnceInShmem(key, once, period, amount, hard, limit, repeated);
}

Error AmountDiffers(int64 first, int64 now) {
  return Error(ERRCODE_INVALID_PARAMETER_VALUE, "the idempotency key was used with another amount",
               "Its first call metered " + std::to_string(first) + ", this one " + std::to_string(now) + ".",
               "A repeated call must repeat the first one; a new event needs a new key.");
}

}  // namespace keys
}  // namespace pg_tenant::meters
