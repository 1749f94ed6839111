#include "bridge/spi.hpp"

#include <exception>

namespace pg_tenant::spi {

using bridge::PgCall;

Session::Session() {
  PgCall([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  });
  open_ = true;
}

void Session::Finish() {
  if (!open_) return;
  open_ = false;
  PgCall([] { SPI_finish(); });
}

namespace {

// Plans prepared once per backend and kept (SPI_keepplan): the plan cache revalidates them after
// DDL, so a statement the extension runs on every DDL command is not parsed and planned each time.
struct KeptPlan {
  std::string sql;
  std::vector<Oid> types;
  SPIPlanPtr plan;
};
std::vector<KeptPlan> kept_plans;

SPIPlanPtr PlanFor(const std::string &sql, const std::vector<Oid> &types) {
  for (const auto &kept : kept_plans)
    if (kept.sql == sql && kept.types == types) return kept.plan;
  SPIPlanPtr plan = PgCall([&] {
    SPIPlanPtr p = SPI_prepare(sql.c_str(), static_cast<int>(types.size()), const_cast<Oid *>(types.data()));
    if (p == nullptr) elog(ERROR, "SPI_prepare failed (%d): %s", SPI_result, sql.c_str());
    if (SPI_keepplan(p) != 0) elog(ERROR, "SPI_keepplan failed");
    return p;
  });
  kept_plans.push_back({sql, types, plan});
  return plan;
}

}  // namespace

std::vector<Row> Session::Query(const std::string &sql, const std::vector<Param> &params) {
  std::vector<Oid> types;
  std::vector<Datum> values;
  std::string nulls;  // SPI's convention: 'n' for NULL, ' ' otherwise
  for (const auto &p : params) {
    types.push_back(p.type);
    values.push_back(p.value);
    nulls += p.is_null ? 'n' : ' ';
  }
  SPIPlanPtr plan = PlanFor(sql, types);
  return CopyRows(PgCall([&] {
    int rc = SPI_execute_plan(plan, values.data(), nulls.c_str(), false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute_plan failed (%d): %s", rc, sql.c_str());
    return SPI_tuptable != nullptr ? SPI_tuptable->tupdesc->natts : 0;
  }));
}

std::vector<Row> Session::QueryOnce(const std::string &sql) {
  return CopyRows(PgCall([&] {
    int rc = SPI_execute(sql.c_str(), false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute failed (%d): %s", rc, sql.c_str());
    return SPI_tuptable != nullptr ? SPI_tuptable->tupdesc->natts : 0;
  }));
}

// The rows of the last SPI call, as text.
std::vector<Row> Session::CopyRows(int ncolumns) {
  std::vector<Row> rows;
  const uint64 nrows = SPI_tuptable != nullptr ? SPI_processed : 0;
  for (uint64 r = 0; r < nrows; ++r) {
    Row row;
    for (int c = 1; c <= ncolumns; ++c) {
      char *text = PgCall([&] { return SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c); });
      row.push_back(text != nullptr ? Value(text) : std::nullopt);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void Session::Run(const std::string &sql) { (void)QueryOnce(sql); }

void Session::Execute(const std::string &sql, const std::vector<Param> &params) { (void)Query(sql, params); }

Datum TextParam(const std::string &value) {
  return PgCall([&] { return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size()))); });
}

Param OidArrayParam(const std::vector<Oid> &oids) {
  std::vector<Datum> elements;
  for (Oid oid : oids) elements.push_back(ObjectIdGetDatum(oid));
  ArrayType *array = PgCall(
      [&] { return construct_array(elements.data(), static_cast<int>(elements.size()), OIDOID, sizeof(Oid), true, TYPALIGN_INT); });
  return {OIDARRAYOID, PointerGetDatum(array)};
}

Param TextArrayParam(const std::vector<std::string> &values) {
  std::vector<Datum> elements;
  for (const auto &value : values) elements.push_back(TextParam(value));
  ArrayType *array = PgCall(
      [&] { return construct_array(elements.data(), static_cast<int>(elements.size()), TEXTOID, -1, false, TYPALIGN_INT); });
  return {TEXTARRAYOID, PointerGetDatum(array)};
}

Oid ToOid(const Value &value) {
  if (!value) throw Error(ERRCODE_INTERNAL_ERROR, "unexpected NULL oid");
  return static_cast<Oid>(std::stoul(*value));
}

AsRole::AsRole(Oid role, int extra_context) {
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE | extra_context);
}

AsRole::~AsRole() { SetUserIdAndSecContext(saved_user_, saved_context_); }

RestrictedAs::RestrictedAs(Oid role)
    : role_(role, SECURITY_RESTRICTED_OPERATION), nest_level_(PgCall([] { return NewGUCNestLevel(); })) {}

RestrictedAs::~RestrictedAs() {
  // While an error unwinds, the transaction's (or subtransaction's) abort pops the GUC level;
  // role_ then gives the caller's identity back.
  if (std::uncaught_exceptions() == 0) AtEOXact_GUC(false, nest_level_);
}

Oid RelationOwner(Oid relid) {
  const Oid owner = PgCall([relid] {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple)) return InvalidOid;
    const Oid found = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return found;
  });
  if (!OidIsValid(owner))
    throw Error(ERRCODE_UNDEFINED_TABLE, "relation with OID " + std::to_string(relid) + " does not exist");
  return owner;
}

PinnedSearchPath::PinnedSearchPath() {
  nest_level_ = PgCall([] {
    int level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    return level;
  });
}

PinnedSearchPath::~PinnedSearchPath() {
  // While an error unwinds, the transaction's abort restores the GUC stack.
  if (std::uncaught_exceptions() == 0) AtEOXact_GUC(true, nest_level_);
}

}  // namespace pg_tenant::spi
