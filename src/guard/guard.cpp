// The DDL guard. Two event triggers call it:
//  - ddl_command_end: a new table (CREATE TABLE [AS], SELECT INTO, also inside CREATE SCHEMA,
//    DO blocks and functions) in a guarded schema must have the tenant column or an exemption;
//    with auto_protect it is protected at once. A materialized view may not read a scoped table.
//    After ALTER TABLE / ALTER POLICY on a scoped table the catalogs are read again (the command
//    tag says nothing about what changed) and anything protect made that is gone is an error.
//  - sql_drop: dropping a scoped table's tenant column, foreign key or generated policy.
// tenant.protect()/unprotect() themselves, extension scripts, and a superuser restoring a dump
// (pg_dump scripts run with row_security = off) pass through.
#include "guard/guard.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/spi.hpp"
#include "policy/generator.hpp"
#include "policy/protect.hpp"

#include <set>
#include <string>
#include <vector>

namespace pg_tenant::guard {
namespace {

using bridge::PgCall;

enum EnforceMode { kEnforceError, kEnforceWarn, kEnforceOff };

const struct config_enum_entry kEnforceOptions[] = {
    {"error", kEnforceError, false}, {"warn", kEnforceWarn, false}, {"off", kEnforceOff, false}, {nullptr, 0, false}};

char *guarded_schemas = nullptr;
int enforce = kEnforceError;
bool auto_protect = false;

constexpr const char *kTenantColumn = "tenant_id";

bool Bypassed() {
  if (enforce == kEnforceOff || creating_extension || policy::RunningProtectDdl()) return true;
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
            "Protected tables keep their tenant column, foreign key, forced row level security and generated "
            "policies. Run SELECT tenant.unprotect('" + name + "') first if this is intended.");
}

// One row per table a DDL command touched (policies map to their table).
constexpr const char *kCommandsQuery = R"SQL(
WITH commands AS MATERIALIZED (
  SELECT c.command_tag, c.object_type, c.in_extension,
         CASE WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass THEN c.objid
              WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
              THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) c.objid)
         END AS relid
    FROM pg_catalog.pg_event_trigger_ddl_commands() c)
-- LATERAL lookups by oid: index probes per command, whatever the size of the catalogs.
SELECT DISTINCT cmd.command_tag, cmd.object_type, t.*, cmd.in_extension, t2.*
  FROM commands cmd
  CROSS JOIN LATERAL (
       SELECT cl.oid, pg_catalog.format('%I.%I', n.nspname, cl.relname), cl.relpersistence, cl.relkind,
              EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) cl.oid
                         AND a.attname OPERATOR(pg_catalog.=) 'tenant_id' AND NOT a.attisdropped),
              (SELECT s.tenant_column FROM tenant.scoped_tables s
                WHERE s.relid OPERATOR(pg_catalog.=) cl.oid::pg_catalog.regclass),
              EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name OPERATOR(pg_catalog.=) n.nspname
                         AND e.table_name OPERATOR(pg_catalog.=) cl.relname),
              n.nspname OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array(pg_catalog.replace(
                  pg_catalog.current_setting('pg_tenant.guarded_schemas'), ' ', ''), ','))
         FROM pg_catalog.pg_class cl
         JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) cl.relnamespace
        WHERE cl.oid OPERATOR(pg_catalog.=) cmd.relid) t
  CROSS JOIN LATERAL (
       SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) t.oid),
              (SELECT pg_catalog.string_agg(DISTINCT sd.relid::pg_catalog.text, ', ')
                 FROM pg_catalog.pg_rewrite rw
                 JOIN pg_catalog.pg_depend d
                      ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                     AND d.objid OPERATOR(pg_catalog.=) rw.oid
                 JOIN tenant.scoped_tables sd ON sd.relid OPERATOR(pg_catalog.=) d.refobjid::pg_catalog.regclass
                WHERE rw.ev_class OPERATOR(pg_catalog.=) t.oid)) t2
)SQL";

void OnDdlCommandEnd() {
  spi::PinnedSearchPath pinned;
  spi::Session spi;
  {
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    std::set<Oid> checked;
    for (const auto &r : spi.Query(kCommandsQuery)) {
      const std::string tag = *r.at(0), type = *r.at(1), name = *r.at(3);
      const Oid relid = spi::ToOid(r.at(2));
      const bool temporary = *r.at(4) == "t", has_column = *r.at(6) == "t", scoped = r.at(7).has_value();
      const bool exempt = *r.at(8) == "t", guarded = r.at(9) && *r.at(9) == "t", in_extension = *r.at(10) == "t";
      const bool is_child = *r.at(11) == "t";
      if (in_extension) continue;
      const bool creates_table = (tag == "CREATE TABLE" || tag == "CREATE TABLE AS" || tag == "SELECT INTO") &&
                                 type == "table" && !temporary;
      if (creates_table && guarded && !scoped && !is_child) {
        if (!has_column && !exempt) {
          Violation(errcodes::kTenantColumnMissing, "table " + name + " has no tenant column",
                    "Every table in a guarded schema (pg_tenant.guarded_schemas) must carry \"tenant_id\".",
                    "Add tenant_id uuid NOT NULL, or record a deliberate shared table with SELECT tenant.exempt('" +
                        name + "', 'why it is shared').");
        } else if (has_column && auto_protect) {
          policy::ProtectOnBehalf(spi, relid, kTenantColumn);
        }
      } else if (tag == "CREATE MATERIALIZED VIEW" && r.at(12)) {
        Violation(errcodes::kProtectionWeakened, "materialized view " + name + " reads tenant-scoped tables",
                  "It would copy the rows of every tenant out of " + *r.at(12) +
                      ", and a materialized view cannot carry row level security.",
                  "Use a view WITH (security_invoker = true) instead.");
      } else if (scoped && (tag == "ALTER TABLE" || tag == "ALTER POLICY") && checked.insert(relid).second) {
        CheckScopedTable(relid, name, *r.at(7));
      }
    }
  }
  spi.Finish();
}

// ALTER TABLE and ALTER POLICY name their table in the parse tree: check it (and its scoped
// descendants, which some subcommands recurse to) without running any SQL. Returns false when
// the statement has another shape, to fall back to the catalog query.
bool CheckAlteredTable(Node *parsetree) {
  RangeVar *relation = nullptr;
  if (IsA(parsetree, AlterTableStmt))
    relation = reinterpret_cast<AlterTableStmt *>(parsetree)->relation;
  else if (IsA(parsetree, AlterPolicyStmt))
    relation = reinterpret_cast<AlterPolicyStmt *>(parsetree)->table;
  else if (IsA(parsetree, RenameStmt))
    relation = reinterpret_cast<RenameStmt *>(parsetree)->relation;
  if (relation == nullptr) return false;
  std::vector<Oid> tables;
  PgCall([&] {
    Oid relid = RangeVarGetRelid(relation, NoLock, true);  // a renamed or moved table: nothing to check
    if (!OidIsValid(relid)) return;
    ListCell *cell;
    foreach (cell, find_all_inheritors(relid, NoLock, nullptr)) tables.push_back(lfirst_oid(cell));
  });
  for (Oid table : tables) {
    if (auto column = policy::ScopedColumn(table)) {
      const char *name = PgCall([&] {
        return quote_qualified_identifier(get_namespace_name(get_rel_namespace(table)), get_rel_name(table));
      });
      CheckScopedTable(table, name, *column);
    }
  }
  return true;
}

// The common CREATE TABLE needs no SQL: a new table with the tenant column (and no auto_protect),
// or one outside the guarded schemas, is fine as it is. Returns false when the catalog query
// must decide (a table without the column, auto_protect, or a statement of another shape).
bool NewTableIsFine(Node *parsetree) {
  RangeVar *relation = nullptr;
  if (IsA(parsetree, CreateStmt))
    relation = reinterpret_cast<CreateStmt *>(parsetree)->relation;
  else if (IsA(parsetree, CreateTableAsStmt) && reinterpret_cast<CreateTableAsStmt *>(parsetree)->objtype == OBJECT_TABLE)
    relation = reinterpret_cast<CreateTableAsStmt *>(parsetree)->into->rel;
  if (relation == nullptr) return false;
  return PgCall([&] {
    Oid relid = RangeVarGetRelid(relation, NoLock, true);
    if (!OidIsValid(relid) || get_rel_persistence(relid) == RELPERSISTENCE_TEMP) return OidIsValid(relid);
    const char *schema = get_namespace_name(get_rel_namespace(relid));
    char *list = pstrdup(guarded_schemas != nullptr ? guarded_schemas : "");
    List *names = NIL;
    if (!SplitIdentifierString(list, ',', &names)) return false;
    bool guarded = false;
    ListCell *cell;
    foreach (cell, names) guarded = guarded || strcmp(static_cast<const char *>(lfirst(cell)), schema) == 0;
    if (!guarded) return true;
    return get_attnum(relid, kTenantColumn) != InvalidAttrNumber && !auto_protect;
  });
}

void OnSqlDrop() {
  spi::PinnedSearchPath pinned;
  spi::Session spi;
  {
    spi::AsRole as_owner(spi::ExtensionOwner(spi));
    auto rows = spi.Query(R"SQL(
SELECT DISTINCT cl.oid, pg_catalog.format('%I.%I', n.nspname, cl.relname), s.tenant_column
  FROM pg_catalog.pg_event_trigger_dropped_objects() d
  CROSS JOIN LATERAL (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
                       WHERE n.nspname OPERATOR(pg_catalog.=) d.address_names[1]) n
  CROSS JOIN LATERAL (SELECT cl.oid, cl.relname FROM pg_catalog.pg_class cl
                       WHERE cl.relnamespace OPERATOR(pg_catalog.=) n.oid
                         AND cl.relname OPERATOR(pg_catalog.=) d.address_names[2]) cl
  JOIN tenant.scoped_tables s ON s.relid OPERATOR(pg_catalog.=) cl.oid::pg_catalog.regclass
 WHERE d.object_type OPERATOR(pg_catalog.=) ANY (ARRAY['policy', 'table constraint', 'table column'])
)SQL");
    for (const auto &r : rows) CheckScopedTable(spi::ToOid(r.at(0)), *r.at(1), *r.at(2));
  }
  spi.Finish();
}

void RequireEventTrigger(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "the pg_tenant guard must be called as an event trigger");
}

}  // namespace

void Init() {
  DefineCustomStringVariable("pg_tenant.guarded_schemas",
                             "Schemas where every table must have the tenant column or be exempted.",
                             "A comma-separated list of schema names, checked by the DDL guard and tenant.audit().",
                             &guarded_schemas, "public", PGC_SUSET, GUC_LIST_INPUT, nullptr, nullptr, nullptr);
  DefineCustomEnumVariable("pg_tenant.enforce", "What the DDL guard does with a violation: error, warn or off.",
                           nullptr, &enforce, kEnforceError, kEnforceOptions, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("pg_tenant.auto_protect",
                           "Protect each new table with a tenant column in a guarded schema, in the same transaction.",
                           nullptr, &auto_protect, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
}

}  // namespace pg_tenant::guard

using namespace pg_tenant;

// tenant._guard_ddl_command_end() and tenant._guard_sql_drop(): the guard's event triggers.
PG_TENANT_FUNCTION(pg_tenant_guard_ddl_command_end) {
  guard::RequireEventTrigger(fcinfo);
  if (guard::Bypassed()) PG_RETURN_VOID();
  auto *event = reinterpret_cast<EventTriggerData *>(fcinfo->context);
  const bool alters = event->tag == CMDTAG_ALTER_TABLE || event->tag == CMDTAG_ALTER_POLICY;
  const bool creates = event->tag == CMDTAG_CREATE_TABLE || event->tag == CMDTAG_CREATE_TABLE_AS ||
                       event->tag == CMDTAG_SELECT_INTO;
  if (creates && guard::NewTableIsFine(event->parsetree)) PG_RETURN_VOID();
  if (!alters || !guard::CheckAlteredTable(event->parsetree)) guard::OnDdlCommandEnd();
  PG_RETURN_VOID();
}

PG_TENANT_FUNCTION(pg_tenant_guard_sql_drop) {
  guard::RequireEventTrigger(fcinfo);
  if (!guard::Bypassed()) guard::OnSqlDrop();
  PG_RETURN_VOID();
}
