// The executor door. Every statement the executor runs (top-level ones and those of functions,
// triggers and SPI) passes through pg_tenant's one hook per executor entry; the steps of each are
// written here, in the order they run:
//
// ExecutorStart:
//   1. statistics (stats::MeasureStart): around everything after it, so that a statement refused
//      by a later step (or by PostgreSQL) counts as a call and an error of its tenant.
//   2. strict context (context::CheckStatement): TN008 under missing_context = error, TN010 for a
//      read-only tenant's writes. Before anything acts for the statement.
//   3. quota ledger (quotas::BeforeStatement): a statement that reads tenant.row_counts sees the
//      transaction's pending counts written first. After 2, so a refused statement writes nothing.
//   4. the hook installed before pg_tenant's, else standard_ExecutorStart.
// ExecutorRun, ExecutorFinish:
//   1. statistics (stats::MeasureRun, MeasureFinish): time, rows, buffers, WAL of a top-level
//      statement, around 2.
//   2. the previous hook, else the standard one.
// ExecutorEnd:
//   1. statistics (stats::CountEnded): a top-level statement's measurements stored.
//   2. the previous hook, else standard_ExecutorEnd.
//
// A step is noexcept: it turns its own C++ exceptions into PostgreSQL errors (bridge::Guarded)
// after its C++ frames are gone, and holds no object with a destructor across the PostgreSQL
// calls of the later steps. With client_min_messages or log_min_messages at DEBUG2 each step
// reached logs "pg_tenant executor <entry> step i of n: <name>" (test/scripts/wiring.sh reads
// the order); otherwise tracing costs two reads per entry.
#include "executor/door.hpp"

#include "bridge/pg.hpp"
#include "context/enforce.hpp"
#include "quotas/ledger.hpp"
#include "stats/stats.hpp"

namespace pg_tenant::executor {
namespace {

ExecutorStart_hook_type previous_start = nullptr;
ExecutorRun_hook_type previous_run = nullptr;
ExecutorFinish_hook_type previous_finish = nullptr;
ExecutorEnd_hook_type previous_end = nullptr;

struct StartStep {
  const char *name;
  void (*run)(QueryDesc *query, int eflags) noexcept;
};

// Steps 2 and 3 of ExecutorStart (step 1 wraps them, step 4 ends them).
constexpr StartStep kStartChecks[] = {
    {"strict context", context::CheckStatement},
    {"quota ledger", quotas::BeforeStatement},
};
constexpr int kStartSteps = 2 + static_cast<int>(sizeof(kStartChecks) / sizeof(kStartChecks[0]));

void Trace(const char *entry, int step, int steps, const char *name) noexcept {
  elog(DEBUG2, "pg_tenant executor %s step %d of %d: %s", entry, step, steps, name);
}

// Two reads per entry (elog itself decides where a line goes): cheaper than a function call on
// every statement's path.
inline bool Tracing() noexcept { return log_min_messages <= DEBUG2 || client_min_messages <= DEBUG2; }

void StartInner(QueryDesc *query, int eflags) noexcept {
  const bool tracing = Tracing();
  int step = 2;
  for (const StartStep &check : kStartChecks) {
    if (tracing) Trace("ExecutorStart", step, kStartSteps, check.name);
    check.run(query, eflags);
    ++step;
  }
  if (tracing) Trace("ExecutorStart", step, kStartSteps, "PostgreSQL");
  if (previous_start != nullptr)
    previous_start(query, eflags);
  else
    standard_ExecutorStart(query, eflags);
}

void OnExecutorStart(QueryDesc *query, int eflags) noexcept {
  if (Tracing()) Trace("ExecutorStart", 1, kStartSteps, "statistics");
  stats::MeasureStart(query, eflags, StartInner);
}

void RunInner(QueryDesc *query, ScanDirection direction, uint64 count, bool execute_once) noexcept {
  if (previous_run != nullptr)
    previous_run(query, direction, count, execute_once);
  else
    standard_ExecutorRun(query, direction, count, execute_once);
}

void OnExecutorRun(QueryDesc *query, ScanDirection direction, uint64 count, bool execute_once) noexcept {
  if (Tracing()) Trace("ExecutorRun", 1, 2, "statistics");
  stats::MeasureRun(query, direction, count, execute_once, RunInner);
}

void FinishInner(QueryDesc *query) noexcept {
  if (previous_finish != nullptr)
    previous_finish(query);
  else
    standard_ExecutorFinish(query);
}

void OnExecutorFinish(QueryDesc *query) noexcept {
  if (Tracing()) Trace("ExecutorFinish", 1, 2, "statistics");
  stats::MeasureFinish(query, FinishInner);
}

void OnExecutorEnd(QueryDesc *query) noexcept {
  if (Tracing()) Trace("ExecutorEnd", 1, 2, "statistics");
  stats::CountEnded(query);
  if (previous_end != nullptr)
    previous_end(query);
  else
    standard_ExecutorEnd(query);
}

}  // namespace

void InstallDoor() {
  previous_start = ExecutorStart_hook;
  ExecutorStart_hook = OnExecutorStart;
  previous_run = ExecutorRun_hook;
  ExecutorRun_hook = OnExecutorRun;
  previous_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = OnExecutorFinish;
  previous_end = ExecutorEnd_hook;
  ExecutorEnd_hook = OnExecutorEnd;
}

}  // namespace pg_tenant::executor
