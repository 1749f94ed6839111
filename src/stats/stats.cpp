// Statement counters per (database, tenant) in shared memory, pg_stat_statements style: an
// LWLock guards the hash table's structure (shared to count, exclusive to add or evict a row), a
// spinlock each row's counters. The executor hooks count top-level statements only: a nesting
// depth is kept across ExecutorStart/Run/Finish, so what functions, SPI and triggers run inside
// a statement is part of that statement. A statement that fails is counted (with what it did up
// to the error) from a PG_CATCH that re-throws at once. Everything here that PostgreSQL calls is
// plain C in C++ clothing: no C++ object with a destructor lives across a call that can ereport.
//
// Rows: one per registered tenant, one "none" (statements with no tenant), one "other" (what
// evicted tenants did) and (0.10.0) one "unregistered" (statements under a tenant id that is not
// in tenant.tenants: made-up ids take no row of their own, so they cannot evict real tenants or
// fill top_tenants and the exporter's labels) per database. Whether a new row's tenant is
// registered is looked up once (the registry's cache, then its index) when the statement ends
// normally in a live transaction; a statement that fails trusts only the registry's cache. The
// last unregistered id is remembered until the registry changes (a negative cache: repeating a
// made-up id costs no look-up). Beyond pg_tenant.stats_max_tenants tenant rows (plus a margin), the
// rows with the lowest decaying activity score are merged into "other" in one go, so the rows
// always add up to every statement counted. Saved at clean shutdown to pg_stat/ and loaded (and
// removed) at start; after a crash there is no file, and a damaged one is skipped and removed.
#include "stats/stats.hpp"

#include "bridge/bridge.hpp"
#include "context/context.hpp"
#include "registry/registry.hpp"
#include "stats/counters.hpp"

namespace pg_tenant::stats {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
bool stats_enabled = true;
int max_tenants = 1000;
int period_seconds = 60;

namespace {

using bridge::PgCall;

constexpr const char *kFile = PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_tenant_stats.stat";
constexpr const char *kTempFile = PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_tenant_stats.stat.tmp";
constexpr uint32 kFileMagic = 0x50544E53;  // "PTNS"
constexpr uint32 kFileFormat = 1;
// Rows kept for "none", "other" and "unregistered" beside the tenant rows (three per database
// that counts).
constexpr int kReservedRows = 128;

enum Kind : uint8 { kTenant = 0, kNone = 1, kOther = 2, kUnregistered = 3 };
const char *const kKindNames[] = {"tenant", "none", "other", "unregistered"};

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

StatsShared *shared = nullptr;
HTAB *table = nullptr;
Candidate *candidates = nullptr;  // eviction scratch in shared memory, used under the exclusive lock
StatsEntry **candidate_entries = nullptr;

int64 PeriodUs() { return static_cast<int64>(period_seconds) * USECS_PER_SEC; }
int HardRows() { return static_cast<int>(HardCapacity(static_cast<size_t>(max_tenants))); }
int TableRows() { return HardRows() + kReservedRows; }

Size SharedSize() {
  return add_size(add_size(MAXALIGN(sizeof(StatsShared)), hash_estimate_size(TableRows(), sizeof(StatsEntry))),
                  mul_size(HardRows() + 1, sizeof(Candidate) + sizeof(StatsEntry *)));
}

// --- rows (the caller holds the lock as each function says) -------------------------------

StatsKey KeyOf(Oid database, Kind kind, const pg_uuid_t *tenant) {
  StatsKey key;
  memset(&key, 0, sizeof(key));
  key.database = database;
  key.kind = kind;
  if (kind == kTenant) key.tenant = *tenant;
  return key;
}

void InitRow(StatsEntry *entry, TimestampTz now) {
  SpinLockInit(&entry->mutex);
  entry->row = Row();
  entry->row.key = entry->key;
  entry->row.first_seen = now;
  entry->row.last_seen = now;
}

StatsEntry *EnterRow(const StatsKey &key, TimestampTz now, bool *found);

// Removes a row; false when there was none. Exclusive lock. (Removing the row a hash_seq_search
// just returned is allowed.) Every backend's remembered row is void from now on.
bool RemoveRow(const StatsKey &key) {
  if (hash_search(table, &key, HASH_REMOVE, nullptr) == nullptr) return false;
  if (key.kind == kTenant) --shared->tenant_rows;
  ++shared->removals;
  return true;
}

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

// How Store may learn whether a tenant is registered: look it up (a statement that ended
// normally), or only ask the registry's cache (a statement failing: no catalog access then).
enum class Lookup { kMayRead, kCacheOnly };

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

// --- the executor hooks ---------------------------------------------------------------------

int nesting = 0;  // executor calls in progress in this backend

// The statement tenant memo (StatementTenant).
bool statement_has_tenant = false;
pg_uuid_t statement_tenant;
TimestampTz statement_started = 0;

void RememberStatementTenant(const pg_uuid_t *tenant) {
  statement_has_tenant = tenant != nullptr;
  if (tenant != nullptr) statement_tenant = *tenant;
  statement_started = GetCurrentStatementStartTimestamp();
}

bool Counting() { return shared != nullptr && stats_enabled && !IsParallelWorker(); }

// What a top-level statement did while it ran (ExecutorRun and ExecutorFinish, as
// pg_stat_statements' instrumentation counts it), measured by the hooks themselves from the
// backend's buffer and WAL usage: only the counters kept, no allocation. A slot per top-level
// statement in progress; several can be (cursors, portals of the extended protocol).
struct Usage {
  instr_time at;
  int64 hit, read, dirtied, temp_written, wal_bytes;
};

struct Slot {
  const QueryDesc *query;  // nullptr: free
  instr_time time;
  int64 hit, read, dirtied, temp_written, wal_bytes;
  int64 rows;    // of every ExecutorRun (a cursor's fetches add up; each run starts from 0)
  bool running;  // inside ExecutorRun or ExecutorFinish since `since`
  Usage since;
};

constexpr int kSlots = 8;
Slot slots[kSlots];
int next_victim = 0;

Usage Now() {
  Usage u;
  INSTR_TIME_SET_CURRENT(u.at);
  u.hit = pgBufferUsage.shared_blks_hit;
  u.read = pgBufferUsage.shared_blks_read;
  u.dirtied = pgBufferUsage.shared_blks_dirtied;
  u.temp_written = pgBufferUsage.temp_blks_written;
  u.wal_bytes = static_cast<int64>(pgWalUsage.wal_bytes);
  return u;
}

void Accumulate(Slot *slot, const Usage &before) {
  const Usage after = Now();
  slot->running = false;
  INSTR_TIME_ACCUM_DIFF(slot->time, after.at, before.at);
  slot->hit += after.hit - before.hit;
  slot->read += after.read - before.read;
  slot->dirtied += after.dirtied - before.dirtied;
  slot->temp_written += after.temp_written - before.temp_written;
  slot->wal_bytes += after.wal_bytes - before.wal_bytes;
}

Slot *FindSlot(const QueryDesc *query) {
  for (Slot &slot : slots)
    if (slot.query == query) return &slot;
  return nullptr;
}

// A slot for a statement that starts: its own (a slot left by a statement whose end never came,
// at the same address), a free one, or else the next in turn (more than kSlots open cursors:
// the oldest is measured no more).
void ClaimSlot(const QueryDesc *query) {
  Slot *slot = FindSlot(query);
  if (slot == nullptr) slot = FindSlot(nullptr);
  if (slot == nullptr) {
    slot = &slots[next_victim];
    next_victim = (next_victim + 1) % kSlots;
  }
  memset(slot, 0, sizeof(*slot));
  slot->query = query;
}

// The statement's counters, and its slot freed; nullopt-like false when it has no slot.
bool TakeMeasured(QueryDesc *query, Counters *c) {
  Slot *slot = FindSlot(query);
  if (slot == nullptr) return false;
  c->calls = 1;
  c->total_time = INSTR_TIME_GET_MILLISEC(slot->time);
  c->max_time = c->total_time;
  c->rows = slot->rows;
  c->shared_blks_hit = slot->hit;
  c->shared_blks_read = slot->read;
  c->shared_blks_dirtied = slot->dirtied;
  c->temp_blks_written = slot->temp_written;
  c->wal_bytes = slot->wal_bytes;
  slot->query = nullptr;
  return true;
}

// A top-level statement failed in ExecutorRun or ExecutorFinish: a call and an error, with what
// it did until then. Its end will not come (or will find no slot).
void CountFailure(QueryDesc *query) {
  const pg_uuid_t *tenant = context::UnvalidatedTenant();
  RememberStatementTenant(tenant);
  Counters c;
  if (!TakeMeasured(query, &c) || !Counting()) return;
  c.errors = 1;
  Store(tenant, c, Lookup::kCacheOnly);
}

}  // namespace

void MeasureStart(QueryDesc *query, int eflags, ExecutorStart_hook_type inner) noexcept {
  if (nesting > 0 || !Counting()) {
    inner(query, eflags);
    return;
  }
  ++nesting;  // whatever starting the plan runs (a function in a partition key) is nested
  PG_TRY();
  { inner(query, eflags); }
  PG_CATCH();
  {
    --nesting;
    if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0) {
      // Refused before it ran (permissions, strict context, a read-only tenant): no
      // measurements, but a call and an error of its tenant.
      Counters c;
      c.calls = 1;
      c.errors = 1;
      const pg_uuid_t *tenant = context::UnvalidatedTenant();
      RememberStatementTenant(tenant);
      Store(tenant, c, Lookup::kCacheOnly);
    }
    PG_RE_THROW();
  }
  PG_END_TRY();
  --nesting;
  if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0) ClaimSlot(query);  // EXPLAIN without ANALYZE runs nothing
}

namespace {

// A top-level statement's step begins and ends (its slot holds the usage at the start, so nothing
// of it lives in the frame that PG_TRY's longjmp returns to). Ends returns whether it is measured.
pg_noinline void BeginStep(const QueryDesc *query) {
  Slot *slot = FindSlot(query);
  if (slot == nullptr) return;
  slot->since = Now();
  slot->running = true;
}

pg_noinline bool EndStep(const QueryDesc *query, bool run) {
  Slot *slot = FindSlot(query);
  if (slot == nullptr) return false;
  if (slot->running) Accumulate(slot, slot->since);
  if (run && query->estate != nullptr) slot->rows += static_cast<int64>(query->estate->es_processed);
  return true;
}

// Runs a step of a running statement one level deeper, measuring it when it is a top-level
// statement's; a top-level statement that fails in it is counted, and the error goes on at once.
// run must hold no object with a destructor.
template <typename Run>
void Nested(QueryDesc *query, bool is_run, Run &&run) noexcept {
  if (nesting == 0) BeginStep(query);
  ++nesting;
  PG_TRY();
  { run(); }
  PG_CATCH();
  {
    if (--nesting == 0 && EndStep(query, is_run)) CountFailure(query);
    PG_RE_THROW();
  }
  PG_END_TRY();
  if (--nesting == 0) EndStep(query, is_run);
}

}  // namespace

void MeasureRun(QueryDesc *query, ScanDirection direction, uint64 count, bool execute_once,
                ExecutorRun_hook_type inner) noexcept {
  Nested(query, true, [&] { inner(query, direction, count, execute_once); });
}

void MeasureFinish(QueryDesc *query, ExecutorFinish_hook_type inner) noexcept {
  Nested(query, false, [&] { inner(query); });
}

void CountEnded(QueryDesc *query) noexcept {
  if (nesting > 0) return;
  const pg_uuid_t *tenant = context::UnvalidatedTenant();
  RememberStatementTenant(tenant);
  Counters c;
  if (TakeMeasured(query, &c) && Counting()) Store(tenant, c, Lookup::kMayRead);
}

// --- shared memory and the file ---------------------------------------------------------------

void RequestSharedMemory() noexcept {
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche("pg_tenant stats", 1);
}

namespace {

struct FileHeader {
  uint32 magic;
  uint32 format;
  uint32 server_version;
  uint32 row_size;
  int64 rows;
};

// Whether the control file says the server shut down cleanly (a shutdown checkpoint was
// written). An immediate shutdown ends the postmaster with exit code 0 too, after its children
// were killed wherever they were, possibly in the middle of changing the table: the code alone
// cannot tell. Plain reads, nothing raised.
bool ShutDownCleanly() noexcept {
  ControlFileData control;
  const int fd = open(XLOG_CONTROL_FILE, O_RDONLY | PG_BINARY, 0);
  if (fd < 0) return false;
  const ssize_t n = read(fd, &control, sizeof(control));
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(control))) return false;
  pg_crc32c crc;
  INIT_CRC32C(crc);
  COMP_CRC32C(crc, &control, offsetof(ControlFileData, crc));
  FIN_CRC32C(crc);
  return EQ_CRC32C(crc, control.crc) && (control.state == DB_SHUTDOWNED || control.state == DB_SHUTDOWNED_IN_RECOVERY);
}

// Postmaster (or single-user backend) at clean shutdown: every other process has exited, so no
// lock is needed. Plain C: writes a .tmp, then renames it; failures are logged, never raised.
void SaveFile(int code, Datum) noexcept {
  // A crash or an immediate shutdown: nothing is saved (and there is no file: loading removed it).
  if (code != 0 || shared == nullptr || !ShutDownCleanly()) return;
  FILE *file = AllocateFile(kTempFile, PG_BINARY_W);
  if (file == nullptr) {
    ereport(LOG, (errcode_for_file_access(), errmsg("could not write file \"%s\": %m", kTempFile)));
    return;
  }
  FileHeader header = {kFileMagic, kFileFormat, PG_VERSION_NUM, sizeof(Row), hash_get_num_entries(table)};
  pg_crc32c crc;
  INIT_CRC32C(crc);
  COMP_CRC32C(crc, &header, sizeof(header));
  bool ok = fwrite(&header, sizeof(header), 1, file) == 1;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, table);
  StatsEntry *entry;
  while ((entry = static_cast<StatsEntry *>(hash_seq_search(&status))) != nullptr) {
    COMP_CRC32C(crc, &entry->row, sizeof(Row));
    if (ok) ok = fwrite(&entry->row, sizeof(Row), 1, file) == 1;
  }
  FIN_CRC32C(crc);
  if (ok) ok = fwrite(&crc, sizeof(crc), 1, file) == 1;
  if (FreeFile(file) != 0) ok = false;
  if (!ok) {
    ereport(LOG, (errcode_for_file_access(), errmsg("could not write file \"%s\": %m", kTempFile)));
    unlink(kTempFile);
    return;
  }
  (void)durable_rename(kTempFile, kFile, LOG);
}

// Postmaster, when shared memory is made: the rows saved at the last clean shutdown. The whole
// file is read and its checksum verified before any row is used; the file is removed after, so
// that a crash later finds none (its counters would be from before the crash).
void LoadFile() {
  FILE *file = AllocateFile(kFile, PG_BINARY_R);
  if (file == nullptr) {
    if (errno != ENOENT)
      ereport(LOG, (errcode_for_file_access(), errmsg("could not read file \"%s\": %m", kFile)));
    return;
  }
  FileHeader header;
  Row *rows = nullptr;
  bool ok = fread(&header, sizeof(header), 1, file) == 1 && header.magic == kFileMagic &&
            header.format == kFileFormat && header.server_version == PG_VERSION_NUM && header.row_size == sizeof(Row) &&
            header.rows >= 0 && header.rows <= 100000000;
  if (ok) {
    rows = static_cast<Row *>(MemoryContextAllocExtended(CurrentMemoryContext, Max(header.rows, 1) * sizeof(Row),
                                                         MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM));
    ok = rows != nullptr && fread(rows, sizeof(Row), header.rows, file) == static_cast<size_t>(header.rows);
  }
  pg_crc32c stored;
  if (ok) ok = fread(&stored, sizeof(stored), 1, file) == 1 && fgetc(file) == EOF;
  if (ok) {
    pg_crc32c crc;
    INIT_CRC32C(crc);
    COMP_CRC32C(crc, &header, sizeof(header));
    COMP_CRC32C(crc, rows, header.rows * sizeof(Row));
    FIN_CRC32C(crc);
    ok = EQ_CRC32C(crc, stored);
  }
  FreeFile(file);
  if (!ok) {
    ereport(LOG, (errmsg("pg_tenant: skipped the damaged statistics file \"%s\"", kFile),
                  errdetail("The per-tenant statistics start from zero.")));
  } else {
    const TimestampTz now = GetCurrentTimestamp();
    for (int64 i = 0; i < header.rows; ++i) {
      Row &saved = rows[i];
      if (saved.key.kind > kUnregistered) continue;
      bool found;
      StatsEntry *entry = EnterRow(saved.key, now, &found);  // a smaller limit now: evicts as it goes
      if (entry == nullptr) continue;
      if (found) {  // "other" made by an eviction of this load
        entry->row.total.Add(saved.total);
        entry->row.periods.Merge(now, PeriodUs(), saved.periods);
        entry->row.first_seen = Min(entry->row.first_seen, saved.first_seen);
        entry->row.last_seen = Max(entry->row.last_seen, saved.last_seen);
      } else {
        entry->row = saved;
        entry->row.key = entry->key;
      }
    }
  }
  if (rows != nullptr) pfree(rows);
  unlink(kFile);
}

}  // namespace

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

namespace {

// --- reading ----------------------------------------------------------------------------------

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

const pg_uuid_t *StatementTenant() noexcept {
  return statement_has_tenant && statement_started == GetCurrentStatementStartTimestamp() ? &statement_tenant
                                                                                           : nullptr;
}

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

// Forgets one tenant's row of this database.
bool RemoveTenantRow(const pg_uuid_t &tenant) {
  return PgCall([&] {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    const bool removed = RemoveRow(KeyOf(MyDatabaseId, kTenant, &tenant));
    LWLockRelease(shared->lock);
    return removed;
  });
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
