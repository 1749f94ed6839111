// The meter store shared by the meter calls (meter.cpp) and the background worker that
// persists it (flusher.cpp): the shared hash of counters, its header and the alert outbox.
//
// Locking: MeterShared::lock guards the counter table's structure and the meter shares (shared
// to find and move a counter, whose value is an atomic moved by compare-and-swap; exclusive to
// add or remove an entry). The alert queue has its own spinlock. The idempotency keys have their
// own LWLock (meter.cpp), which also guards MeterShared::oldest_key. flushed_until is written by
// the worker only.
#pragma once

#include "bridge/pg.hpp"
#include "limits/window.hpp"
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
