// Provisioning hooks (DESIGN.md capability 12): tenant.create() calls tenant._run_create_hooks()
// once the registry row is in, in its own transaction.
#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "context/context.hpp"

using namespace pg_tenant;
using bridge::PgCall;

namespace {

// The GUC nest level of one hook: the tenant it enters (GUC_ACTION_SAVE) and whatever the hook
// sets, SET LOCAL included, end with it (undone as a rollback would), so the next hook and
// tenant.create()'s caller see none of it.
class HookGucLevel {
 public:
  HookGucLevel() : level_(PgCall([] { return NewGUCNestLevel(); })) {}
  ~HookGucLevel() { AtEOXact_GUC(false, level_); }
  HookGucLevel(const HookGucLevel &) = delete;
  HookGucLevel &operator=(const HookGucLevel &) = delete;

 private:
  int level_;
};

}  // namespace

// tenant._run_create_hooks(tenant uuid): each hook of tenant.create_hooks, lowest priority
// first (then by name), as its owner, with the new tenant as the context. An error in a hook
// aborts tenant.create() and with it everything of the tenant.
PG_TENANT_FUNCTION(pg_tenant_run_create_hooks) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL");
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  std::vector<spi::Row> hooks;
  {
    spi::Session spi;
    hooks = spi.Query(
        "SELECT h.fn::pg_catalog.oid, p.proowner FROM tenant.create_hooks h "
        "JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) h.fn "
        "ORDER BY h.priority, h.fn::pg_catalog.text");
    spi.Finish();
  }
  // The hooks see the tenant's registry row (inserted by this transaction).
  (void)context::EnterableTenant(tenant);
  for (const spi::Row &hook : hooks) {
    const Oid function = spi::ToOid(hook[0]);
    const Oid owner = spi::ToOid(hook[1]);
    spi::AsRole as_owner(owner);
    HookGucLevel level;
    context::Enter(tenant, GUC_ACTION_SAVE);
    PgCall([&] { (void)OidFunctionCall1(function, UUIDPGetDatum(const_cast<pg_uuid_t *>(&tenant))); });
  }
  PG_RETURN_VOID();
}
