// The tenant key: what a per-table FOREIGN KEY (tenant_id) REFERENCES tenant.tenants ON DELETE
// CASCADE guaranteed, without its two triggers per table on tenant.tenants (adding each one
// rebuilt the registry's relcache entry with all the others: protect_all cost grew with the
// square of the number of tables, ARCHITECTURE.md "Tenant key").
//
//  - tenant._tenant_key_check(column), AFTER INSERT OR UPDATE OF column FOR EACH ROW on each
//    scoped table: the row's tenant must be registered; its registry row is locked FOR KEY SHARE
//    until the transaction ends, as the foreign key's check did, so a concurrent delete of the
//    tenant waits for it and then erases the row (or fails to serialize).
//  - tenant._tenant_key_erase(), AFTER DELETE OR UPDATE OF id FOR EACH ROW on tenant.tenants:
//    deletes the tenant's rows from every table that holds them (tenant._top_scoped_tables, as
//    purge: top-level scoped tables; children through their parent),
//    or refuses an id change while rows use it; BEFORE TRUNCATE: refused while tables are scoped.
//    (Not with a distributed registry on Citus, where scoped tables have no key.)
// Both run their SQL the way PostgreSQL's own RI triggers do: as the owner of the table queried,
// with FORCE ROW LEVEL SECURITY not applied, and, in REPEATABLE READ and SERIALIZABLE, the erase
// with the latest snapshot cross-checked against the transaction's, so a row committed after the
// transaction's snapshot is a serialization failure, never an orphan.
#include "bridge/bridge.hpp"
#include "bridge/cache.hpp"
#include "bridge/spi.hpp"

#include "catalog/catalog.hpp"
#include "citus/citus.hpp"

namespace pg_tenant::policy {
namespace {

using bridge::PgCall;

// SELECT 1 FROM ONLY tenant.tenants ... FOR KEY SHARE, prepared once per backend.
SPIPlanPtr check_plan = nullptr;

// The erase's statements per scoped table, prepared once per backend as RI triggers keep theirs
// (planning 5,000 DELETEs costs a second). Kept with their text: a table renamed since gets a new
// plan (a kept plan is parsed again from its text when the table changes).
struct ErasePlanKey {  // hashed as bytes: always fully zeroed before filling (padding after update)
  Oid relid;
  bool update;
};
struct ErasePlan {
  ErasePlanKey key;
  char *sql;  // in erase_context
  SPIPlanPtr plan;
};
MemoryContext erase_context = nullptr;
HTAB *erase_plans = nullptr;

SPIPlanPtr ErasePlanFor(Oid relid, bool update, const char *sql) {
  if (erase_plans == nullptr) {
    cache::Reset(&erase_context, "pg_tenant tenant key plans");
    erase_plans = cache::Table(erase_context, "pg_tenant erase plans", sizeof(ErasePlanKey), sizeof(ErasePlan), HASH_BLOBS);
  }
  ErasePlanKey key;
  memset(&key, 0, sizeof(key));
  key.relid = relid;
  key.update = update;
  bool found;
  auto *entry = static_cast<ErasePlan *>(hash_search(erase_plans, &key, HASH_ENTER, &found));
  // An entry whose preparation failed (an error left it empty) is prepared again.
  if (found && entry->sql != nullptr && strcmp(entry->sql, sql) == 0) return entry->plan;
  if (found && entry->plan != nullptr) SPI_freeplan(entry->plan);
  if (found && entry->sql != nullptr) pfree(entry->sql);
  entry->sql = nullptr;
  entry->plan = nullptr;
  Oid type = UUIDOID;
  SPIPlanPtr plan = SPI_prepare(sql, 1, &type);
  if (plan == nullptr || SPI_keepplan(plan) != 0) {
    hash_search(erase_plans, &key, HASH_REMOVE, nullptr);
    elog(ERROR, "could not prepare the tenant key erase (%d): %s", SPI_result, sql);
  }
  entry->sql = MemoryContextStrdup(erase_context, sql);
  entry->plan = plan;
  return plan;
}

// Runs a prepared plan as owner (FORCE ROW LEVEL SECURITY off, as RI triggers run), with RI's
// snapshots: in transaction-snapshot modes the latest snapshot, cross-checked against the
// transaction's when new rows must not be missed.
int RunAs(Oid owner, SPIPlanPtr plan, Datum key, bool detect_new_rows, long limit) {
  Snapshot test = InvalidSnapshot, crosscheck = InvalidSnapshot;
  if (IsolationUsesXactSnapshot() && detect_new_rows) {
    CommandCounterIncrement();
    test = GetLatestSnapshot();
    crosscheck = GetTransactionSnapshot();
  }
  Oid saved_user;
  int saved_context;
  GetUserIdAndSecContext(&saved_user, &saved_context);
  SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
  // fire_triggers = false: the triggers of what this deletes join the outer statement's queue,
  // so foreign keys between scoped tables are checked once all of the tenant's rows are gone.
  int rc = SPI_execute_snapshot(plan, &key, " ", test, crosscheck, false, false, limit);
  SetUserIdAndSecContext(saved_user, saved_context);  // an error's abort restores it too
  if (rc < 0) elog(ERROR, "SPI_execute_snapshot failed (%d)", rc);
  return rc;
}

TriggerData *Trigger(FunctionCallInfo fcinfo, const char *name) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("%s must be called as a trigger", name)));
  return reinterpret_cast<TriggerData *>(fcinfo->context);
}

const char *UuidText(Datum value) { return DatumGetCString(DirectFunctionCall1(uuid_out, value)); }

void Check(FunctionCallInfo fcinfo) {
  TriggerData *td = Trigger(fcinfo, "tenant._tenant_key_check()");
  const bool update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !(update || TRIGGER_FIRED_BY_INSERT(td->tg_event)) || td->tg_trigger->tgnargs != 1)
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("tenant._tenant_key_check() runs AFTER INSERT OR UPDATE FOR EACH ROW with the tenant column as argument")));
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  const char *column = td->tg_trigger->tgargs[0];
  int attnum = SPI_fnumber(desc, column);
  if (attnum <= 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN), errmsg("tenant column \"%s\" of \"%s\" does not exist", column,
                                                              RelationGetRelationName(rel))));
  // Anyone may name this function in a trigger of a table it owns (PUBLIC has EXECUTE: the owner
  // of a protected partitioned table clones the key to each new partition), so its input is
  // hostile (0.10.0): the column is read as a uuid only when it is one (a
  // bigint's Datum is no pointer, a text is shorter than 16 bytes), and the registry row is locked
  // only for a tenant-scoped table (or a Citus shard of one), so no stranger's trigger can hold a
  // tenant's registry row.
  if (TupleDescAttr(desc, attnum - 1)->atttypid != UUIDOID)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("tenant column \"%s\" of \"%s\" is not of type uuid", column, RelationGetRelationName(rel))));
  const Oid relid = RelationGetRelid(rel);
  if (!catalog::IsScoped(relid) && !(citus::Installed() && citus::IsKnownShard(relid)))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("tenant._tenant_key_check() runs only on tenant-scoped tables; \"%s\" is not one",
                           RelationGetRelationName(rel)),
                    errhint("tenant.protect() puts the tenant key on a table.")));
  bool isnull;
  Datum key = heap_getattr(update ? td->tg_newtuple : td->tg_trigtuple, attnum, desc, &isnull);
  if (isnull) return;  // NOT NULL refuses it
  if (update) {
    bool old_null;
    Datum old_key = heap_getattr(td->tg_trigtuple, attnum, desc, &old_null);
    if (!old_null && DatumGetBool(DirectFunctionCall2(uuid_eq, key, old_key))) return;  // same tenant
  }
  // The registry's owner, cached by the catalog (an ALTER TABLE ... OWNER is seen at once).
  const Oid registry_owner = catalog::RegistryOwner();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  if (check_plan == nullptr) {
    Oid type = UUIDOID;
    SPIPlanPtr plan = SPI_prepare(
        "SELECT 1 FROM ONLY tenant.tenants x WHERE x.id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", 1, &type);
    if (plan == nullptr || SPI_keepplan(plan) != 0) elog(ERROR, "could not prepare the tenant key check (%d)", SPI_result);
    check_plan = plan;
  }
  RunAs(registry_owner, check_plan, key, false, 1);
  const bool found = SPI_processed > 0;
  SPI_finish();
  if (!found)
    ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
                    errmsg("tenant %s is not registered", UuidText(key)),
                    errdetail("A row of \"%s\" names it in %s; tenant.tenants has no such id.",
                              RelationGetRelationName(rel), quote_identifier(column)),
                    errhint("Create the tenant first (tenant.create)."), errtable(rel)));
}

void Erase(FunctionCallInfo fcinfo) {
  TriggerData *td = Trigger(fcinfo, "tenant._tenant_key_erase()");
  // A shard of the registry: the coordinator erases. A distributed registry: scoped tables have
  // no tenant key there (src/policy/generator.hpp), and nothing is erased, as before 0.9.0.
  if (citus::InternalBackend() || (citus::Installed() && citus::RegistryDistributed())) return;
  // Only the registry's own trigger (0.10.0): attached to another table, its "id" would be read
  // as a uuid whatever its type (a superuser's int column crashed the server; the fuzzer found it).
  (void)catalog::Schema(false);
  if (RelationGetRelid(td->tg_relation) != catalog::RelationId(catalog::Rel::kTenants))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("tenant._tenant_key_erase() runs only on tenant.tenants; \"%s\" is not it",
                           RelationGetRelationName(td->tg_relation))));
  if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    if (SPI_execute("SELECT 1 FROM tenant.scoped_tables LIMIT 1", true, 1) != SPI_OK_SELECT) elog(ERROR, "SPI_execute failed");
    const bool scoped = SPI_processed > 0;
    SPI_finish();
    if (scoped)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("cannot truncate tenant.tenants while tables are tenant-scoped"),
                      errdetail("Their rows would be left without a tenant."),
                      errhint("Delete the tenants (DELETE FROM tenant.tenants) or purge them (tenant.purge).")));
    return;
  }
  const bool update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("tenant._tenant_key_erase() runs AFTER DELETE OR UPDATE FOR EACH ROW, or BEFORE TRUNCATE")));
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  const int id_attnum = SPI_fnumber(desc, "id");
  bool isnull;
  Datum key = heap_getattr(td->tg_trigtuple, id_attnum, desc, &isnull);
  if (isnull) return;
  if (update) {
    bool new_null;
    Datum new_key = heap_getattr(td->tg_newtuple, id_attnum, desc, &new_null);
    if (!new_null && DatumGetBool(DirectFunctionCall2(uuid_eq, key, new_key))) return;
  }
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  // The tables that hold a tenant's rows, as purge deletes them (tenant._top_scoped_tables).
  if (SPI_execute("SELECT s.rel::pg_catalog.oid, s.tenant_column::pg_catalog.text FROM tenant._top_scoped_tables() s "
                  "ORDER BY s.rel::pg_catalog.oid",
                  true, 0) != SPI_OK_SELECT)
    elog(ERROR, "could not read tenant.scoped_tables");
  const uint64 count = SPI_processed;
  Oid *relids = static_cast<Oid *>(palloc(sizeof(Oid) * (count + 1)));
  char **columns = static_cast<char **>(palloc(sizeof(char *) * (count + 1)));
  for (uint64 i = 0; i < count; ++i) {
    bool null;
    relids[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &null));
    columns[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
  }
  for (uint64 i = 0; i < count; ++i) {
    char *relname = get_rel_name(relids[i]);
    if (relname == nullptr) continue;  // dropped in this transaction
    const char *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relids[i])), relname);
    const char *sql = update ? psprintf("SELECT 1 FROM %s x WHERE x.%s OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", table,
                                        quote_identifier(columns[i]))
                             : psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.=) $1", table, quote_identifier(columns[i]));
    SPIPlanPtr plan = ErasePlanFor(relids[i], update, sql);
    RunAs(spi::RelationOwner(relids[i]), plan, key, true, update ? 1 : 0);
    if (update && SPI_processed > 0)
      ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
                      errmsg("cannot change the id of tenant %s: table %s has rows of it", UuidText(key), table),
                      errhint("Tenant ids do not change; move the rows with tenant.export and tenant.import.")));
  }
  SPI_finish();
}

}  // namespace
}  // namespace pg_tenant::policy

using namespace pg_tenant;

// tenant._tenant_key_check() returns trigger
PG_TENANT_FUNCTION(pg_tenant_key_check) {
  bridge::PgCall([&] { policy::Check(fcinfo); });
  return PointerGetDatum(nullptr);
}

// tenant._tenant_key_erase() returns trigger
PG_TENANT_FUNCTION(pg_tenant_key_erase) {
  bridge::PgCall([&] { policy::Erase(fcinfo); });
  return PointerGetDatum(nullptr);
}
