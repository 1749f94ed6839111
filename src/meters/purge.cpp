// Forgetting a purged tenant's meters (tenant._forget_meters, for tenant.purge()): its Redis keys
// and this server's leases of them go at once (redis_backend.cpp); its shared-memory counters go
// at commit (before it, a rollback would have lost their counts), and a purge rolled back to a
// savepoint forgets nothing. The transaction callbacks are registered at a tenant's first purge
// in the backend (src/wiring/hooks.cpp says so), so a backend that never purges pays nothing.
//
// Locking: the purged tenants are the backend's own list. At commit, ForgetPurgedTenants takes
// the meters' LWLock (store.hpp) EXCLUSIVE once to remove the tenants' entries of this database
// and give their shares back. Plain C in the callbacks: noexcept, no allocation.
#include <vector>

#include "bridge/bridge.hpp"
#include "meters/redis_backend.hpp"
#include "meters/store.hpp"

namespace pg_tenant::meters {
namespace {

using namespace store;

// Tenants of this database purged by the current transaction.
struct PurgedTenant {
  pg_uuid_t tenant;
  int nest_level;  // of the (sub)transaction that purged it
};
std::vector<PurgedTenant> purged_tenants;
bool purge_callback_registered = false;

// A purge rolled back to a savepoint forgets nothing.
void KeepPurgesOfLiveSubtransactions(SubXactEvent event, SubTransactionId, SubTransactionId, void *) noexcept {
  const int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    while (!purged_tenants.empty() && purged_tenants.back().nest_level >= level) purged_tenants.pop_back();
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (PurgedTenant &purged : purged_tenants)
      if (purged.nest_level >= level) purged.nest_level = level - 1;
  }
}

// Plain C at commit: nothing can fail here but lock bookkeeping.
void ForgetPurgedTenants(XactEvent event, void *) noexcept {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
      event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
    return;
  if (event == XACT_EVENT_COMMIT && meter_table != nullptr && !purged_tenants.empty()) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, meter_table);
    MeterEntry *entry;
    while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
      if (entry->key.database != MyDatabaseId) continue;
      for (const PurgedTenant &purged : purged_tenants) {
        if (memcmp(&entry->key.tenant, &purged.tenant, sizeof(purged.tenant)) != 0) continue;
        const MeterKey key = entry->key;
        RemoveEntry(key);
        break;
      }
    }
    LWLockRelease(shared->lock);
  }
  purged_tenants.clear();
}

}  // namespace
}  // namespace pg_tenant::meters

using namespace pg_tenant;
using namespace pg_tenant::meters;

// tenant._forget_meters(tenant uuid): for tenant.purge(). Redis keys are deleted now (a rollback
// of the purge loses them: they are counters, not data); shared memory entries at commit.
PG_TENANT_FUNCTION(pg_tenant_forget_meters) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  if (store::meter_table == nullptr) PG_RETURN_VOID();  // not preloaded: no meter was ever counted
  if (!purge_callback_registered) {
    bridge::PgCall([] {
      RegisterXactCallback(ForgetPurgedTenants, nullptr);
      RegisterSubXactCallback(KeepPurgesOfLiveSubtransactions, nullptr);
    });
    purge_callback_registered = true;
  }
  purged_tenants.push_back({tenant, GetCurrentTransactionNestLevel()});
  redis_backend::ForgetTenant(tenant);
  PG_RETURN_VOID();
}
