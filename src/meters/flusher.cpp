// The meter flusher: a background worker (one per server) that writes the counters of
// pg_tenant.database to tenant.meter_counts every pg_tenant.flush_interval and at shutdown, loads
// the open windows' counts at start, writes the queued usage alerts in the flush's transaction,
// and ticks the Redis leases (meters/lease.cpp). PostgreSQL code only: no C++ object lives across
// a call that can ereport; each step runs under RunGuarded, which logs an error and goes on.
// Locking: the store's (meters/store.hpp); the worker copies counters under the shared lock and
// frees ended windows under the exclusive one, only after the flush that saved them committed.
#include "meters/lease.hpp"
#include "meters/meter.hpp"
#include "meters/store.hpp"

namespace pg_tenant::meters {
namespace {

using namespace store;
using limits::ParsePeriod;
using limits::Period;
using limits::PeriodName;
using limits::WindowEnd;

bool CountsTableExists() {
  int rc = SPI_execute("SELECT pg_catalog.to_regclass('tenant.meter_counts') IS NOT NULL", true, 1);
  bool isnull;
  return rc == SPI_OK_SELECT && SPI_processed == 1 &&
         DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

bool AlertFunctionExists() {
  int rc = SPI_execute(
      "SELECT pg_catalog.to_regprocedure('tenant._usage_alert(uuid, text, timestamptz, text, integer, bigint, bigint, "
      "text)') IS NOT NULL",
      true, 1);
  bool isnull;
  return rc == SPI_OK_SELECT && SPI_processed == 1 &&
         DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

SPIPlanPtr alert_plan = nullptr;

// Writes the queued alerts in the flush's transaction; returns how many it took from the head of
// the queue (removed once that transaction has committed: a failed flush writes them next time).
int WriteQueuedAlerts() {
  SpinLockAcquire(&alert_queue->mutex);
  const int queued = alert_queue->count;
  SpinLockRelease(&alert_queue->mutex);
  if (queued == 0 || !AlertFunctionExists()) return 0;
  // Records only join at the tail: the first `queued` stay as they are until this worker removes them.
  auto *alerts = static_cast<AlertRecord *>(palloc(sizeof(AlertRecord) * queued));
  SpinLockAcquire(&alert_queue->mutex);
  memcpy(alerts, alert_queue->records, sizeof(AlertRecord) * queued);
  SpinLockRelease(&alert_queue->mutex);
  if (alert_plan == nullptr) {
    SPIPlanPtr plan = SPI_prepare(kAlertSql, kAlertParams, const_cast<Oid *>(kAlertTypes));
    if (plan == nullptr || SPI_keepplan(plan) != 0) elog(ERROR, "could not prepare the alert write (%d)", SPI_result);
    alert_plan = plan;
  }
  for (int i = 0; i < queued; ++i) {
    const AlertRecord &a = alerts[i];
    Datum values[kAlertParams] = {UUIDPGetDatum(&a.tenant), CStringGetTextDatum(a.resource),
                                  TimestampTzGetDatum(a.window_start),
                                  CStringGetTextDatum(PeriodName(static_cast<Period>(a.period))),
                                  Int32GetDatum(a.level), Int64GetDatum(static_cast<int64>(a.used)),
                                  Int64GetDatum(static_cast<int64>(a.limit)), CStringGetTextDatum(a.soft ? "soft" : "hard")};
    if (SPI_execute_plan(alert_plan, values, nullptr, false, 0) < 0) elog(ERROR, "the alert write failed");
  }
  return queued;
}

void RemoveWrittenAlerts(int written) {
  if (written == 0) return;
  SpinLockAcquire(&alert_queue->mutex);
  memmove(alert_queue->records, alert_queue->records + written,
          sizeof(AlertRecord) * static_cast<size_t>(alert_queue->count - written));
  alert_queue->count -= written;
  SpinLockRelease(&alert_queue->mutex);
}

// The flush upsert, prepared once. It keeps the greater count: a promoted standby's counts, or a
// backend's counts after a crash, never replace higher ones already saved.
SPIPlanPtr flush_plan = nullptr;

void Flush() {
  const TimestampTz cutoff = GetCurrentTimestamp();
  if (RecoveryInProgress()) {  // a standby counts in memory only; its tables are read-only
    FreeEndedWindows(cutoff);
    return;
  }
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "pg_tenant: flushing meters");
  if (CountsTableExists()) {
    Oid types[5] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID};
    if (flush_plan == nullptr) {
      SPIPlanPtr plan = SPI_prepare(
          "INSERT INTO tenant.meter_counts AS c (tenant_id, resource, window_start, period, used) "
          "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, resource, window_start) DO UPDATE "
          "SET used = EXCLUDED.used, flushed_at = pg_catalog.now() WHERE c.used OPERATOR(pg_catalog.<) EXCLUDED.used",
          5, types);
      if (plan == nullptr || SPI_keepplan(plan) != 0) elog(ERROR, "could not prepare the meter flush (%d)", SPI_result);
      flush_plan = plan;
    }
    ListCell *cell;
    foreach (cell, CopyCounters()) {
      auto *s = static_cast<CounterCopy *>(lfirst(cell));
      Datum values[5] = {UUIDPGetDatum(&s->key.tenant), CStringGetTextDatum(s->key.resource),
                         TimestampTzGetDatum(s->key.window_start),
                         CStringGetTextDatum(PeriodName(static_cast<Period>(s->period))),
                         Int64GetDatum(static_cast<int64>(s->used))};
      if (SPI_execute_plan(flush_plan, values, nullptr, false, 0) < 0) elog(ERROR, "the meter flush failed");
    }
  }
  const int alerts_written = WriteQueuedAlerts();
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  RemoveWrittenAlerts(alerts_written);
  pg_atomic_write_u64(&shared->flushed_until, static_cast<uint64>(cutoff));
  pgstat_report_activity(STATE_IDLE, nullptr);
  FreeEndedWindows(cutoff);  // only now: had the flush failed, they would be saved next time
}

// At start, counters of windows that are still open come back from the table (once per life
// of shared memory: a restarted worker must not add them twice).
void Load() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  if (!shared->loaded && CountsTableExists() &&
      SPI_execute("SELECT tenant_id, resource, window_start, period, used FROM tenant.meter_counts", true, 0) ==
          SPI_OK_SELECT) {
    const TimestampTz now = GetCurrentTimestamp();
    for (uint64 i = 0; i < SPI_processed; ++i) {
      HeapTuple row = SPI_tuptable->vals[i];
      TupleDesc desc = SPI_tuptable->tupdesc;
      bool isnull;
      MeterKey key;
      memset(&key, 0, sizeof(key));
      key.database = MyDatabaseId;
      key.tenant = *DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull));
      strlcpy(key.resource, TextDatumGetCString(SPI_getbinval(row, desc, 2, &isnull)), sizeof(key.resource));
      key.window_start = DatumGetTimestampTz(SPI_getbinval(row, desc, 3, &isnull));
      Period period = ParsePeriod(TextDatumGetCString(SPI_getbinval(row, desc, 4, &isnull))).value_or(Period::kNone);
      const uint64 used = static_cast<uint64>(DatumGetInt64(SPI_getbinval(row, desc, 5, &isnull)));
      if (WindowEnd(period, key.window_start) <= now) continue;
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      Outcome refusal;
      MeterEntry *entry = AddEntry(key, period, &refusal);
      if (entry != nullptr) pg_atomic_fetch_add_u64(&entry->used, used);  // calls made before the load add up
      LWLockRelease(shared->lock);
    }
    shared->loaded = true;
  }
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
}

// Runs a step of the worker with interrupts held, so a shutdown request waits for it, and with
// its own error recovery: the error is logged, its transaction aborted, and the worker goes on
// (at the next interval) instead of exiting and being restarted.
void RunGuarded(void (*step)()) {
  MemoryContext context = CurrentMemoryContext;
  volatile bool failed = false;
  HOLD_INTERRUPTS();
  PG_TRY();
  { step(); }
  PG_CATCH();
  {
    failed = true;
    MemoryContextSwitchTo(context);
    EmitErrorReport();
    AbortCurrentTransaction();
    FlushErrorState();
    pgstat_report_activity(STATE_IDLE, nullptr);
  }
  PG_END_TRY();
  if (!failed) RESUME_INTERRUPTS();  // an error's longjmp has reset the holdoff count already
}

}  // namespace

// Registered while preloading (src/wiring/hooks.cpp): one worker per server, restarted 5 s after it
// fails.
void RegisterWorker() {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof(worker));
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_ConsistentState;  // on a standby too (it loads, never flushes)
  worker.bgw_restart_time = 5;
  strlcpy(worker.bgw_library_name, "pg_tenant", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "pg_tenant_meter_worker_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "pg_tenant meter flusher", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "pg_tenant meter flusher", BGW_MAXLEN);
  RegisterBackgroundWorker(&worker);
}

}  // namespace pg_tenant::meters

using namespace pg_tenant;
using namespace pg_tenant::meters;

extern "C" PGDLLEXPORT void pg_tenant_meter_worker_main(Datum);

// The worker's life: PostgreSQL code only (no C++ object lives here), in the pg_cron style, with
// PostgreSQL's own SIGTERM handler (die): a shutdown request ends the wait, the worker flushes
// once more (the flush holds interrupts) and exits.
void pg_tenant_meter_worker_main(Datum) {
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(meter_database, nullptr, 0);
  RunGuarded(Load);
  TimestampTz last_flush = 0;  // when the last flush started
  for (;;) {
    // Wakes for the flush and, more often, to report and return Redis leases (meters/lease.cpp).
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, lease::TickMs(flush_interval_ms),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    if (ProcDiePending) break;
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    RunGuarded(lease::WorkerTick);
    // Due one interval after the last flush started, the interval read now: a reload that
    // shortens pg_tenant.flush_interval takes effect at once.
    const TimestampTz now = GetCurrentTimestamp();
    if (now - last_flush >= static_cast<TimestampTz>(flush_interval_ms) * 1000) {
      last_flush = now;
      RunGuarded(Flush);
    }
  }
  RunGuarded(lease::WorkerShutdown);  // clean shutdown: used units reach Redis, unused ones go back
  RunGuarded(Flush);  // clean shutdown: nothing counted is lost
  proc_exit(0);
}
