// The meter store shared by the meter calls (meter.cpp and the backends), the idempotency keys
// (keys.cpp: they share its shared memory and lock tranche) and the background worker that
// persists it (flusher.cpp): the shared hash of counters, its header, the alert outbox, and the
// hot path that moves a counter (CountIn). Written in store.cpp.
//
// Locking (the model is pg_stat_statements' head comment):
// - MeterShared::lock (LWLock, tranche "pg_tenant", the first of two) guards the counter table's
//   structure and the meter shares (meters/share.hpp). Meter calls take it SHARED to find a
//   counter and move it: the value is an atomic moved by compare-and-swap, so callers never wait
//   for each other; the first call of a window takes it EXCLUSIVE to add the entry (AddEntry).
//   The worker takes it SHARED to copy the counters (CopyCounters) and EXCLUSIVE to free ended
//   windows (FreeEndedWindows), a purge's commit EXCLUSIVE to remove a tenant's entries
//   (purge.cpp), the Redis backend SHARED to take and give back the counts made while Redis was
//   unreachable (MeterEntry::pending, atomic); tenant.meter_info() SHARED to read the sizes. The
//   worker's load at start takes it EXCLUSIVE to add each loaded counter.
// - AlertQueue::mutex (spinlock) guards the alert queue's count and records: a meter call holds
//   it to append one record (alerts.cpp), the worker to read the count, to copy the head and to
//   remove what its committed flush wrote (flusher.cpp): copies only, no call.
// - The idempotency keys have their own LWLock (the second of the tranche, keys.cpp), which also
//   guards MeterShared::oldest_key.
// - flushed_until is an atomic written by the worker only; loaded is the worker's.
#pragma once

#include <limits>

#include "bridge/pg.hpp"
#include "limits/window.hpp"
#include "meters/lease.hpp"
#include "meters/meter.hpp"

namespace pg_tenant::meters::store {

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

struct MeterShared {
  LWLock *lock;  // guards both tables' structure (shared for counting, exclusive to add or remove)
  bool loaded;   // the worker loaded tenant.meter_counts since shared memory was created
  // 0.10.0: no idempotency key was made before this (guarded by the keys' lock): a full table is
  // swept for expired keys only when one can have expired, so a tenant at its share cannot make
  // every keyed call of every tenant scan the table.
  TimestampTz oldest_key;
  // 0.9.0: every window that ended by then is in tenant.meter_counts for good (the start of the
  // last committed flush; 0 before the first). Written by the worker only.
  pg_atomic_uint64 flushed_until;
};

// Usage alerts (0.9.0): a meter call that moves a counter across an alert level of its limit
// queues the alert here; the worker writes the queued alerts of pg_tenant.database with its flush
// (tenant._usage_alert: a row of tenant.usage_alerts and a NOTIFY, once per key), in a
// transaction of its own, so the caller's rollback does not lose an alert whose count stays.
// Only one call crosses a level (the counter moves by compare-and-swap, or in Redis by one
// script), and the outbox's primary key keeps a retried flush from writing one twice.
struct AlertRecord {
  pg_uuid_t tenant;
  char resource[kResourceSize];
  int64 window_start;
  int32 period;
  int32 level;
  uint64 used;
  uint64 limit;
  bool soft;
};

constexpr int kAlertQueueSize = 1024;  // a full queue: the caller writes the alert itself

struct AlertQueue {
  slock_t mutex;  // guards count and records
  int count;
  AlertRecord records[kAlertQueueSize];
};

// The levels of limit a count that moved from before to after crossed, queued here (alerts.cpp).
// claim: the Redis backend, whose servers claim each level in Redis first (with client, or the
// backend's connection); from_report: the worker's reports, which write no SQL.
void RecordCrossings(const MeterKey &key, const limits::Limit &limit, uint64 before, uint64 after, bool claim = false,
                     redis::Client *client = nullptr, const std::string *redis_key = nullptr, bool from_report = false);

enum class Outcome { kCounted, kOverLimit, kTableFull, kShareFull, kOutOfRange };

// The SQL both writers run: a row of tenant.usage_alerts and its NOTIFY, unless it is there.
inline constexpr const char *kAlertSql =
    "SELECT tenant._usage_alert($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr int kAlertParams = 8;
inline const Oid kAlertTypes[kAlertParams] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID};

// Shared memory (attached in every process) and the settings both sides read.
extern MeterShared *shared;
extern AlertQueue *alert_queue;
extern HTAB *meter_table;
extern HTAB *share_table;  // the meter shares (meters/share.hpp), under MeterShared::lock

// What a meter call got: counted (used is the count after it), or refused (the current count).
struct Count {
  Outcome outcome;
  uint64 used;  // after counting, or the current value when refused
  uint64 before = lease::kNoMark;  // Redis leases: this server's high-water mark before the call
};

// The most a counter holds: it is read back as a bigint.
constexpr uint64 kMostUsed = static_cast<uint64>(std::numeric_limits<int64>::max());

// The hot path: counts amount on the counter of key (added at the first call of its window)
// without passing most (limit when limited, else the largest bigint). Plain C: no C++ object is
// alive here, and nothing in it can ereport but lock bookkeeping (call it through PgCall).
// pending: counted here while Redis was unreachable (pg_tenant.redis_failure = local).
Count CountIn(const MeterKey &key, limits::Period period, uint64 amount, bool limited, uint64 limit,
              bool pending = false);

// Adds the entry of key, within the tenant's share and the table's size; the caller holds the
// lock exclusively. nullptr with *refusal set when there is no room.
MeterEntry *AddEntry(const MeterKey &key, limits::Period period, Outcome *refusal);
// Removes an entry and gives its place back to its tenant's share; exclusive lock.
void RemoveEntry(const MeterKey &key);

struct CounterCopy {
  MeterKey key;
  int32 period;
  uint64 used;
};
// This database's counters, copied under the shared lock (a List of CounterCopy, palloc'd).
List *CopyCounters();
// Frees the entries of windows that ended before cutoff, of every database.
void FreeEndedWindows(TimestampTz cutoff);

}  // namespace pg_tenant::meters::store
