// Statement counters per (database, tenant) in shared memory, pg_stat_statements style (the
// locking: store.hpp). Rows: one per registered tenant, one "none" (statements with no tenant),
// one "other" (what evicted tenants did) and (0.10.0) one "unregistered" (statements under a
// tenant id that is not in tenant.tenants: made-up ids take no row of their own, so they cannot
// evict real tenants or fill top_tenants and the exporter's labels) per database. Whether a new
// row's tenant is registered is looked up once (the registry's cache, then its index) when the
// statement ends normally in a live transaction; a statement that fails trusts only the
// registry's cache. The last unregistered id is remembered until the registry changes (a
// negative cache: repeating a made-up id costs no look-up). Beyond pg_tenant.stats_max_tenants
// tenant rows (plus a margin), the rows with the lowest decaying activity score are merged into
// "other" in one go, so the rows always add up to every statement counted.
#include "stats/store.hpp"

#include "bridge/bridge.hpp"
#include "registry/registry.hpp"

namespace pg_tenant::stats {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
int max_tenants = 1000;
int period_seconds = 60;

StatsShared *shared = nullptr;
HTAB *table = nullptr;

namespace {

using bridge::PgCall;

Candidate *candidates = nullptr;  // eviction scratch in shared memory, used under the exclusive lock
StatsEntry **candidate_entries = nullptr;

int HardRows() { return static_cast<int>(HardCapacity(static_cast<size_t>(max_tenants))); }
int TableRows() { return HardRows() + kReservedRows; }

Size SharedSize() {
  return add_size(add_size(MAXALIGN(sizeof(StatsShared)), hash_estimate_size(TableRows(), sizeof(StatsEntry))),
                  mul_size(HardRows() + 1, sizeof(Candidate) + sizeof(StatsEntry *)));
}

void InitRow(StatsEntry *entry, TimestampTz now) {
  SpinLockInit(&entry->mutex);
  entry->row = Row();
  entry->row.key = entry->key;
  entry->row.first_seen = now;
  entry->row.last_seen = now;
}

}  // namespace

// Removes a row; false when there was none. Exclusive lock. (Removing the row a hash_seq_search
// just returned is allowed.) Every backend's remembered row is void from now on.
bool RemoveRow(const StatsKey &key) {
  if (hash_search(table, &key, HASH_REMOVE, nullptr) == nullptr) return false;
  if (key.kind == kTenant) --shared->tenant_rows;
  ++shared->removals;
  return true;
}

namespace {

// Merges the lowest-scored tenant rows into their databases' "other" rows until `keep` tenant
// rows are left (at least one row goes). Exclusive lock.
void Evict(int keep, TimestampTz now) {
  const int64 period = PeriodUs();
  uint32 n = 0;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, table);
  StatsEntry *entry;
  while ((entry = static_cast<StatsEntry *>(hash_seq_search(&status))) != nullptr) {
    if (entry->key.kind != kTenant) continue;
    if (n > static_cast<uint32>(HardRows())) {  // cannot happen: tenant_rows is bounded by it
      hash_seq_term(&status);
      break;
    }
    candidates[n] = {entry->row.score.At(now, period), entry->row.last_seen, n};
    candidate_entries[n] = entry;
    ++n;
  }
  const size_t count = n > static_cast<uint32>(keep) ? n - static_cast<uint32>(keep) : (n > 0 ? 1 : 0);
  ChooseEvictions(candidates, n, count);
  for (size_t i = 0; i < count && i < n; ++i) {
    const Row evicted = candidate_entries[candidates[i].index]->row;
    RemoveRow(evicted.key);
    ++shared->evictions;
    bool found;
    StatsEntry *other = EnterRow(KeyOf(evicted.key.database, kOther, nullptr), now, &found);
    if (other == nullptr) {  // no room even for "other": what it did is lost, and counted as such
      shared->dropped += evicted.total.calls;
      continue;
    }
    other->row.total.Add(evicted.total);
    other->row.periods.Merge(now, period, evicted.periods);
    other->row.first_seen = Min(other->row.first_seen, evicted.first_seen);
    other->row.last_seen = Max(other->row.last_seen, evicted.last_seen);
  }
}

}  // namespace

// The row of key, added if missing (evicting first when the tenant rows are at their hard
// capacity); nullptr when there is no room. Exclusive lock.
StatsEntry *EnterRow(const StatsKey &key, TimestampTz now, bool *found) {
  auto *entry = static_cast<StatsEntry *>(hash_search(table, &key, HASH_FIND, nullptr));
  if (entry != nullptr) {
    *found = true;
    return entry;
  }
  *found = false;
  if (key.kind == kTenant && shared->tenant_rows >= HardRows()) Evict(max_tenants, now);
  // The shared hash could grow into spare shared memory: hold it to its size.
  if (hash_get_num_entries(table) >= TableRows() && shared->tenant_rows > 0) Evict(shared->tenant_rows - 1, now);
  if (hash_get_num_entries(table) >= TableRows()) return nullptr;
  bool exists = false;
  entry = static_cast<StatsEntry *>(hash_search(table, &key, HASH_ENTER_NULL, &exists));
  if (entry == nullptr) return nullptr;
  if (!exists) {
    InitRow(entry, now);
    if (key.kind == kTenant) ++shared->tenant_rows;
  }
  return entry;
}

namespace {

// Adds the statement to an existing row under the shared lock; false when there is no such row.
bool StoreIn(const StatsKey &key, const Counters &counters, TimestampTz now, int64 period) {
  LWLockAcquire(shared->lock, LW_SHARED);
  auto *entry = static_cast<StatsEntry *>(hash_search(table, &key, HASH_FIND, nullptr));
  if (entry != nullptr) {
    SpinLockAcquire(&entry->mutex);
    entry->row.total.Add(counters);
    entry->row.periods.Record(now, period, counters);
    entry->row.last_seen = now;
    SpinLockRelease(&entry->mutex);
  }
  LWLockRelease(shared->lock);
  return entry != nullptr;
}

// The row this backend counted in last: most statements follow one of the same tenant. Valid while
// no row has been removed since (shared->removals, read under the lock).
StatsKey memo_key;
StatsEntry *memo_entry = nullptr;
uint64 memo_removals = 0;

// The last tenant id found unregistered, valid while the registry's generation holds.
bool has_unregistered_memo = false;
pg_uuid_t unregistered_memo;
uint64 unregistered_memo_generation = 0;

// Whether the tenant of a statement gets a row of its own: it is in tenant.tenants. No lock held.
bool Registered(const pg_uuid_t &tenant, Lookup lookup) {
  char slug[registry::kNameBufferSize];
  if (registry::CachedSlug(tenant, slug)) return true;
  if (has_unregistered_memo && unregistered_memo_generation == registry::Generation() &&
      memcmp(&unregistered_memo, &tenant, sizeof(tenant)) == 0)
    return false;
  // The look-up may run SQL of its own (on Citus, to find the registry's shard): a statement it
  // runs is counted too, and must not look up again.
  static bool looking_up = false;
  if (looking_up) return false;
  bool registered = false;
  if (lookup == Lookup::kMayRead && IsTransactionState()) {
    looking_up = true;
    PG_TRY();
    { bridge::Guarded([&] { registered = registry::IsRegistered(tenant); }); }  // a catalog error fails the statement
    PG_FINALLY();
    { looking_up = false; }
    PG_END_TRY();
  }
  if (!registered && lookup == Lookup::kMayRead) {
    has_unregistered_memo = true;
    unregistered_memo = tenant;
    unregistered_memo_generation = registry::Generation();
  }
  return registered;
}

}  // namespace

// Adds one statement to the row of (this database, tenant or none). Takes and releases the lock.
void Store(const pg_uuid_t *tenant, const Counters &counters, Lookup lookup) {
  const TimestampTz now = GetCurrentTimestamp();
  const int64 period = PeriodUs();
  StatsKey key = KeyOf(MyDatabaseId, tenant != nullptr ? kTenant : kNone, tenant);
  LWLockAcquire(shared->lock, LW_SHARED);
  StatsEntry *entry = memo_entry != nullptr && memo_removals == shared->removals &&
                              memcmp(&memo_key, &key, sizeof(key)) == 0
                          ? memo_entry
                          : static_cast<StatsEntry *>(hash_search(table, &key, HASH_FIND, nullptr));
  if (entry == nullptr) {
    LWLockRelease(shared->lock);
    if (key.kind == kTenant && !Registered(*tenant, lookup)) {
      key = KeyOf(MyDatabaseId, kUnregistered, nullptr);
      if (StoreIn(key, counters, now, period)) return;
    }
    // With the tenant rows at their limit (many tenants come and go), a new tenant does not wait
    // for the exclusive lock: while another backend holds the table, the statement counts in
    // "other" and the tenant's next statement tries again. (The count is read without the lock:
    // a hint.)
    const bool churn = key.kind == kTenant && shared->tenant_rows >= max_tenants;
    if (!churn || !LWLockConditionalAcquire(shared->lock, LW_EXCLUSIVE)) {
      if (churn && StoreIn(KeyOf(MyDatabaseId, kOther, nullptr), counters, now, period)) return;
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    }
    bool found;
    entry = EnterRow(key, now, &found);
    if (entry == nullptr) {
      ++shared->dropped;
      LWLockRelease(shared->lock);
      return;
    }
  }
  memo_key = key;
  memo_entry = entry;
  memo_removals = shared->removals;
  SpinLockAcquire(&entry->mutex);
  entry->row.total.Add(counters);
  entry->row.periods.Record(now, period, counters);
  entry->row.score.Bump(now, period);
  entry->row.last_seen = now;
  SpinLockRelease(&entry->mutex);
  LWLockRelease(shared->lock);
}

// Forgets one tenant's row of this database.
bool RemoveTenantRow(const pg_uuid_t &tenant) {
  return PgCall([&] {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    const bool removed = RemoveRow(KeyOf(MyDatabaseId, kTenant, &tenant));
    LWLockRelease(shared->lock);
    return removed;
  });
}

void RequestSharedMemory() noexcept {
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche("pg_tenant stats", 1);
}

void StartSharedMemory() noexcept {
  shared = nullptr;
  table = nullptr;
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  shared = static_cast<StatsShared *>(ShmemInitStruct("pg_tenant stats", sizeof(StatsShared), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("pg_tenant stats"))->lock;
    shared->tenant_rows = 0;
    shared->evictions = 0;
    shared->dropped = 0;
    shared->removals = 0;
  }
  bool scratch_found;
  candidates = static_cast<Candidate *>(
      ShmemInitStruct("pg_tenant stats scratch", mul_size(HardRows() + 1, sizeof(Candidate) + sizeof(StatsEntry *)),
                      &scratch_found));
  candidate_entries = reinterpret_cast<StatsEntry **>(candidates + HardRows() + 1);
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = sizeof(StatsKey);
  info.entrysize = sizeof(StatsEntry);
  table = ShmemInitHash("pg_tenant stats table", TableRows(), TableRows(), &info, HASH_ELEM | HASH_BLOBS);
  LWLockRelease(AddinShmemInitLock);
  if (!IsUnderPostmaster) on_shmem_exit(SaveFile, (Datum)0);
  if (!found) LoadFile();
}

}  // namespace pg_tenant::stats
