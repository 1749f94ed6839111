// Lifecycle work that runs other people's code (DESIGN.md capability 12 and "Who runs what"):
//  - provisioning hooks: tenant.create() calls tenant._run_create_hooks() once the registry row
//    is in, in its own transaction;
//  - tenant._query_as_owner(): the statements purge, export and import run on each scoped table.
// Both run that code as its owner in a security-restricted operation (spi::RestrictedAs), never
// with the rights of the extension owner or of the caller.
#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "context/context.hpp"

using namespace pg_tenant;
using bridge::PgCall;

// tenant._run_create_hooks(tenant uuid): each hook of tenant.create_hooks, lowest priority
// first (then by name), as its owner in a security-restricted operation, with the new tenant as
// the context. An error in a hook aborts tenant.create() and with it everything of the tenant. A
// hook's result is not used: a function returning void (NULL, as LANGUAGE sql ones do) is fine.
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
    spi::RestrictedAs as_owner(owner);
    context::Enter(tenant, GUC_ACTION_SAVE);
    PgCall([&] {
      FmgrInfo hook_function;
      fmgr_info(function, &hook_function);
      LOCAL_FCINFO(call, 1);
      InitFunctionCallInfoData(*call, &hook_function, 1, InvalidOid, nullptr, nullptr);
      call->args[0].value = UUIDPGetDatum(const_cast<pg_uuid_t *>(&tenant));
      call->args[0].isnull = false;
      (void)FunctionCallInvoke(call);
    });
  }
  PG_RETURN_VOID();
}

// tenant._query_as_owner(rel regclass, tenant uuid, query text, rows jsonb DEFAULT NULL) returns
// SETOF text: runs query ($1 the tenant, $2 rows) as the owner of the scoped table rel, in a
// security-restricted operation, acting for the tenant (the owner's policies show that tenant's
// rows only, and it need not be active: purge erases suspended tenants), and returns the first
// column of its rows as text. For purge, export and import (SECURITY DEFINER, extension owner),
// which build the query from catalog names; not granted to anyone. The rows are read through a
// cursor, a thousand at a time.
PG_TENANT_FUNCTION(pg_tenant_query_as_owner) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "table, tenant and query must not be NULL");
  const Oid relid = PG_GETARG_OID(0);
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(1);
  const Oid owner = spi::RelationOwner(relid);
  if (!PgCall([relid] { return catalog::IsScoped(relid); }))
    throw Error(ERRCODE_WRONG_OBJECT_TYPE, bridge::RelationName(relid) + " is not a tenant-scoped table");
  text *query_text = PG_GETARG_TEXT_PP(2);
  const std::string query(VARDATA_ANY(query_text), VARSIZE_ANY_EXHDR(query_text));
  const bool has_rows = !PG_ARGISNULL(3);
  const Datum rows = has_rows ? PG_GETARG_DATUM(3) : Datum(0);
  PgCall([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
  auto *result = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  spi::Session spi;
  {
    spi::RestrictedAs as_owner(owner);
    context::ActingForTenant acting(tenant);
    PgCall([&] {
      Oid types[2] = {UUIDOID, JSONBOID};
      Datum values[2] = {UUIDPGetDatum(const_cast<pg_uuid_t *>(&tenant)), rows};
      const char nulls[2] = {' ', has_rows ? ' ' : 'n'};
      Portal portal = SPI_cursor_open_with_args(nullptr, query.c_str(), 2, types, values, nulls, false, 0);
      for (;;) {
        SPI_cursor_fetch(portal, true, 1000);
        if (SPI_processed == 0) break;
        for (uint64 i = 0; i < SPI_processed; ++i) {
          char *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
          Datum out = value != nullptr ? CStringGetTextDatum(value) : Datum(0);
          bool null = value == nullptr;
          tuplestore_putvalues(result->setResult, result->setDesc, &out, &null);
        }
        SPI_freetuptable(SPI_tuptable);
      }
      SPI_cursor_close(portal);
    });
  }
  spi.Finish();
  return Datum(0);
}
