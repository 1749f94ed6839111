// tenant.protect / unprotect / policy_sql and the event triggers that keep scoped tables whole.
//
// Protect reads the table's state from the catalogs, asks the generator for the statements that
// are missing, runs them through SPI and records the table in tenant.scoped_tables; then it does
// the same for each partition and inheritance child (they can be queried directly, and RLS is per
// table). The caller must own the table; the statements run as the extension's owner, so that the
// foreign key to tenant.tenants and the catalog row need no grants on the registry.
#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "policy/generator.hpp"
#include "policy/protect.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pg_tenant::policy {
namespace {

using bridge::PgCall;

// Set while protect runs its own DDL, so the event trigger does not react to it.
bool running_protect_ddl = false;

class ProtectDdlScope {
 public:
  ProtectDdlScope() : saved_(running_protect_ddl) { running_protect_ddl = true; }
  ~ProtectDdlScope() { running_protect_ddl = saved_; }

 private:
  bool saved_;
};

// One query reads everything protect needs to know about a table and its tenant column.
constexpr const char *kStateQuery = R"SQL(
SELECT n.nspname, c.relname, c.relkind,
       a.attnum IS NOT NULL,
       coalesce(a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype, false),
       coalesce(a.attnotnull, false),
       coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid) OPERATOR(pg_catalog.=) 'tenant.current_id()', false),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid AND k.contype OPERATOR(pg_catalog.=) 'f'
                  AND k.confrelid OPERATOR(pg_catalog.=) 'tenant.tenants'::pg_catalog.regclass
                  AND k.conkey OPERATOR(pg_catalog.=) ARRAY[a.attnum]
                  AND k.confkey OPERATOR(pg_catalog.=) ARRAY[1::pg_catalog.int2]),
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indkey[0] OPERATOR(pg_catalog.=) a.attnum
                  AND i.indpred IS NULL),
       c.relrowsecurity, c.relforcerowsecurity,
       tenant._policy_state(c.oid, 'tenant_isolation', true, $2::pg_catalog.name),
       tenant._policy_state(c.oid, 'tenant_isolation_guard', false, $2::pg_catalog.name),
       n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname LIKE 'pg\_toast%',
       (SELECT e.extname FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) dep.refobjid
         WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND dep.objid OPERATOR(pg_catalog.=) c.oid AND dep.deptype OPERATOR(pg_catalog.=) 'e' LIMIT 1)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
       AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) c.oid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
 WHERE c.oid OPERATOR(pg_catalog.=) $1
)SQL";

PolicyState ParsePolicyState(const spi::Value &v) {
  if (!v || *v == "missing") return PolicyState::kMissing;
  return *v == "current" ? PolicyState::kCurrent : PolicyState::kDifferent;
}

bool IsTrue(const spi::Value &v) { return v && *v == "t"; }

struct Table {
  Oid relid;
  char relkind;
  TableState state;
};

// Reads and validates a table; throws the documented error when it cannot be protected.
Table ReadTable(spi::Session &spi, Oid relid, const std::string &column) {
  auto rows = spi.Query(kStateQuery, {{OIDOID, ObjectIdGetDatum(relid)}, {TEXTOID, spi::TextParam(column)}});
  if (rows.empty()) throw Error(ERRCODE_UNDEFINED_TABLE, "relation with OID " + std::to_string(relid) + " does not exist");
  const spi::Row &r = rows[0];
  Table t{relid, (*r.at(2))[0], {}};
  t.state.schema = *r.at(0);
  t.state.table = *r.at(1);
  t.state.column = column;
  const std::string name = QualifiedName(t.state.schema, t.state.table);
  switch (t.relkind) {
    case 'r':
    case 'p':
      break;
    case 'v':
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect view " + name,
                  "A view has no rows of its own; row level security applies to the tables it reads.",
                  "Protect the tables under it, and create the view WITH (security_invoker = true).");
    case 'm':
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect materialized view " + name,
                  "A materialized view cannot carry row level security.",
                  "Use a view WITH (security_invoker = true) over protected tables instead.");
    case 'f':
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect foreign table " + name,
                  "Row level security on a foreign table does not bind the remote server.",
                  "Protect the table on the server that holds it.");
    default:
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, name + " is not a table");
  }
  if (IsTrue(r.at(13)))
    throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect system catalog " + name);
  if (r.at(14))
    throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect " + name + ": it belongs to extension \"" + *r.at(14) + "\"",
                "", "Extension tables are managed by their extension.");
  if (!IsTrue(r.at(3)))
    throw Error(ERRCODE_UNDEFINED_COLUMN, "table " + name + " has no column " + QuoteIdent(column),
                "", "Add it (ALTER TABLE " + name + " ADD COLUMN " + QuoteIdent(column) +
                        " uuid NOT NULL), pass tenant_column, or exempt the table.");
  if (!IsTrue(r.at(4)))
    throw Error(ERRCODE_DATATYPE_MISMATCH, "column " + QuoteIdent(column) + " of " + name + " is not of type uuid",
                "", "Tenant columns hold tenant.tenants.id, a uuid.");
  t.state.column_not_null = IsTrue(r.at(5));
  t.state.column_default_is_current_id = IsTrue(r.at(6));
  t.state.has_tenant_foreign_key = IsTrue(r.at(7));
  t.state.has_leading_index = IsTrue(r.at(8));
  t.state.rls_enabled = IsTrue(r.at(9));
  t.state.rls_forced = IsTrue(r.at(10));
  t.state.isolation_policy = ParsePolicyState(r.at(11));
  t.state.guard_policy = ParsePolicyState(r.at(12));
  return t;
}

std::vector<std::pair<Oid, char>> Children(spi::Session &spi, Oid relid) {
  std::vector<std::pair<Oid, char>> children;
  auto rows = spi.Query(
      "SELECT i.inhrelid, c.relkind FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid "
      "OPERATOR(pg_catalog.=) i.inhrelid WHERE i.inhparent OPERATOR(pg_catalog.=) $1 ORDER BY i.inhrelid",
      {{OIDOID, ObjectIdGetDatum(relid)}});
  for (const auto &r : rows) children.emplace_back(spi::ToOid(r.at(0)), (*r.at(1))[0]);
  return children;
}

// Checked before anything else, so a non-owner learns nothing about the table.
void RequireOwner(Oid relid, Oid role) {
  bool owner = PgCall([&] { return !OidIsValid(get_rel_relkind(relid)) || pg_class_ownercheck(relid, role); });
  if (!owner) {
    const char *name = PgCall([&] { return get_rel_name(relid); });
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                std::string("must be owner of table \"") + (name ? name : "?") + "\" to change its protection");
  }
}

// Walks a table and its descendants. With execute, runs and records; without, collects the
// script policy_sql shows (children's state predicted from what the parent's DDL does).
struct Walk {
  spi::Session &spi;
  bool execute;
  std::string script;
  std::vector<Oid> protected_tables;

  void Visit(Oid relid, const std::string &column, Oid parent, bool parent_partitioned) {
    Table t = ReadTable(spi, relid, column);
    if (!execute && OidIsValid(parent)) {
      t.state.parent_sets_column = true;
      t.state.parent_creates_key_and_index = parent_partitioned;
    }
    auto statements = ProtectStatements(t.state);
    if (execute) {
      ProtectDdlScope scope;
      for (const auto &statement : statements) spi.Run(statement);
      spi.Execute(
          "INSERT INTO tenant.scoped_tables AS s (relid, tenant_column, parent) VALUES ($1, $2::pg_catalog.name, NULLIF($3, 0::pg_catalog.oid)::pg_catalog.regclass) "
          "ON CONFLICT (relid) DO UPDATE SET tenant_column = EXCLUDED.tenant_column, parent = EXCLUDED.parent",
          {{OIDOID, ObjectIdGetDatum(relid)},
           {TEXTOID, spi::TextParam(column)},
           {OIDOID, ObjectIdGetDatum(parent)}});
      protected_tables.push_back(relid);
    } else if (!statements.empty()) {
      if (OidIsValid(parent)) script += "-- " + QualifiedName(t.state.schema, t.state.table) + "\n";
      script += Script(statements);
    }
    for (const auto &[child, kind] : Children(spi, relid)) Visit(child, column, relid, t.relkind == 'p');
  }
};

std::string NameArgument(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant column must not be NULL");
  return NameStr(*PG_GETARG_NAME(n));
}

Oid RelArgument(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "table must not be NULL");
  return PG_GETARG_OID(0);
}

// Returns the protected tables as a set of regclass.
Datum ReturnRelations(FunctionCallInfo fcinfo, const std::vector<Oid> &relids) {
  PgCall([&] {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    for (Oid relid : relids) {
      Datum value = ObjectIdGetDatum(relid);
      bool isnull = false;
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
    }
  });
  return (Datum)0;
}

std::vector<Oid> Protect(Oid relid, const std::string &column) {
  const Oid caller = GetUserId();
  spi::Session spi;
  Walk walk{spi, true, {}, {}};
  {
    RequireOwner(relid, caller);
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    auto parent = spi.Query(
        "SELECT s.relid::pg_catalog.oid FROM tenant.scoped_tables s JOIN pg_catalog.pg_inherits i "
        "ON i.inhparent OPERATOR(pg_catalog.=) s.relid WHERE i.inhrelid OPERATOR(pg_catalog.=) $1",
        {{OIDOID, ObjectIdGetDatum(relid)}});
    walk.Visit(relid, column, parent.empty() ? InvalidOid : spi::ToOid(parent[0][0]), false);
  }
  spi.Finish();
  return walk.protected_tables;
}

}  // namespace

namespace {

// The catalog facts the guard checks, read from the relcache (no SQL: it runs after every
// ALTER TABLE on a scoped table).
struct ProtectionFacts {
  bool table_exists = false;
  bool column_exists = false;
  bool column_is_uuid = false;
  bool column_not_null = false;
  bool has_tenant_foreign_key = false;
  bool rls_enabled = false;
  bool rls_forced = false;
  PolicyState isolation_policy = PolicyState::kMissing;
  PolicyState guard_policy = PolicyState::kMissing;
};

// (column OPERATOR(pg_catalog.=) tenant.current_id()), as protect creates it.
bool IsTenantPredicate(Expr *expr, AttrNumber column, Oid current_id) {
  if (expr == nullptr || !IsA(expr, OpExpr)) return false;
  auto *op = reinterpret_cast<OpExpr *>(expr);
  if (get_opcode(op->opno) != F_UUID_EQ || list_length(op->args) != 2) return false;
  auto *left = static_cast<Node *>(linitial(op->args));
  auto *right = static_cast<Node *>(lsecond(op->args));
  return IsA(left, Var) && reinterpret_cast<Var *>(left)->varattno == column && IsA(right, FuncExpr) &&
         reinterpret_cast<FuncExpr *>(right)->funcid == current_id &&
         reinterpret_cast<FuncExpr *>(right)->args == NIL;
}

PolicyState Classify(const RowSecurityPolicy *policy, bool permissive, AttrNumber column, Oid current_id) {
  const bool to_public = ARR_NDIM(policy->roles) == 1 && ARR_DIMS(policy->roles)[0] == 1 &&
                         reinterpret_cast<Oid *>(ARR_DATA_PTR(policy->roles))[0] == ACL_ID_PUBLIC;
  const bool current = policy->polcmd == '*' && policy->permissive == permissive && to_public &&
                       IsTenantPredicate(policy->qual, column, current_id) &&
                       IsTenantPredicate(policy->with_check_qual, column, current_id);
  return current ? PolicyState::kCurrent : PolicyState::kDifferent;
}

ProtectionFacts ReadFacts(Oid relid, const char *column) {
  return PgCall([&] {
    ProtectionFacts f;
    Oid tenant_schema = get_namespace_oid("tenant", false);
    Oid tenants = get_relname_relid("tenants", tenant_schema);
    Oid current_id = LookupFuncName(list_make2(makeString(pstrdup("tenant")), makeString(pstrdup("current_id"))), 0,
                                    nullptr, false);
    Relation rel = try_relation_open(relid, AccessShareLock);
    if (rel == nullptr) return f;
    f.table_exists = true;
    f.rls_enabled = rel->rd_rel->relrowsecurity;
    f.rls_forced = rel->rd_rel->relforcerowsecurity;
    AttrNumber column_number = get_attnum(relid, column);
    if (column_number != InvalidAttrNumber) {
      Form_pg_attribute attribute = TupleDescAttr(RelationGetDescr(rel), column_number - 1);
      f.column_exists = true;
      f.column_is_uuid = attribute->atttypid == UUIDOID;
      f.column_not_null = attribute->attnotnull;
    }
    ListCell *cell;
    foreach (cell, RelationGetFKeyList(rel)) {
      auto *key = static_cast<ForeignKeyCacheInfo *>(lfirst(cell));
      if (key->confrelid == tenants && key->nkeys == 1 && key->conkey[0] == column_number)
        f.has_tenant_foreign_key = true;
    }
    if (rel->rd_rsdesc != nullptr) {
      foreach (cell, rel->rd_rsdesc->policies) {
        auto *policy = static_cast<RowSecurityPolicy *>(lfirst(cell));
        if (kIsolationPolicy == policy->policy_name)
          f.isolation_policy = Classify(policy, true, column_number, current_id);
        else if (kGuardPolicy == policy->policy_name)
          f.guard_policy = Classify(policy, false, column_number, current_id);
      }
    } else if (!f.rls_enabled) {
      // Without row level security the relcache holds no policies; that is reported already.
      f.isolation_policy = f.guard_policy = PolicyState::kCurrent;
    }
    relation_close(rel, AccessShareLock);
    return f;
  });
}

}  // namespace

std::vector<std::string> MissingProtection(Oid relid, const std::string &column) {
  const ProtectionFacts f = ReadFacts(relid, column.c_str());
  if (!f.table_exists) return {};
  if (!f.column_exists) return {"the tenant column " + QuoteIdent(column) + " is gone (dropped or renamed)"};
  std::vector<std::string> missing;
  if (!f.column_is_uuid) missing.push_back("tenant column " + QuoteIdent(column) + " is not uuid");
  if (!f.column_not_null) missing.push_back("tenant column " + QuoteIdent(column) + " is nullable");
  if (!f.has_tenant_foreign_key) missing.push_back("the foreign key to tenant.tenants is gone");
  if (!f.rls_enabled) missing.push_back("row level security is disabled");
  if (!f.rls_forced) missing.push_back("row level security is not forced");
  if (f.isolation_policy != PolicyState::kCurrent)
    missing.push_back("policy " + QuoteIdent(kIsolationPolicy) + " is dropped or changed");
  if (f.guard_policy != PolicyState::kCurrent)
    missing.push_back("policy " + QuoteIdent(kGuardPolicy) + " is dropped or changed");
  return missing;
}

std::optional<std::string> ScopedColumn(Oid relid) {
  char column[NAMEDATALEN] = {0};
  bool found = PgCall([&] {
    Oid schema = get_namespace_oid("tenant", false);
    Oid catalog = get_relname_relid("scoped_tables", schema);
    Oid index = get_relname_relid("scoped_tables_pkey", schema);
    if (!OidIsValid(catalog) || !OidIsValid(index)) return false;
    Relation rel = table_open(catalog, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(rel, index, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    bool hit = false;
    if (HeapTupleIsValid(tuple)) {
      bool isnull;
      Datum value = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull);
      if (!isnull) {
        strlcpy(column, NameStr(*DatumGetName(value)), sizeof(column));
        hit = true;
      }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return hit;
  });
  if (!found) return std::nullopt;
  return std::string(column);
}

void ProtectOnBehalf(spi::Session &spi, Oid relid, const std::string &column) {
  Walk walk{spi, true, {}, {}};
  walk.Visit(relid, column, InvalidOid, false);
}

bool RunningProtectDdl() { return running_protect_ddl; }

}  // namespace pg_tenant::policy

using namespace pg_tenant;
using namespace pg_tenant::policy;

// tenant.protect(rel regclass, tenant_column name) returns setof regclass
PG_TENANT_FUNCTION(pg_tenant_protect) {
  Oid relid = RelArgument(fcinfo);
  std::string column = NameArgument(fcinfo, 1);
  return ReturnRelations(fcinfo, Protect(relid, column));
}

// tenant.policy_sql(rel regclass, tenant_column name) returns text
PG_TENANT_FUNCTION(pg_tenant_policy_sql) {
  Oid relid = RelArgument(fcinfo);
  std::string column = NameArgument(fcinfo, 1);
  spi::Session spi;
  Walk walk{spi, false, {}, {}};
  {
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    walk.Visit(relid, column, InvalidOid, false);
  }
  spi.Finish();
  text *result = PgCall([&] { return cstring_to_text_with_len(walk.script.data(), static_cast<int>(walk.script.size())); });
  PG_RETURN_TEXT_P(result);
}

// tenant.unprotect(rel regclass) returns setof regclass: drops the generated policies and the RLS
// flags of the table and of the descendants protected with it.
PG_TENANT_FUNCTION(pg_tenant_unprotect) {
  Oid relid = RelArgument(fcinfo);
  const Oid caller = GetUserId();
  std::vector<Oid> unprotected;
  spi::Session spi;
  {
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    auto scoped = spi.Query(
        "SELECT tenant_column, parent FROM tenant.scoped_tables WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
        {{OIDOID, ObjectIdGetDatum(relid)}});
    if (!scoped.empty()) {
      const std::string column = *scoped[0][0];
      RequireOwner(relid, caller);
      Table top = ReadTable(spi, relid, column);
      if (scoped[0][1])
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "cannot unprotect " + QualifiedName(top.state.schema, top.state.table) + " alone",
                    "Its parent " + *scoped[0][1] + " is protected, and a child can be queried directly.",
                    "Unprotect the parent.");
      ProtectDdlScope scope;
      auto tree = spi.Query(
          "WITH RECURSIVE tree(relid) AS (SELECT $1::pg_catalog.oid UNION SELECT s.relid::pg_catalog.oid FROM "
          "tenant.scoped_tables s JOIN tree t ON s.parent::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid) "
          "SELECT relid FROM tree",
          {{OIDOID, ObjectIdGetDatum(relid)}});
      for (const auto &row : tree) {
        Oid member = spi::ToOid(row[0]);
        Table t = ReadTable(spi, member, column);
        for (const auto &statement : UnprotectStatements(t.state)) spi.Run(statement);
        spi.Execute("DELETE FROM tenant.scoped_tables WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
                    {{OIDOID, ObjectIdGetDatum(member)}});
        unprotected.push_back(member);
      }
    }
  }
  spi.Finish();
  return ReturnRelations(fcinfo, unprotected);
}

// Event trigger (ddl_command_end): a new partition or child of a protected table, or one attached
// or made to inherit later, is protected in the same transaction.
PG_TENANT_FUNCTION(pg_tenant_protect_new_children) {
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "tenant._protect_new_children() must be called as an event trigger");
  if (running_protect_ddl) PG_RETURN_VOID();
  spi::Session spi;
  {
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    auto rows = spi.Query(R"SQL(
WITH touched AS MATERIALIZED (
  SELECT DISTINCT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
   WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass),
links AS (  -- the touched table as a child, or its children (ATTACH PARTITION names the parent)
  SELECT i.inhrelid, i.inhparent FROM touched t
   CROSS JOIN LATERAL (SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
                        WHERE inhrelid OPERATOR(pg_catalog.=) t.objid
                        UNION ALL
                       SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
                        WHERE inhparent OPERATOR(pg_catalog.=) t.objid) i)
SELECT DISTINCT l.inhrelid, s.tenant_column, l.inhparent
  FROM links l
  JOIN tenant.scoped_tables s ON s.relid OPERATOR(pg_catalog.=) l.inhparent::pg_catalog.regclass
 WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables c
                    WHERE c.relid OPERATOR(pg_catalog.=) l.inhrelid::pg_catalog.regclass)
)SQL");
    for (const auto &r : rows) {
      Walk walk{spi, true, {}, {}};
      walk.Visit(spi::ToOid(r.at(0)), *r.at(1), spi::ToOid(r.at(2)), false);
    }
  }
  spi.Finish();
  PG_RETURN_VOID();
}
