// tenant.protect / unprotect / policy_sql and the event triggers that keep scoped tables whole.
//
// Protect reads the table's state from the catalogs, asks the generator for the statements that
// are missing, runs them through SPI and records the table in tenant.scoped_tables; then it does
// the same for each partition and inheritance child (they can be queried directly, and RLS is per
// table). The caller must own the table; the statements run as the extension's owner, so that the
// tenant key trigger and the catalog row need no grants on the extension's functions and tables.
#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "policy/generator.hpp"
#include "policy/protect.hpp"

#include "citus/citus.hpp"
#include "policy/protection.hpp"

#include <optional>
#include <string>
#include <utility>
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

struct Table {
  Oid relid;
  char relkind;
  TableState state;
};

// Reads and validates a table; throws the documented error when it cannot be protected.
Table ReadTable(Oid relid, const std::string &column) {
  const Protection p = ReadProtection(relid, column);
  if (!p.exists) throw Error(ERRCODE_UNDEFINED_TABLE, "relation with OID " + std::to_string(relid) + " does not exist");
  Table t{relid, p.relkind, {}};
  t.state.schema = p.schema;
  t.state.table = p.table;
  t.state.column = column;
  const std::string name = QualifiedName(t.state.schema, t.state.table);
  switch (t.relkind) {
    case RELKIND_RELATION:
    case RELKIND_PARTITIONED_TABLE:
      break;
    case RELKIND_VIEW:
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect view " + name,
                  "A view has no rows of its own; row level security applies to the tables it reads.",
                  "Protect the tables under it, and create the view WITH (security_invoker = true).");
    case RELKIND_MATVIEW:
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect materialized view " + name,
                  "A materialized view cannot carry row level security.",
                  "Use a view WITH (security_invoker = true) over protected tables instead.");
    case RELKIND_FOREIGN_TABLE:
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect foreign table " + name,
                  "Row level security on a foreign table does not bind the remote server.",
                  "Protect the table on the server that holds it.");
    default:
      throw Error(ERRCODE_WRONG_OBJECT_TYPE, name + " is not a table");
  }
  if (p.system_catalog) throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect system catalog " + name);
  if (!p.extension.empty())
    throw Error(ERRCODE_WRONG_OBJECT_TYPE, "cannot protect " + name + ": it belongs to extension \"" + p.extension + "\"",
                "", "Extension tables are managed by their extension.");
  if (!p.column_exists)
    throw Error(ERRCODE_UNDEFINED_COLUMN, "table " + name + " has no column " + QuoteIdent(column),
                "", "Add it (ALTER TABLE " + name + " ADD COLUMN " + QuoteIdent(column) +
                        " uuid NOT NULL), pass tenant_column, or exempt the table.");
  if (!p.column_is_uuid)
    throw Error(ERRCODE_DATATYPE_MISMATCH, "column " + QuoteIdent(column) + " of " + name + " is not of type uuid",
                "", "Tenant columns hold tenant.tenants.id, a uuid.");
  t.state.column_not_null = p.column_not_null;
  t.state.column_default_is_current_id = p.column_default_is_current_id;
  t.state.has_tenant_key = p.has_tenant_key;
  t.state.own_key_trigger = p.own_key_trigger;
  t.state.partitioned = p.relkind == RELKIND_PARTITIONED_TABLE;
  t.state.legacy_foreign_key = p.legacy_foreign_key;
  t.state.has_leading_index = p.has_leading_index;
  t.state.rls_enabled = p.rls_enabled;
  t.state.rls_forced = p.rls_forced;
  t.state.isolation_policy = p.isolation_policy;
  t.state.guard_policy = p.guard_policy;
  if (citus::Installed()) {
    t.state.citus_table = citus::IsCitusTable(relid);
    t.state.registry_distributed = citus::RegistryDistributed();
  }
  return t;
}

// Checked before anything else, so a non-owner learns nothing about the table.
// The rule is OwnsTable's (limit_rows asks it too); a table that is gone passes here, for the
// caller to report (42P01).
void RequireOwner(Oid relid, Oid role) {
  if (OwnsTable(relid, role)) return;
  const char *name = PgCall([&] { return get_rel_name(relid); });
  if (name == nullptr) return;
  throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("must be owner of table \"") + name + "\" to change its protection");
}

// The rows a table already holds must name registered tenants, as the tenant key makes every new
// row do (a foreign key validated them; 0.10.0): protect, and ATTACH PARTITION / INHERIT of an
// unprotected child, are refused with 23503 otherwise. One query per table, as the extension's
// owner (who reads tenant.tenants): it reads only the tenant column, a uuid, compared with
// pg_catalog's operator, so no code of the table's owner runs in it.
void RequireRegisteredTenants(spi::Session &spi, const TableState &state) {
  // No key (a distributed registry, or a foreign key that validated them), or a Citus table (its
  // shards are read on the workers; not validated here).
  if (state.registry_distributed || state.legacy_foreign_key || state.citus_table) return;
  const std::string table = QualifiedName(state.schema, state.table);
  const std::string column = "t." + QuoteIdent(state.column);
  const auto rows = spi.Query("SELECT " + column + "::pg_catalog.text FROM ONLY " + table + " t WHERE " + column +
                              " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tenant.tenants r WHERE r.id "
                              "OPERATOR(pg_catalog.=) " + column + ") LIMIT 1");
  if (rows.empty()) return;
  throw Error(ERRCODE_FOREIGN_KEY_VIOLATION, "table " + table + " has rows of a tenant that is not in tenant.tenants",
              "Tenant " + rows[0].at(0).value_or("?") + " is not registered.",
              "Delete those rows, or register their tenants with tenant.create(), before protecting the table.");
}

// Protects a table and its descendants (execute), or collects the script policy_sql shows,
// with each child's state predicted from what its parent's DDL does for it.
struct Walk {
  spi::Session *spi;  // nullptr: only collect the script
  bool execute;
  std::string script;
  std::vector<Oid> protected_tables;

  // parent: the scoped parent to record for the root (children record theirs).
  void Run(Oid root, const std::string &column, Oid parent) {
    for (const TreeNode &node : TableTree(root)) {
      Table t = ReadTable(node.relid, column);
      const Oid recorded_parent = node.relid == root ? parent : node.parent;
      if (!execute && OidIsValid(node.parent)) {
        t.state.parent_sets_column = true;
        t.state.parent_creates_key_and_index = node.parent_partitioned;
      }
      auto statements = ProtectStatements(t.state);
      if (execute) {
        ProtectDdlScope scope;
        for (const auto &statement : statements) spi->Run(statement);
        RequireRegisteredTenants(*spi, t.state);
        spi->Execute(
            "INSERT INTO tenant.scoped_tables AS s (relid, tenant_column, parent) VALUES ($1, $2::pg_catalog.name, NULLIF($3, 0::pg_catalog.oid)::pg_catalog.regclass) "
            "ON CONFLICT (relid) DO UPDATE SET tenant_column = EXCLUDED.tenant_column, parent = EXCLUDED.parent",
            {{OIDOID, ObjectIdGetDatum(node.relid)},
             {TEXTOID, spi::TextParam(column)},
             {OIDOID, ObjectIdGetDatum(recorded_parent)}});
        protected_tables.push_back(node.relid);
      } else if (!statements.empty()) {
        if (OidIsValid(node.parent)) script += "-- " + QualifiedName(t.state.schema, t.state.table) + "\n";
        script += Script(statements);
      }
    }
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

// The same, for functions that work on the relation: a regclass naming none (0, a dropped
// table's oid) is 42P01, never a failed cache look-up (XX000).
Oid ExistingRelArgument(FunctionCallInfo fcinfo) {
  const Oid relid = RelArgument(fcinfo);
  (void)spi::RelationOwner(relid);
  return relid;
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
  Walk walk{&spi, true, {}, {}};
  {
    RequireOwner(relid, caller);
    spi::AsRole as_owner(catalog::ExtensionOwner());
    auto parent = spi.Query(
        "SELECT s.relid::pg_catalog.oid FROM tenant.scoped_tables s JOIN pg_catalog.pg_inherits i "
        "ON i.inhparent OPERATOR(pg_catalog.=) s.relid WHERE i.inhrelid OPERATOR(pg_catalog.=) $1",
        {{OIDOID, ObjectIdGetDatum(relid)}});
    walk.Run(relid, column, parent.empty() ? InvalidOid : spi::ToOid(parent[0][0]));
  }
  spi.Finish();
  return walk.protected_tables;
}

}  // namespace

void ProtectOnBehalf(spi::Session &spi, Oid relid, const std::string &column) {
  Walk walk{&spi, true, {}, {}};
  walk.Run(relid, column, InvalidOid);
}

bool RunningProtectDdl() { return running_protect_ddl; }

void ProtectNewChildren(ddl::Event &event) {
  if (running_protect_ddl || (event.tag() != CMDTAG_CREATE_TABLE && event.tag() != CMDTAG_ALTER_TABLE)) return;
  // Only CREATE TABLE ... PARTITION OF / INHERITS and ALTER TABLE ... ATTACH PARTITION / INHERIT
  // link a child to a parent: any other statement of these shapes needs no look at the catalogs.
  Node *tree = event.parsetree();
  if (tree != nullptr && IsA(tree, CreateStmt) && !event.creates_child()) return;
  // DETACH PARTITION drops the partition's clone of its parent's tenant_key trigger: a scoped
  // table that leaves its parent is protected again on its own (its own key, no parent recorded).
  if (tree != nullptr && IsA(tree, AlterTableStmt) && !event.unlinked().empty()) {
    std::vector<std::pair<Oid, std::string>> unlinked;
    for (Oid relid : event.unlinked())
      if (OidIsValid(relid))
        if (auto column = catalog::ScopedColumn(relid)) unlinked.emplace_back(relid, *column);
    if (!unlinked.empty()) {
      spi::AsRole as_owner(event.Owner());
      for (const auto &[relid, column] : unlinked) {
        Walk walk{&event.Spi(), true, {}, {}};
        walk.Run(relid, column, InvalidOid);
      }
    }
  }
  if (tree != nullptr && IsA(tree, AlterTableStmt) && !event.links_child()) return;
  const std::vector<Oid> touched = event.TouchedTables();
  if (touched.empty()) return;
  // The touched tables as children, or their children (ATTACH PARTITION names the parent): each
  // link of a scoped parent to a child not scoped yet (the tree engine, protection.hpp).
  struct NewChild {
    Oid child;
    std::string column;
    Oid parent;
  };
  std::vector<NewChild> children;
  for (const Link &link : LinksOf(touched))
    if (auto column = catalog::ScopedColumn(link.parent))
      if (!catalog::ScopedColumn(link.child)) children.push_back({link.child, *column, link.parent});
  if (children.empty()) return;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  for (const auto &c : children) {
    Walk walk{&spi, true, {}, {}};
    walk.Run(c.child, c.column, c.parent);
  }
}

void ForgetDroppedTables(ddl::Event &event) {
  std::vector<Oid> dropped;
  for (const auto &d : event.DroppedObjects())  // scoped tables only (a column is no table)
    if (d.classid == RelationRelationId && d.objsubid == 0 && catalog::ScopedColumn(d.objid)) dropped.push_back(d.objid);
  if (dropped.empty()) return;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  spi.Execute("DELETE FROM tenant.scoped_tables s WHERE s.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)",
              {spi::OidArrayParam(dropped)});
}

}  // namespace pg_tenant::policy

using namespace pg_tenant;
using namespace pg_tenant::policy;

// tenant.protect(rel regclass, tenant_column name) returns setof regclass
PG_TENANT_FUNCTION(pg_tenant_protect) {
  Oid relid = ExistingRelArgument(fcinfo);
  std::string column = NameArgument(fcinfo, 1);
  return ReturnRelations(fcinfo, Protect(relid, column));
}

// tenant.policy_sql(rel regclass, tenant_column name) returns text
PG_TENANT_FUNCTION(pg_tenant_policy_sql) {
  Oid relid = ExistingRelArgument(fcinfo);
  std::string column = NameArgument(fcinfo, 1);
  Walk walk{nullptr, false, {}, {}};
  walk.Run(relid, column, InvalidOid);
  text *result = PgCall([&] { return cstring_to_text_with_len(walk.script.data(), static_cast<int>(walk.script.size())); });
  PG_RETURN_TEXT_P(result);
}

// tenant._guard_policy_sql(rel regclass, tenant_column name) returns text: the generator's CREATE
// POLICY of the restrictive guard on rel, for tenant._restore_restrictive_guard (src/citus).
PG_TENANT_FUNCTION(pg_tenant_guard_policy_sql) {
  Oid relid = ExistingRelArgument(fcinfo);
  const std::string sql = CreatePolicy(ReadTable(relid, NameArgument(fcinfo, 1)).state, kGuardPolicy, true);
  text *result = PgCall([&] { return cstring_to_text_with_len(sql.data(), static_cast<int>(sql.size())); });
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
    spi::AsRole as_owner(catalog::ExtensionOwner());
    auto scoped = spi.Query(
        "SELECT tenant_column, parent FROM tenant.scoped_tables WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
        {{OIDOID, ObjectIdGetDatum(relid)}});
    if (!scoped.empty()) {
      const std::string column = *scoped[0][0];
      RequireOwner(relid, caller);
      Table top = ReadTable(relid, column);
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
        Table t = ReadTable(member, column);
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


// tenant._table_tree(rel regclass) returns setof regclass: the table, then its partitions and
// inheritance children, recursively (each after its parent).
PG_TENANT_FUNCTION(pg_tenant_table_tree) {
  std::vector<Oid> relids;
  for (const TreeNode &node : TableTree(ExistingRelArgument(fcinfo))) relids.push_back(node.relid);
  return ReturnRelations(fcinfo, relids);
}

namespace {

const char *StateName(PolicyState state) {
  switch (state) {
    case PolicyState::kCurrent: return "current";
    case PolicyState::kDifferent: return "different";
    case PolicyState::kMissing: break;
  }
  return "missing";
}

}  // namespace

// tenant._protection(rel regclass, tenant_column name): the protection state as the audit reads
// it (column_is_uuid, column_not_null, has_foreign_key, has_leading_index, rls_enabled,
// rls_forced, isolation_policy, guard_policy); no row for a table that does not exist.
PG_TENANT_FUNCTION(pg_tenant_protection) {
  const Oid relid = RelArgument(fcinfo);
  const Protection p = ReadProtection(relid, NameArgument(fcinfo, 1));
  if (!p.exists) PG_RETURN_NULL();
  return PgCall([&] {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
    Datum values[8] = {BoolGetDatum(p.column_is_uuid), BoolGetDatum(p.column_not_null),
                       BoolGetDatum(p.has_tenant_key), BoolGetDatum(p.has_leading_index),
                       BoolGetDatum(p.rls_enabled), BoolGetDatum(p.rls_forced),
                       CStringGetTextDatum(StateName(p.isolation_policy)), CStringGetTextDatum(StateName(p.guard_policy))};
    bool nulls[8] = {};
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
  });
}

// tenant.tenant_column() returns name: pg_tenant.tenant_column.
PG_TENANT_FUNCTION(pg_tenant_tenant_column) {
  const std::string column = DefaultTenantColumn();
  return PgCall([&] {
    Name name = static_cast<Name>(palloc0(NAMEDATALEN));
    namestrcpy(name, column.c_str());
    return NameGetDatum(name);
  });
}
