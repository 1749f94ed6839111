// Module entry: PG_MODULE_MAGIC and _PG_init, which wires each capability's GUCs and callbacks.
#include "bridge/pg.hpp"
#include "catalog/catalog.hpp"
#include "context/context.hpp"
#include "context/enforce.hpp"
#include "context/signed.hpp"
#include "guard/guard.hpp"
#include "policy/protection.hpp"
#include "registry/registry.hpp"
#include "meters/meter.hpp"
#include "quotas/ledger.hpp"
#include "stats/stats.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

void _PG_init(void) {
  // pg_upgrade loads libraries only to check them; define nothing then.
  if (IsBinaryUpgrade) return;
  pg_tenant::catalog::Init();  // first: the other capabilities' caches read its OIDs
  pg_tenant::registry::Init();
  pg_tenant::context::Init();
  pg_tenant::context::InitEnforcement();
  pg_tenant::context::InitSignedContext();
  pg_tenant::policy::Init();
  pg_tenant::guard::Init();
  pg_tenant::meters::Init();
  // Row quotas: transaction callbacks, and an ExecutorStart hook that writes a transaction's
  // pending counts before a statement of it reads tenant.row_counts.
  pg_tenant::quotas::InitLedger();
  // After enforcement: its ExecutorStart hook then runs inside the statistics' one, which
  // counts the statements it refuses.
  pg_tenant::stats::Init();
  MarkGUCPrefixReserved("pg_tenant");
}
