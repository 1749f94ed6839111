#include "policy/citus_policy.hpp"

#include "bridge/errcodes.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "citus/citus.hpp"
#include "policy/generator.hpp"
#include "policy/protect.hpp"

#include <string>

namespace pg_tenant::policy {

using bridge::PgCall;

// Runs as the caller of the DDL; tenant._restore_restrictive_guard as the extension owner (a
// plpgsql function of pg_tenant's, SET search_path; it runs no user code: the shard's policy
// expressions are copied as text, not evaluated).
void AfterCreatePolicy(ddl::Event &event) {
  if (event.tag() != CMDTAG_CREATE_POLICY) return;
  const auto *statement = reinterpret_cast<const CreatePolicyStmt *>(event.parsetree());
  const Oid relid = PgCall([&] { return RangeVarGetRelid(statement->table, NoLock, true); });
  if (!OidIsValid(relid) || !citus::Installed()) return;
  // pg_tenant creates tenant_isolation_guard AS RESTRICTIVE only: arriving permissive, it is
  // Citus's copy (on a shard as it is created, moved or split, on a worker or a coordinator).
  if (statement->permissive && kGuardPolicy == statement->policy_name) {
    spi::Session &spi = event.Spi();
    spi::AsRole as_owner(event.Owner());
    spi.Execute("SELECT tenant._restore_restrictive_guard($1::pg_catalog.regclass)", {{OIDOID, ObjectIdGetDatum(relid)}});
    return;
  }
  if (RunningProtectDdl() || !catalog::IsScoped(relid) || !citus::IsCitusTable(relid)) return;
  throw Error(errcodes::kProtectionWeakened,
              "cannot add policy \"" + std::string(statement->policy_name) + "\" to protected Citus table " +
                  bridge::RelationName(relid),
              "Citus copies policies to the shards without AS RESTRICTIVE: there, another policy would widen "
              "what a tenant sees.",
              "Keep tenant isolation to pg_tenant's policies; restrict further in views or in the application.");
}

}  // namespace pg_tenant::policy
