// The DDL guard, run by the DDL door (src/ddl/ddl.cpp):
//  - after a command: a new table (CREATE TABLE [AS], SELECT INTO, also inside CREATE SCHEMA, DO
//    blocks and functions) in a guarded schema must have the tenant column or an exemption; with
//    auto_protect it is protected at once. A materialized view may not read a scoped table.
//    After ALTER TABLE / ALTER POLICY on a scoped table its protection is read again (the command
//    tag says nothing about what changed) and anything protect made that is gone is an error;
//    after CREATE [OR REPLACE] TRIGGER on one too (0.10.0: a replaced tenant_key trigger).
//  - after a drop: dropping a scoped table's tenant column, tenant key (trigger tenant_key, or
//    the foreign key of a table protected before 0.9.0) or generated policy.
// tenant.protect()/unprotect() themselves, extension scripts, and a superuser restoring a dump
// (pg_dump scripts run with row_security = off) pass through.
#include "guard/guard.hpp"

#include "citus/citus.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "policy/generator.hpp"
#include "policy/protect.hpp"
#include "policy/dependencies.hpp"
#include "policy/protection.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace pg_tenant::guard {

using bridge::PgCall;

// pg_tenant.guarded_schemas, parsed by its check hook into this (the GUC's "extra", malloc'd).
struct SchemaList {
  int count;
  NameData names[FLEXIBLE_ARRAY_MEMBER];
};

// The settings (registered in src/wiring/settings.cpp).
char *guarded_schemas_setting = nullptr;
const SchemaList *guarded_schemas = nullptr;
int enforce = kEnforceError;
bool auto_protect = false;

bool CheckGuardedSchemas(char **newval, void **extra, GucSource) noexcept {
  char *raw = pstrdup(*newval != nullptr ? *newval : "");
  List *names = NIL;
  if (!SplitIdentifierString(raw, ',', &names)) {
    GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
    GUC_check_errdetail("List syntax is invalid: a comma-separated list of schema names, quoted as in SQL.");
    return false;
  }
  auto *list = static_cast<SchemaList *>(malloc(offsetof(SchemaList, names) + sizeof(NameData) * list_length(names)));
  if (list == nullptr) return false;
  list->count = 0;
  ListCell *cell;
  foreach (cell, names) namestrcpy(&list->names[list->count++], static_cast<const char *>(lfirst(cell)));
  list_free(names);
  pfree(raw);
  *extra = list;
  return true;
}

void AssignGuardedSchemas(const char *, void *extra) noexcept { guarded_schemas = static_cast<SchemaList *>(extra); }

namespace {

bool Bypassed() {
  if (enforce == kEnforceOff || creating_extension || policy::RunningProtectDdl()) return true;
  // Citus's own connections run on this node what the coordinator's guard already judged
  // (shells of new tables, shards, moves), with no exemptions or scoped tables of their own here.
  if (citus::InternalBackend()) return true;
  // pg_dump and pg_restore scripts run with row_security = off; a superuser restoring a dump
  // recreates tables before their exemptions and policies, in that order.
  return !row_security && PgCall([] { return superuser(); });
}

// error: abort the DDL; warn: let it through with a WARNING.
void Violation(int sqlstate, const std::string &message, const std::string &detail, const std::string &hint) {
  if (enforce == kEnforceError) throw Error(sqlstate, message, detail, hint);
  PgCall([&] {
    ereport(WARNING, (errcode(sqlstate), errmsg("%s", message.c_str()), errdetail("%s", detail.c_str()),
                      errhint("%s", hint.c_str())));
  });
}

void CheckScopedTable(Oid relid, const std::string &name, const std::string &column) {
  auto missing = policy::MissingProtection(relid, column);
  if (missing.empty()) return;
  std::string detail;
  for (const auto &m : missing) detail += (detail.empty() ? "" : "; ") + m;
  Violation(errcodes::kProtectionWeakened, "cannot weaken the tenant protection of table " + name,
            "After this command: " + detail + ".",
            "Protected tables keep their tenant column, tenant key, forced row level security and generated "
            "policies. Run SELECT tenant.unprotect('" + name + "') first if this is intended.");
}

using bridge::RelationName;

// What the guard needs to know of a table a command made, moved or changed.
struct TableFacts {
  std::string name;  // schema.table, quoted
  std::string schema;
  bool temporary;
  std::optional<std::string> column_type;  // the configured tenant column's type, when it has one
  std::optional<std::string> scoped;       // its tenant column when scoped
  bool exempt;
  bool is_child;
};

// LATERAL lookups by oid: index probes per table, whatever the size of the catalogs.
constexpr const char *kTableFactsQuery = R"SQL(
SELECT cl.oid, pg_catalog.format('%I.%I', n.nspname, cl.relname), n.nspname, cl.relpersistence,
       (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) cl.oid AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name
           AND NOT a.attisdropped),
       (SELECT s.tenant_column FROM tenant.scoped_tables s
         WHERE s.relid OPERATOR(pg_catalog.=) cl.oid::pg_catalog.regclass),
       EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name OPERATOR(pg_catalog.=) n.nspname
                  AND e.table_name OPERATOR(pg_catalog.=) cl.relname),
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) cl.oid)
  FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS t(relid)
  JOIN pg_catalog.pg_class cl ON cl.oid OPERATOR(pg_catalog.=) t.relid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) cl.relnamespace
 WHERE cl.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}'::pg_catalog.char[])
)SQL";

std::map<Oid, TableFacts> ReadTableFacts(ddl::Event &event, const std::vector<Oid> &relids, const std::string &column) {
  std::map<Oid, TableFacts> facts;
  if (relids.empty()) return facts;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  for (const auto &r : spi.Query(kTableFactsQuery, {spi::OidArrayParam(relids), {TEXTOID, spi::TextParam(column)}}))
    facts[spi::ToOid(r.at(0))] = {*r.at(1), *r.at(2), *r.at(3) == "t", r.at(4), r.at(5), *r.at(6) == "t", *r.at(7) == "t"};
  return facts;
}

// The rule of a guarded schema, for a table made there or come there any other way (moved,
// renamed into, detached, its tenant column dropped, renamed or retyped): it has the tenant
// column, of type uuid, or an exemption. Partitions and children follow their parent; protected
// tables are kept whole by CheckScopedTable. A new table with the column is protected at once
// under auto_protect.
void CheckTenantColumn(ddl::Event &event, Oid relid, const TableFacts &t, const std::string &column, bool creating) {
  if (t.temporary || !IsGuardedSchema(t.schema.c_str()) || t.scoped || t.is_child || t.exempt) return;
  const std::string ways_out =
      "Add " + column + " uuid NOT NULL, or record a deliberate shared table with SELECT tenant.exempt('" + t.name +
      "', 'why it is shared').";
  if (!t.column_type) {
    Violation(errcodes::kTenantColumnMissing, "table " + t.name + " has no tenant column",
              "Every table in a guarded schema (pg_tenant.guarded_schemas) must carry " + policy::QuoteIdent(column) +
                  ".",
              ways_out);
  } else if (*t.column_type != "uuid") {
    Violation(errcodes::kTenantColumnMissing,
              "table " + t.name + " has a tenant column " + policy::QuoteIdent(column) + " of type " + *t.column_type +
                  ", not uuid",
              "A tenant column holds tenant.tenants.id, a uuid.", ways_out);
  } else if (creating && auto_protect) {
    spi::AsRole as_owner(event.Owner());
    policy::ProtectOnBehalf(event.Spi(), relid, column);
  }
}

void RefuseMaterializedView(Oid relid, const std::string &name) {
  std::string read;
  for (Oid scoped : policy::ScopedTablesRead(relid)) read += (read.empty() ? "" : ", ") + RelationName(scoped);
  if (read.empty()) return;
  Violation(errcodes::kProtectionWeakened, "materialized view " + name + " reads tenant-scoped tables",
            "It would copy the rows of every tenant out of " + read +
                ", and a materialized view cannot carry row level security.",
            "Use a view WITH (security_invoker = true) instead.");
}

// The commands' tables, read once; then each command is judged on its own tag and type.
void CheckCommands(ddl::Event &event) {
  const auto &commands = event.Commands();
  std::vector<Oid> relids;
  for (const auto &c : commands)
    if (OidIsValid(c.relid)) relids.push_back(c.relid);
  const std::string column = policy::DefaultTenantColumn();
  const std::map<Oid, TableFacts> facts = ReadTableFacts(event, relids, column);
  std::set<std::tuple<Oid, std::string, std::string>> seen;
  std::set<Oid> checked;
  for (const auto &c : commands) {
    auto found = facts.find(c.relid);
    if (found == facts.end() || c.in_extension || !seen.insert({c.relid, c.tag, c.object_type}).second) continue;
    const TableFacts &t = found->second;
    const bool creates_table =
        (c.tag == "CREATE TABLE" || c.tag == "CREATE TABLE AS" || c.tag == "SELECT INTO") && c.object_type == "table";
    if (creates_table) {
      CheckTenantColumn(event, c.relid, t, column, true);
    } else if (c.tag == "CREATE MATERIALIZED VIEW") {
      RefuseMaterializedView(c.relid, t.name);
    } else if (t.scoped && (c.tag == "ALTER TABLE" || c.tag == "ALTER POLICY") && checked.insert(c.relid).second) {
      CheckScopedTable(c.relid, t.name, *t.scoped);
    }
  }
}

// A scoped table and its scoped descendants (which some commands recurse to), read again.
void CheckTableTree(Oid relid) {
  std::vector<Oid> tables;
  PgCall([&] {
    ListCell *cell;
    foreach (cell, find_all_inheritors(relid, NoLock, nullptr)) tables.push_back(lfirst_oid(cell));
  });
  for (Oid table : tables)
    if (auto column = catalog::ScopedColumn(table)) CheckScopedTable(table, RelationName(table), *column);
}

// ALTER TABLE and ALTER POLICY name their table in the parse tree: check it (and its scoped
// descendants, which some subcommands recurse to) without running any SQL. Returns false when
// the statement has another shape, to fall back to the commands.
bool CheckAlteredTable(const ddl::Event &event) {
  if (!event.names_altered_table()) return false;
  const Oid relid = event.altered_relid();
  if (OidIsValid(relid)) CheckTableTree(relid);  // else renamed away: nothing left to check by that name
  return true;
}

// The common CREATE TABLE needs no SQL: a new table with the tenant column (and no auto_protect),
// or one outside the guarded schemas, is fine as it is. Returns false when the commands must
// decide (a table without the column, auto_protect, or a statement of another shape).
bool NewTableIsFine(const ddl::Event &event) {
  const Oid relid = event.created_relid();
  if (!OidIsValid(relid)) return false;
  const std::string column = policy::DefaultTenantColumn();
  return PgCall([&] {
    if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP) return true;
    if (!IsGuardedSchema(get_namespace_name(get_rel_namespace(relid)))) return true;
    const AttrNumber attnum = get_attnum(relid, column.c_str());
    return attnum != InvalidAttrNumber && get_atttype(relid, attnum) == UUIDOID && !auto_protect;
  });
}

// A protected table (or one with a protected descendant) may not get an unprotected parent:
// row level security is checked on the table a query names, so the parent would read its rows
// without its policies. ATTACH PARTITION and INHERIT, whatever the parent's schema.
void CheckLinks(const ddl::Event &event) {
  for (const auto &[parent, child] : event.linked()) {
    if (!OidIsValid(parent) || !OidIsValid(child) || catalog::ScopedColumn(parent)) continue;
    for (const policy::TreeNode &node : policy::TableTree(child)) {
      if (!catalog::ScopedColumn(node.relid)) continue;
      const std::string parent_name = RelationName(parent);
      Violation(errcodes::kProtectionWeakened,
                "cannot put protected table " + RelationName(node.relid) + " under unprotected table " + parent_name,
                "A query on " + parent_name +
                    " would read its rows without its policies: row level security is checked on the table a query names.",
                "Protect " + parent_name + " first (SELECT tenant.protect('" + parent_name +
                    "')), or keep the tables apart.");
      break;
    }
  }
}

// Tables that came to be in a guarded schema other than by CREATE, or lost their tenant column
// there: moved in (SET SCHEMA), their schema renamed to a guarded name, detached from a parent
// (whose columns they had), or their tenant column dropped, renamed or retyped.
void CheckEntering(ddl::Event &event) {
  const std::string column = policy::DefaultTenantColumn();
  std::vector<Oid> relids = event.unlinked();
  if (OidIsValid(event.moved_relid())) relids.push_back(event.moved_relid());
  for (const std::string &changed : event.changed_columns())
    if (changed == column && OidIsValid(event.altered_relid())) relids.push_back(event.altered_relid());
  if (!event.renamed_schema().empty() && IsGuardedSchema(event.renamed_schema().c_str())) {
    for (const auto &r : event.Spi().Query(
             "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) "
             "c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name ORDER BY c.oid",
             {{TEXTOID, spi::TextParam(event.renamed_schema())}}))
      relids.push_back(spi::ToOid(r.at(0)));
  }
  relids.erase(std::remove(relids.begin(), relids.end(), InvalidOid), relids.end());
  for (const auto &[relid, facts] : ReadTableFacts(event, relids, column))
    CheckTenantColumn(event, relid, facts, column, false);
}

// A rule on a protected table can copy or redirect every tenant's rows past row level security.
void CheckRule(const ddl::Event &event) {
  const Oid relid = event.rule_relid();
  if (!OidIsValid(relid) || !catalog::ScopedColumn(relid)) return;
  const std::string name = RelationName(relid);
  Violation(errcodes::kProtectionWeakened, "cannot create a rule on protected table " + name,
            "A rule can copy or redirect every tenant's rows past row level security.",
            "Use a trigger written for the purpose, or unprotect the table first (SELECT tenant.unprotect('" + name +
                "')).");
}

}  // namespace

bool IsGuardedSchema(const char *schema) {
  if (guarded_schemas == nullptr || schema == nullptr) return false;
  for (int i = 0; i < guarded_schemas->count; ++i)
    if (strcmp(NameStr(guarded_schemas->names[i]), schema) == 0) return true;
  return false;
}

// On a Citus node, a shard of a protected table altered by a user (not by Citus): the shard
// keeps row level security enabled and forced, and both generated policies (Citus copies them
// to every shard, and the DDL door makes the guard policy restrictive there again).
void CheckShard(ddl::Event &event, Oid shard) {
  // From the relcache: Citus hides shards from queries on pg_class.
  const bool rls_forced = PgCall([&] {
    Relation rel = relation_open(shard, AccessShareLock);
    const bool forced = rel->rd_rel->relrowsecurity && rel->rd_rel->relforcerowsecurity;
    relation_close(rel, AccessShareLock);
    return forced;
  });
  spi::Session &spi = event.Spi();
  const auto rows = spi.Query(R"SQL(
SELECT pg_catalog.count(*) FILTER (WHERE (p.polname OPERATOR(pg_catalog.=) 'tenant_isolation' AND p.polpermissive)
                                      OR (p.polname OPERATOR(pg_catalog.=) 'tenant_isolation_guard' AND NOT p.polpermissive)),
       pg_catalog.count(*)
  FROM pg_catalog.pg_policy p
 WHERE p.polrelid OPERATOR(pg_catalog.=) $1
   AND p.polname OPERATOR(pg_catalog.=) ANY (ARRAY['tenant_isolation', 'tenant_isolation_guard'])
)SQL",
                              {{OIDOID, ObjectIdGetDatum(shard)}});
  const bool generated = !rows.empty() && rows[0][1] != std::optional<std::string>("0");
  const bool complete = !rows.empty() && rows[0][0] == std::optional<std::string>("2");
  if (!generated || (complete && rls_forced)) return;
  Violation(errcodes::kProtectionWeakened, "cannot weaken shard " + RelationName(shard) + " of a protected Citus table",
            "Its row level security must stay enabled and forced, with both of pg_tenant's policies.",
            "Change the distributed table on the coordinator; Citus applies it to every shard.");
}

void AfterCommand(ddl::Event &event) {
  const CommandTag tag = event.tag();
  const bool creates = tag == CMDTAG_CREATE_TABLE || tag == CMDTAG_CREATE_TABLE_AS || tag == CMDTAG_SELECT_INTO;
  const bool alters = tag == CMDTAG_ALTER_TABLE || tag == CMDTAG_ALTER_POLICY;
  if (!creates && !alters && tag != CMDTAG_CREATE_SCHEMA && tag != CMDTAG_CREATE_MATERIALIZED_VIEW &&
      tag != CMDTAG_CREATE_RULE && tag != CMDTAG_ALTER_SCHEMA && tag != CMDTAG_CREATE_TRIGGER)
    return;
  if (Bypassed()) return;
  if (tag == CMDTAG_CREATE_RULE) return CheckRule(event);
  // CREATE OR REPLACE TRIGGER tenant_key can put a trigger that checks nothing in the key's place.
  if (tag == CMDTAG_CREATE_TRIGGER) {
    if (OidIsValid(event.trigger_relid())) CheckTableTree(event.trigger_relid());
    return;
  }
  // Before any SQL of the guard's (which pins search_path): a SQL function's body is resolved
  // with the search_path the statement ran with.
  if (tag == CMDTAG_CREATE_MATERIALIZED_VIEW && OidIsValid(event.created_relid()))
    return RefuseMaterializedView(event.created_relid(), RelationName(event.created_relid()));
  CheckLinks(event);
  CheckEntering(event);
  if (tag == CMDTAG_ALTER_SCHEMA) return;
  if (creates && NewTableIsFine(event)) return;
  // A shard Citus creates in this backend (a placement on the coordinator): its table was judged.
  if (creates && OidIsValid(event.created_relid()) && citus::IsKnownShard(event.created_relid())) return;
  if (alters && OidIsValid(event.altered_relid()) && citus::Installed() && !catalog::IsScoped(event.altered_relid()) &&
      citus::IsKnownShard(event.altered_relid()))
    return CheckShard(event, event.altered_relid());
  if (alters && CheckAlteredTable(event)) return;
  CheckCommands(event);
}

void AfterDrop(ddl::Event &event) {
  const CommandTag tag = event.tag();
  if ((tag != CMDTAG_ALTER_TABLE && tag != CMDTAG_DROP_POLICY && tag != CMDTAG_DROP_TRIGGER) || Bypassed()) return;
  std::vector<std::string> schemas, tables;
  for (const auto &d : event.DroppedObjects()) {
    if (d.object_type == "policy" || d.object_type == "table constraint" || d.object_type == "table column" ||
        d.object_type == "trigger") {
      schemas.push_back(d.schema);
      tables.push_back(d.name);
    }
  }
  if (tables.empty()) return;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  auto rows = spi.Query(R"SQL(
SELECT DISTINCT cl.oid, pg_catalog.format('%I.%I', n.nspname, cl.relname), s.tenant_column
  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS d(schema_name, table_name)
  JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) d.schema_name
  JOIN pg_catalog.pg_class cl ON cl.relnamespace OPERATOR(pg_catalog.=) n.oid
                             AND cl.relname OPERATOR(pg_catalog.=) d.table_name
  JOIN tenant.scoped_tables s ON s.relid OPERATOR(pg_catalog.=) cl.oid::pg_catalog.regclass
)SQL",
                        {spi::TextArrayParam(schemas), spi::TextArrayParam(tables)});
  for (const auto &r : rows) CheckScopedTable(spi::ToOid(r.at(0)), *r.at(1), *r.at(2));
}

}  // namespace pg_tenant::guard

using namespace pg_tenant;

// tenant.guarded_schemas() returns name[]: pg_tenant.guarded_schemas as the guard reads it.
PG_TENANT_FUNCTION(pg_tenant_guarded_schemas) {
  return bridge::PgCall([] {
    const int count = guard::guarded_schemas != nullptr ? guard::guarded_schemas->count : 0;
    Datum *names = static_cast<Datum *>(palloc(sizeof(Datum) * (count + 1)));
    for (int i = 0; i < count; ++i) names[i] = NameGetDatum(&guard::guarded_schemas->names[i]);
    return PointerGetDatum(construct_array(names, count, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
  });
}
