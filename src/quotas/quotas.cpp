// The counting side of row quotas. A statement trigger (INSERT, UPDATE, DELETE; transition
// tables) counts its rows per tenant and hands the deltas to the transaction's ledger
// (ledger.hpp): the first statement of a transaction that touches a counter locks its row and
// reads it, later ones check their limit in memory, and the deltas are written once before
// commit. The limit is checked on the count the statement would reach, the tenant in context
// first, so the statement that would pass a limit fails whole and an error shows the writing
// tenant's own numbers.
#include "quotas/quotas.hpp"

#include "quotas/ledger.hpp"

#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"

#include <string>
#include <vector>

namespace pg_tenant::quotas {
namespace {

using bridge::PgCall;

UuidBytes FromPg(const pg_uuid_t *id) {
  UuidBytes bytes;
  memcpy(bytes.data(), id->data, UUID_LEN);
  return bytes;
}

// Adds sign for every row of a transition table to its tenant's delta (NULL tenants: none, the
// column is NOT NULL on a protected table).
void CountRows(Tuplestorestate *rows, TupleDesc desc, AttrNumber column, int64 sign, Deltas &deltas) {
  PgCall([&] {
    TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
    // A read pointer of our own: other triggers may read the same transition table.
    const int pointer = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
    tuplestore_select_read_pointer(rows, pointer);
    tuplestore_rescan(rows);
    while (tuplestore_gettupleslot(rows, true, false, slot)) {
      bool isnull;
      Datum tenant = slot_getattr(slot, column, &isnull);
      if (!isnull) deltas[FromPg(DatumGetUUIDP(tenant))] += sign;
    }
    tuplestore_select_read_pointer(rows, 0);
    ExecDropSingleTupleTableSlot(slot);
  });
}

}  // namespace
}  // namespace pg_tenant::quotas

using namespace pg_tenant;
using namespace pg_tenant::quotas;

// tenant._row_quota_inserted(), _updated(), _deleted(): the statement triggers of a counted table
// (arguments: resource, tenant column). Transition tables: pg_tenant_new, pg_tenant_old.
PG_TENANT_FUNCTION(pg_tenant_row_quota_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "a row quota function must be called as a trigger");
  auto *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
  if (trigger->tg_trigger->tgnargs != 2)
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "a row quota trigger takes a resource and a tenant column");
  const std::string resource = trigger->tg_trigger->tgargs[0];
  const char *column_name = trigger->tg_trigger->tgargs[1];
  TupleDesc desc = RelationGetDescr(trigger->tg_relation);
  const AttrNumber column = PgCall([&] { return SPI_fnumber(desc, column_name); });
  if (column <= 0)
    throw Error(ERRCODE_UNDEFINED_COLUMN, std::string("row quota column \"") + column_name + "\" does not exist");
  Deltas deltas;
  if (trigger->tg_newtable != nullptr) CountRows(trigger->tg_newtable, desc, column, 1, deltas);
  if (trigger->tg_oldtable != nullptr) CountRows(trigger->tg_oldtable, desc, column, -1, deltas);
  // An UPDATE that keeps every row's tenant changes nothing; DELETE never reaches a limit.
  Apply(resource, deltas, !TRIGGER_FIRED_BY_DELETE(trigger->tg_event));
  return PointerGetDatum(nullptr);
}

// tenant._row_quota_apply(resource text, tenants uuid[], deltas bigint[], enforce boolean): adds
// the deltas to the tenants' counts (the DDL steps' counts of attached and detached tables).
PG_TENANT_FUNCTION(pg_tenant_row_quota_apply) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(3)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "resource and enforce must not be NULL");
  text *resource = PG_GETARG_TEXT_PP(0);
  Deltas deltas;
  if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2)) {
    ArrayType *tenants = PG_GETARG_ARRAYTYPE_P(1);
    ArrayType *counts = PG_GETARG_ARRAYTYPE_P(2);
    Datum *tenant_values, *count_values;
    bool *tenant_nulls, *count_nulls;
    int tenant_count, count_count;
    PgCall([&] {
      deconstruct_array(tenants, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &tenant_values, &tenant_nulls, &tenant_count);
      deconstruct_array(counts, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &count_values, &count_nulls,
                        &count_count);
    });
    if (tenant_count != count_count)
      throw Error(ERRCODE_ARRAY_SUBSCRIPT_ERROR, "tenants and deltas must have the same length");
    for (int i = 0; i < tenant_count; ++i)
      if (!tenant_nulls[i] && !count_nulls[i])
        deltas[FromPg(DatumGetUUIDP(tenant_values[i]))] += DatumGetInt64(count_values[i]);
  }
  Apply(std::string(VARDATA_ANY(resource), VARSIZE_ANY_EXHDR(resource)), deltas, PG_GETARG_BOOL(3));
  PG_RETURN_VOID();
}
