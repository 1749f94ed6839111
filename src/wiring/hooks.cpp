// Every hook and callback pg_tenant gives PostgreSQL, installed here and nowhere else, in this
// order. Each PostgreSQL hook is taken once; what runs inside it is a list of steps written where
// the hook is (the executor door: src/executor/door.cpp; the DDL door, an event trigger rather
// than a hook: src/ddl/ddl.cpp), and the hook that was there before pg_tenant's runs where the
// list says.
//
//   1. the catalog's invalidation callbacks (relcache, pg_proc): every cached OID of pg_tenant's
//      relations and functions, and what depends on them (src/catalog/catalog.hpp), first, so
//      that everything after reads fresh OIDs.
//   2. transaction callbacks: the quota ledger (counts written at PRE_COMMIT, undone per
//      subtransaction). Meters register theirs at a tenant's first purge in the backend
//      (src/meters/purge.cpp).
//   3. the executor door: ExecutorStart, ExecutorRun, ExecutorFinish, ExecutorEnd.
//   4. emit_log_hook: the previous hook first, then the log tag (secrets masked, tenant tagged).
//   5. preloaded only: shared memory, requested and started in this order: meters, Redis leases,
//      statistics (each structure under AddinShmemInitLock); then the meter flusher worker.
#include "wiring/wiring.hpp"

#include "catalog/catalog.hpp"
#include "executor/door.hpp"
#include "meters/lease.hpp"
#include "meters/meter.hpp"
#include "quotas/ledger.hpp"
#include "registry/registry.hpp"
#include "stats/stats.hpp"

namespace pg_tenant::wiring {
namespace {

emit_log_hook_type previous_emit_log = nullptr;
shmem_request_hook_type previous_shmem_request = nullptr;
shmem_startup_hook_type previous_shmem_startup = nullptr;

void OnEmitLog(ErrorData *edata) noexcept {
  if (previous_emit_log != nullptr) previous_emit_log(edata);
  stats::TagLogEntry(edata);
}

void OnShmemRequest() noexcept {
  if (previous_shmem_request != nullptr) previous_shmem_request();
  meters::RequestSharedMemory();
  meters::lease::RequestSharedMemory();
  stats::RequestSharedMemory();
}

void OnShmemStartup() noexcept {
  if (previous_shmem_startup != nullptr) previous_shmem_startup();
  meters::StartSharedMemory();
  meters::lease::StartSharedMemory();
  stats::StartSharedMemory();
}

}  // namespace

void InstallHooks(bool preloading) {
  CacheRegisterRelcacheCallback(catalog::OnRelcacheInvalidation, (Datum)0);
  CacheRegisterSyscacheCallback(PROCOID, catalog::OnProcInvalidation, (Datum)0);

  RegisterXactCallback(quotas::OnXactEvent, nullptr);
  RegisterSubXactCallback(quotas::OnSubXactEvent, nullptr);

  executor::InstallDoor();

  previous_emit_log = emit_log_hook;
  emit_log_hook = OnEmitLog;

  if (!preloading) return;
  previous_shmem_request = shmem_request_hook;
  shmem_request_hook = OnShmemRequest;
  previous_shmem_startup = shmem_startup_hook;
  shmem_startup_hook = OnShmemStartup;
  meters::RegisterWorker();
}

}  // namespace pg_tenant::wiring
