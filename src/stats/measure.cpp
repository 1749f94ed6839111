// The statistics' steps of the executor door (src/executor/door.cpp): what a top-level statement
// is, and what it did. A nesting depth is kept across ExecutorStart/Run/Finish, so what functions,
// SPI and triggers run inside a statement is part of that statement. Each top-level statement in
// progress has a slot (cursors and portals interleave) holding the time, buffer and WAL counters
// its Run and Finish moved; at its end (before ExecutorEnd) they are stored in its tenant's row
// (store.cpp). A statement that fails in Start, Run or Finish at depth 0 is counted (with what it
// did up to the error) from a PG_CATCH that re-throws at once. Everything here is plain C in C++
// clothing: no C++ object with a destructor lives across a call that can ereport.
//
// Locking: the depth, the slots and the statement tenant memo are the backend's own. No lock is
// taken here but through Store (store.hpp: the table's LWLock shared and the row's spinlock; the
// lock exclusive for a new row), once per top-level statement, after it ran.
#include "stats/stats.hpp"

#include "context/context.hpp"
#include "stats/store.hpp"

namespace pg_tenant::stats {

// The setting (registered in src/wiring/settings.cpp; only when preloaded).
bool stats_enabled = true;

namespace {

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

const pg_uuid_t *StatementTenant() noexcept {
  return statement_has_tenant && statement_started == GetCurrentStatementStartTimestamp() ? &statement_tenant
                                                                                           : nullptr;
}

}  // namespace pg_tenant::stats
