// The statistics' rows in shared memory (internal to stats/): written in store.cpp, counted into
// by the executor steps (measure.cpp), saved and loaded by file.cpp, read by the SQL functions
// (stats.cpp).
//
// Locking (pg_stat_statements' protocol): StatsShared::lock (LWLock, tranche "pg_tenant stats")
// guards the hash table's structure and StatsShared's counts. Counting a statement takes it
// SHARED to find its row, and the row's spinlock (StatsEntry::mutex) to add to its counters;
// adding, evicting or removing a row takes it EXCLUSIVE (a new tenant's row under churn only if
// it is free at once: else the statement counts in "other"). Readers take it SHARED and copy
// each row under its spinlock. The file is written by the postmaster at clean shutdown and read
// when shared memory is made, when no other process runs: no lock then.
#pragma once

#include "bridge/pg.hpp"
#include "stats/counters.hpp"
#include "stats/stats.hpp"

namespace pg_tenant::stats {

// Rows kept for "none", "other" and "unregistered" beside the tenant rows (three per database
// that counts).
constexpr int kReservedRows = 128;

enum Kind : uint8 { kTenant = 0, kNone = 1, kOther = 2, kUnregistered = 3 };
inline const char *const kKindNames[] = {"tenant", "none", "other", "unregistered"};

struct StatsKey {  // hashed as bytes: always fully zeroed before filling
  Oid database;
  uint8 kind;
  pg_uuid_t tenant;  // zero for none and other
};

// What is saved, per row.
struct Row {
  StatsKey key;
  Counters total;
  Periods periods;
  Score score;
  TimestampTz first_seen;
  TimestampTz last_seen;
};

struct StatsEntry {
  StatsKey key;  // must be first (dynahash)
  slock_t mutex;
  Row row;  // row.key repeats key
};

struct StatsShared {
  LWLock *lock;
  int tenant_rows;  // rows of kind tenant, every database
  int64 evictions;  // tenant rows merged into "other" since shared memory was made
  int64 dropped;    // statements that found no room at all (more databases than kReservedRows / 3)
  uint64 removals;  // rows removed so far (eviction, reset): a backend's memo of a row is valid while it holds
};

extern StatsShared *shared;  // nullptr: not preloaded
extern HTAB *table;

inline int64 PeriodUs() { return static_cast<int64>(period_seconds) * USECS_PER_SEC; }

// The key of a row (inline: Store builds one per statement).
inline StatsKey KeyOf(Oid database, Kind kind, const pg_uuid_t *tenant) {
  StatsKey key;
  memset(&key, 0, sizeof(key));
  key.database = database;
  key.kind = kind;
  if (kind == kTenant) key.tenant = *tenant;
  return key;
}

// How Store may learn whether a tenant is registered: look it up (a statement that ended
// normally), or only ask the registry's cache (a statement failing: no catalog access then).
enum class Lookup { kMayRead, kCacheOnly };

// Adds one statement to the row of (this database, tenant or none). Takes and releases the lock.
void Store(const pg_uuid_t *tenant, const Counters &counters, Lookup lookup);

// The row of key, added if missing (evicting first when the tenant rows are at their hard
// capacity); nullptr when there is no room. Exclusive lock.
StatsEntry *EnterRow(const StatsKey &key, TimestampTz now, bool *found);
// Removes a row; false when there was none. Exclusive lock.
bool RemoveRow(const StatsKey &key);
// Forgets one tenant's row of this database (takes the lock).
bool RemoveTenantRow(const pg_uuid_t &tenant);

// The file of the last clean shutdown (file.cpp): saved by the postmaster (an on_shmem_exit
// callback), loaded when shared memory is made.
void SaveFile(int code, Datum) noexcept;
void LoadFile();

}  // namespace pg_tenant::stats
