// The transaction's ledger of row counts: see ledger.hpp for the design. The counter rows are
// found, locked and updated with the table access method directly (an index look-up, a tuple
// lock, a heap update and, when the update is not HOT, the index entries), as PostgreSQL's
// logical replication apply does: no SQL, no planner, no executor on the hot path. Only a
// counter that does not exist yet is created with SQL (INSERT ... ON CONFLICT DO NOTHING, so the
// foreign key checks its tenant), once per tenant and resource.
#include "quotas/ledger.hpp"

#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "context/context.hpp"
#include "limits/limits.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace pg_tenant::quotas {
namespace {

using bridge::PgCall;

// --- tenant.row_counts, from the catalog -------------------------------------------------------------

struct Catalog {
  Oid counts = InvalidOid;     // tenant.row_counts
  Oid key_index = InvalidOid;  // row_counts_pkey (tenant_id, resource)
  AttrNumber rows = InvalidAttrNumber;
  uint64 generation = 0;       // the catalog::Generation() it was read under
};
Catalog counts_table;

// False when pg_tenant's tables are not there (the extension dropped in this transaction). The
// catalog's generation changes when the table is invalidated (dropped and created again, too).
bool LookUpCatalog() {
  if (counts_table.generation == catalog::Generation()) return true;
  const uint64 generation = catalog::Generation();
  const Oid counts = catalog::RelationId(catalog::Rel::kRowCounts);
  const Oid key_index = catalog::RelationId(catalog::Rel::kRowCountsPkey);
  if (!OidIsValid(counts) || !OidIsValid(key_index)) return false;
  const AttrNumber rows = PgCall([counts] { return get_attnum(counts, "rows"); });
  if (rows == InvalidAttrNumber) return false;
  counts_table = Catalog{counts, key_index, rows, generation};
  return true;
}

// --- the ledger --------------------------------------------------------------------------------------

struct CounterKey {
  std::string resource;
  UuidBytes tenant;
  bool operator<(const CounterKey &other) const {
    return resource != other.resource ? resource < other.resource : tenant < other.tenant;
  }
};

// What the transaction knows of one counter. Undone by a subtransaction abort as a whole.
struct CounterState {
  bool locked = false;  // this transaction holds the counter row's lock, and count is valid
  int64 count = 0;      // the committed count read under the lock, plus every delta since
  int64 pending = 0;    // the part of those deltas not yet written to tenant.row_counts
  ItemPointerData tid{};  // the row version locked or last written
  Oid relfilenode = InvalidOid;  // of tenant.row_counts then (TRUNCATE moves every row)
  int saved_level = 0;  // the nesting level whose undo entry holds this counter's earlier state
};

struct Counter {
  CounterKey key;
  CounterState state;
};

struct Undo {
  size_t counter;
  CounterState before;
  int level;
};

std::vector<Counter> counters;           // the counters this transaction touched
std::map<CounterKey, size_t> counter_of;  // key -> index in counters
std::vector<Undo> undo;                   // oldest first; the current subtransaction's last
bool busy = false;                        // the ledger is running SQL of its own

class Busy {
 public:
  Busy() : was_(busy) { busy = true; }
  ~Busy() { busy = was_; }
  Busy(const Busy &) = delete;
  Busy &operator=(const Busy &) = delete;

 private:
  bool was_;
};

// Before a counter changes: remember its state for the current (sub)transaction, once per level.
void Save(size_t i) {
  const int level = GetCurrentTransactionNestLevel();
  CounterState &state = counters[i].state;
  if (state.saved_level == level) return;
  undo.push_back({i, state, level});
  state.saved_level = level;
}

size_t FindOrAdd(const std::string &resource, const UuidBytes &tenant) {
  CounterKey key{resource, tenant};
  auto found = counter_of.find(key);
  if (found != counter_of.end()) return found->second;
  counters.push_back({key, CounterState{}});
  counter_of.emplace(std::move(key), counters.size() - 1);
  return counters.size() - 1;
}

void Clear() noexcept {
  // Clearing frees nothing a later transaction needs; very large ledgers give their memory back.
  counters.clear();
  counter_of.clear();
  undo.clear();
  if (counters.capacity() > 4096) std::vector<Counter>().swap(counters);
  if (undo.capacity() > 4096) std::vector<Undo>().swap(undo);
  busy = false;
}

// --- the counter rows ------------------------------------------------------------------------------

// Finds the counter's row and locks it: waits for a transaction that holds it, follows its update
// to the latest version. Fills state (locked, count, tid). False when there is no row.
bool FindAndLock(const CounterKey &key, CounterState &state) {
  const std::string &resource = key.resource;
  if (!LookUpCatalog())
    throw Error(ERRCODE_UNDEFINED_TABLE, "tenant.row_counts does not exist", "", "Is pg_tenant installed in this database?");
  // A copy: opening the table reads pending invalidations, which may void the look-up meanwhile.
  const Catalog cat = counts_table;
  return PgCall([&] {
    Relation rel = table_open(cat.counts, RowExclusiveLock);
    Relation index = index_open(cat.key_index, AccessShareLock);
    pg_uuid_t tenant;
    memcpy(tenant.data, key.tenant.data(), UUID_LEN);
    text *resource_text = cstring_to_text_with_len(resource.data(), static_cast<int>(resource.size()));
    ScanKeyData keys[2];
    ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0], F_UUID_EQ,
                           UUIDPGetDatum(&tenant));
    ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[1], F_TEXTEQ,
                           PointerGetDatum(resource_text));
    TupleTableSlot *slot = table_slot_create(rel, nullptr);
    bool found = false;
    for (;;) {
      // SnapshotSelf: committed rows and this transaction's own, whatever their command. A row
      // another transaction is inserting is not seen: the caller creates it with SQL, which waits.
      IndexScanDesc scan = index_beginscan(rel, index, SnapshotSelf, 2, 0);
      index_rescan(scan, keys, 2, nullptr, 0);
      found = index_getnext_slot(scan, ForwardScanDirection, slot);
      ItemPointerData tid = slot->tts_tid;
      ExecClearTuple(slot);
      index_endscan(scan);
      if (!found) break;
      TM_FailureData failure;
      const TM_Result result =
          table_tuple_lock(rel, &tid, SnapshotSelf, slot, GetCurrentCommandId(true), LockTupleNoKeyExclusive,
                           LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
      if (result == TM_Ok) {
        bool isnull;
        const Datum rows = slot_getattr(slot, cat.rows, &isnull);
        state.locked = true;
        state.count = isnull ? 0 : DatumGetInt64(rows);
        state.tid = slot->tts_tid;
        state.relfilenode = rel->rd_node.relNode;
        break;
      }
      if (result == TM_Deleted || result == TM_Updated) continue;  // gone meanwhile: look again
      elog(ERROR, "could not lock the row count of resource \"%s\" (%d)", resource.c_str(), static_cast<int>(result));
    }
    ExecDropSingleTupleTableSlot(slot);
    index_close(index, NoLock);
    table_close(rel, NoLock);
    return found;
  });
}

// The counter row, created with the count 0 (its tenant must exist: the foreign key checks it), as
// the extension owner. A row another transaction is creating is waited for.
void CreateCounter(const CounterKey &key) {
  Busy busy_guard;
  spi::Session spi;
  spi::AsRole as_owner(catalog::ExtensionOwner());
  pg_uuid_t tenant;
  memcpy(tenant.data, key.tenant.data(), UUID_LEN);
  spi.Execute(
      "INSERT INTO tenant.row_counts (tenant_id, resource, rows) VALUES ($1, $2, 0) "
      "ON CONFLICT ON CONSTRAINT row_counts_pkey DO NOTHING",
      {{UUIDOID, UUIDPGetDatum(&tenant)}, {TEXTOID, spi::TextParam(key.resource)}});
  spi.Finish();
  PgCall([] { CommandCounterIncrement(); });  // the new row can be locked by this command
}

// The index entries of a row version that is not HOT (its page was full).
void InsertIndexEntries(Relation rel, HeapTuple tuple) {
  EState *estate = CreateExecutorState();
  ResultRelInfo *info = makeNode(ResultRelInfo);
  InitResultRelInfo(info, rel, 1, nullptr, 0);
  ExecOpenIndices(info, false);
  TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
  ExecStoreHeapTuple(tuple, slot, false);
  // update = false: the "index unchanged" hint would read the range table this EState has not.
  (void)ExecInsertIndexTuples(info, slot, estate, false, false, nullptr, NIL);
  ExecCloseIndices(info);
  ExecResetTupleTable(estate->es_tupleTable, false);
  FreeExecutorState(estate);
}

// One update of the row version the counter holds locked: count = count + pending. False, and
// nothing written, when tenant.row_counts has new storage since (TRUNCATE in this transaction).
bool UpdateRow(const CounterKey &key, CounterState &state) {
  const Catalog cat = counts_table;  // as in FindAndLock
  return PgCall([&] {
    Relation rel = table_open(cat.counts, RowExclusiveLock);
    if (rel->rd_node.relNode != state.relfilenode) {
      table_close(rel, NoLock);
      return false;
    }
    HeapTupleData current;
    current.t_self = state.tid;
    Buffer buffer;
    if (!heap_fetch(rel, SnapshotAny, &current, &buffer, false))
      elog(ERROR, "the row count of resource \"%s\" is gone", key.resource.c_str());
    HeapTuple copy = heap_copytuple(&current);
    ReleaseBuffer(buffer);
    bool isnull;
    const int64 rows = DatumGetInt64(heap_getattr(copy, cat.rows, RelationGetDescr(rel), &isnull));
    int column = cat.rows;
    Datum value = Int64GetDatum((isnull ? 0 : rows) + state.pending);
    bool null = false;
    HeapTuple updated = heap_modify_tuple_by_cols(copy, RelationGetDescr(rel), 1, &column, &value, &null);
    simple_heap_update(rel, &state.tid, updated);
    if (!HeapTupleIsHeapOnly(updated)) InsertIndexEntries(rel, updated);
    state.tid = updated->t_self;
    state.pending = 0;
    heap_freetuple(updated);
    heap_freetuple(copy);
    table_close(rel, NoLock);
    return true;
  });
}

// Writes the counter's pending delta. A row that is gone (its tenant deleted, or the table
// emptied, by this transaction) takes nothing.
void Write(const CounterKey &key, CounterState &state) {
  if (LookUpCatalog() && UpdateRow(key, state)) return;
  const int64 pending = state.pending;
  state.pending = 0;
  state.locked = false;
  if (!LookUpCatalog() || !FindAndLock(key, state)) return;
  state.count += pending;
  state.pending = pending;
  if (!UpdateRow(key, state)) throw Error(ERRCODE_INTERNAL_ERROR, "the row count of resource \"" + key.resource + "\" moved twice");
}

bool AnyPending() {
  for (const Counter &counter : counters)
    if (counter.state.locked && counter.state.pending != 0) return true;
  return false;
}

// Writes every pending delta. Returns whether it wrote anything.
bool WriteAll() {
  Busy busy_guard;
  bool wrote = false;
  for (size_t i = 0; i < counters.size(); ++i) {
    if (!counters[i].state.locked || counters[i].state.pending == 0) continue;
    Save(i);
    Write(counters[i].key, counters[i].state);
    wrote = true;
  }
  return wrote;
}

// --- transaction ends ------------------------------------------------------------------------------

// Just before commit (or PREPARE): the deltas go to tenant.row_counts. An error here (it can be
// one: a serialization failure, a full disk) aborts the commit cleanly, as an error of a deferred
// trigger would: the transaction is rolled back and the ledger cleared by the abort.
}  // namespace

void OnXactEvent(XactEvent event, void *) noexcept {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
      if (!counters.empty() && AnyPending()) bridge::Guarded([] { (void)WriteAll(); });
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PREPARE:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PARALLEL_ABORT:
      if (!counters.empty() || !undo.empty() || busy) Clear();
      break;
    default:
      break;
  }
}

// ROLLBACK TO SAVEPOINT (or a PL/pgSQL exception block) takes back what the subtransaction counted,
// wrote and locked; a committed subtransaction's changes become its parent's. No allocation.
void OnSubXactEvent(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept {
  if (undo.empty()) return;
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    while (!undo.empty() && undo.back().level >= level) {
      counters[undo.back().counter].state = undo.back().before;
      undo.pop_back();
    }
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (auto entry = undo.rbegin(); entry != undo.rend() && entry->level >= level; ++entry) {
      entry->level = level - 1;
      CounterState &state = counters[entry->counter].state;
      if (state.saved_level >= level) state.saved_level = level - 1;
    }
  }
}

namespace {

// --- statements that read or write tenant.row_counts ---------------------------------------------------

bool NamesCounts(const PlannedStmt *statement) {
  if (statement->commandType == CMD_UTILITY) return false;
  ListCell *cell;
  foreach (cell, statement->rtable) {
    const auto *entry = static_cast<const RangeTblEntry *>(lfirst(cell));
    if (entry->rtekind == RTE_RELATION && entry->relid == counts_table.counts) return true;
  }
  return false;
}

// The statement reads what the transaction counted so far: the pending deltas are written in a
// command of their own, and the statement's snapshot is moved past it. A statement that may
// write the counts (a recount, a tenant deleted) makes the ledger read them again afterwards.
void BeforeStatementOnCounts(QueryDesc *query) {
  const bool wrote = WriteAll();
  const PlannedStmt *statement = query->plannedstmt;
  const bool may_write = statement->commandType != CMD_SELECT || statement->hasModifyingCTE ||
                         statement->rowMarks != NIL;
  if (may_write) {
    for (size_t i = 0; i < counters.size(); ++i) {
      if (!counters[i].state.locked) continue;
      Save(i);
      counters[i].state.locked = false;  // the row stays locked; the next touch reads it again
    }
  }
  if (!wrote) return;
  PgCall([&] {
    CommandCounterIncrement();
    Snapshot snapshot = query->snapshot;
    if (snapshot != nullptr && snapshot->snapshot_type == SNAPSHOT_MVCC &&
        snapshot->curcid < GetCurrentCommandId(false)) {
      PushCopiedSnapshot(snapshot);
      UpdateActiveSnapshotCommandId();
      Snapshot moved = RegisterSnapshot(GetActiveSnapshot());
      PopActiveSnapshot();
      UnregisterSnapshot(snapshot);
      query->snapshot = moved;
    }
  });
}

}  // namespace

void BeforeStatement(QueryDesc *query, int) noexcept {
  // While no counter was touched in this transaction (nearly always), one test.
  if (!counters.empty() && !busy && !IsInParallelMode())
    bridge::Guarded([&] {
      if (LookUpCatalog() && NamesCounts(query->plannedstmt)) BeforeStatementOnCounts(query);
    });
}

void Apply(const std::string &resource, const Deltas &deltas, bool enforce) {
  if (!LookUpCatalog())
    throw Error(ERRCODE_UNDEFINED_TABLE, "tenant.row_counts does not exist", "",
                "Is pg_tenant installed in this database?");
  // 1. Every counter the statement changes is locked and read, in tenant order (two statements
  //    touching several tenants lock them in the same order).
  std::vector<std::pair<size_t, int64>> changed;
  for (const auto &[tenant, delta] : deltas) {
    if (delta == 0) continue;
    const size_t i = FindOrAdd(resource, tenant);
    if (!counters[i].state.locked) {
      Save(i);
      if (!FindAndLock(counters[i].key, counters[i].state)) {
        if (delta < 0) continue;
        CreateCounter(counters[i].key);
        if (!FindAndLock(counters[i].key, counters[i].state))
          throw Error(ERRCODE_INTERNAL_ERROR, "the row count of resource \"" + resource + "\" could not be created");
      }
    }
    changed.emplace_back(i, delta);
  }
  // 2. The limits, on the counts the statement would reach, the tenant in context first: the
  //    statement that would pass one fails whole (its rows, its locks and, through the
  //    subtransaction callback, what it changed here roll back with it).
  if (enforce) {
    pg_uuid_t current_id;
    if (context::CurrentTenant(&current_id)) {
      UuidBytes current;
      memcpy(current.data(), current_id.data, UUID_LEN);
      std::stable_partition(changed.begin(), changed.end(),
                            [&](const auto &c) { return counters[c.first].key.tenant == current; });
    }
    for (const auto &[i, delta] : changed) {
      if (delta <= 0) continue;
      const int64 reached = counters[i].state.count + delta;
      pg_uuid_t tenant;
      memcpy(tenant.data, counters[i].key.tenant.data(), UUID_LEN);
      const limits::Limit &limit = limits::EffectiveLimit(tenant, resource);
      // A soft limit (0.9.0) lets the statement pass: tenant.usage() reports the overage.
      if (limit.limited && !limit.soft && reached > 0 && static_cast<uint64>(reached) > limit.value)
        throw limits::LimitReached(resource, limit, static_cast<uint64>(reached));
    }
  }
  // 3. In memory: written before commit.
  for (const auto &[i, delta] : changed) {
    Save(i);
    counters[i].state.count += delta;
    counters[i].state.pending += delta;
  }
}

}  // namespace pg_tenant::quotas
