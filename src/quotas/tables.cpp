// Which tables count for a row quota, kept in step with DDL (0.11.0: C++, was PL/pgSQL). A quota's
// root (the table tenant.limit_rows was called for) and each of its partitions and children carry
// the four quota triggers and a row of tenant.row_quotas. The DDL door's steps follow the table
// tree with the policy capability's tree engine (policy/protection.hpp: TableTree, LinksOf,
// CompareTree), the same that protects new children: a partition or child that joins a counted
// tree gets the triggers and its rows are added; one that leaves loses them and its rows are
// subtracted; a counted root may not become a child; after a drop, the resource is recounted.
//
// Whose rights (README "Security model"): the steps run as the extension owner (spi::AsRole, as
// _row_quota_after_ddl/_after_drop ran before), after the DDL itself passed the user's rights.
// As that owner they read and write tenant.row_quotas and tenant.row_counts, run fixed DDL on
// the user's table (CREATE TRIGGER, ALTER TABLE ... ENABLE ALWAYS TRIGGER, DROP TRIGGER: no user
// code; it passes the DDL door nested, whose steps are pg_tenant's), and count an attached or
// detached table's existing rows: SELECT of the uuid tenant column, grouped with pg_catalog's
// uuid operators, row_security off (a policy would be an error, never run); no trigger, cast,
// default or index expression of the table's owner runs. tenant._row_quota_recount (after a drop)
// reads the counted tables the same way. The ledger's Apply creates missing counters as the
// extension owner (ledger.hpp).
#include "quotas/quotas.hpp"

#include "quotas/ledger.hpp"

#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "policy/generator.hpp"
#include "policy/protection.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pg_tenant::quotas {
namespace {

using bridge::PgCall;
using policy::QuoteIdent;

// The four triggers of a counted table.
struct QuotaTrigger {
  const char *name;
  const char *event;
  const char *referencing;
  const char *function;  // in schema tenant, no arguments
};
constexpr QuotaTrigger kTriggers[] = {
    {"pg_tenant_row_quota_insert", "INSERT", "REFERENCING NEW TABLE AS pg_tenant_new", "_row_quota_inserted"},
    {"pg_tenant_row_quota_update", "UPDATE", "REFERENCING OLD TABLE AS pg_tenant_old NEW TABLE AS pg_tenant_new",
     "_row_quota_updated"},
    {"pg_tenant_row_quota_delete", "DELETE", "REFERENCING OLD TABLE AS pg_tenant_old", "_row_quota_deleted"},
    {"pg_tenant_row_quota_truncate", "TRUNCATE", "", "_row_quota_truncated"},
};

// The trigger functions' OIDs, in kTriggers' order (the catalog's, cached).
std::vector<Oid> TriggerFunctions() {
  return {catalog::FunctionId(catalog::Func::kRowQuotaInserted, false),
          catalog::FunctionId(catalog::Func::kRowQuotaUpdated, false),
          catalog::FunctionId(catalog::Func::kRowQuotaDeleted, false),
          catalog::FunctionId(catalog::Func::kRowQuotaTruncated, false)};
}

// A table as regclass prints it (qualified unless visible in the pinned search_path).
std::string RegclassText(Oid relid) {
  return PgCall([&] { return std::string(DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)))); });
}

struct TriggerRow {
  std::string name;
  Oid function;
  bool always;
};

// The table's quota triggers, by name.
std::vector<TriggerRow> QuotaTriggersOf(spi::Session &spi, Oid relid, const std::vector<Oid> &functions) {
  std::vector<TriggerRow> triggers;
  for (const auto &r : spi.Query("SELECT g.tgname::pg_catalog.text, g.tgfoid, g.tgenabled OPERATOR(pg_catalog.=) 'A' "
                                 "FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) $1 "
                                 "AND g.tgfoid OPERATOR(pg_catalog.=) ANY ($2) ORDER BY g.tgname",
                                 {{OIDOID, ObjectIdGetDatum(relid)}, spi::OidArrayParam(functions)}))
    triggers.push_back({*r.at(0), spi::ToOid(r.at(1)), r.at(2) == spi::Value("t")});
  return triggers;
}

// The four triggers, created if missing and made ENABLE ALWAYS (idempotent).
void Install(spi::Session &spi, Oid relid, const std::string &resource, const std::string &column) {
  const std::vector<Oid> functions = TriggerFunctions();
  const std::string table = RegclassText(relid);
  const std::string arguments = PgCall([&] {
    return std::string(quote_literal_cstr(resource.c_str())) + ", " + quote_literal_cstr(column.c_str());
  });
  const auto existing = QuotaTriggersOf(spi, relid, functions);
  for (size_t i = 0; i < functions.size(); ++i) {
    if (std::any_of(existing.begin(), existing.end(), [&](const TriggerRow &t) { return t.function == functions[i]; }))
      continue;
    const QuotaTrigger &t = kTriggers[i];
    spi.Run("CREATE TRIGGER " + QuoteIdent(t.name) + " AFTER " + t.event + " ON " + table + " " + t.referencing +
            " FOR EACH STATEMENT EXECUTE FUNCTION tenant." + t.function + "(" + arguments + ")");
  }
  std::string enable;
  for (const auto &t : QuotaTriggersOf(spi, relid, functions))
    if (!t.always) enable += (enable.empty() ? "" : ", ") + std::string("ENABLE ALWAYS TRIGGER ") + QuoteIdent(t.name);
  if (!enable.empty()) spi.Run("ALTER TABLE " + table + " " + enable);
}

void Uninstall(spi::Session &spi, Oid relid) {
  const std::string table = RegclassText(relid);
  for (const auto &t : QuotaTriggersOf(spi, relid, TriggerFunctions()))
    spi.Run("DROP TRIGGER " + QuoteIdent(t.name) + " ON " + table);
}

// Counting reads a fresh snapshot after the triggers exist: only READ COMMITTED gives one.
void RequireReadCommitted(const std::string &what) {
  if (XactIsoLevel == XACT_READ_COMMITTED) return;
  std::string level = PgCall([] { return std::string(GetConfigOption("transaction_isolation", false, false)); });
  std::transform(level.begin(), level.end(), level.begin(), [](unsigned char c) { return std::toupper(c); });
  throw Error(ERRCODE_INVALID_TRANSACTION_STATE, what + " must run in a READ COMMITTED transaction",
              "Its count of the existing rows needs a snapshot taken after the quota triggers exist; this transaction is " +
                  level + ".",
              "Run it in its own READ COMMITTED transaction.");
}

// A superuser restoring a dump (pg_dump scripts run with row_security = off): the triggers and
// the catalog arrive in separate steps, so the trigger checks step aside. The role asked is the
// caller's (SET ROLE, else the session user), not the extension owner the steps run as.
bool Restoring() {
  return !row_security && PgCall([] { return superuser_arg(GetOuterUserId()); });
}

// row_security = off for a scope (a GUC nest level, as a function's SET clause).
class RowSecurityOff {
 public:
  RowSecurityOff()
      : nest_level_(PgCall([] {
          int level = NewGUCNestLevel();
          (void)set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
          return level;
        })) {}
  ~RowSecurityOff() {
    if (std::uncaught_exceptions() == 0) AtEOXact_GUC(true, nest_level_);  // an error's abort pops it too
  }
  RowSecurityOff(const RowSecurityOff &) = delete;
  RowSecurityOff &operator=(const RowSecurityOff &) = delete;

 private:
  int nest_level_;
};

// Rows per tenant of one table only (not its partitions and children), times sign.
Deltas CountRows(spi::Session &spi, Oid relid, const std::string &column, int64 sign) {
  const std::string c = "r." + QuoteIdent(column);
  std::vector<spi::Row> rows;
  {
    RowSecurityOff off;
    rows = spi.QueryOnce("SELECT " + c + "::pg_catalog.text, pg_catalog.count(*) FROM ONLY " + RegclassText(relid) +
                         " r WHERE " + c + " IS NOT NULL GROUP BY " + c);
  }
  Deltas deltas;
  for (const auto &r : rows)
    if (auto id = ParseUuid(*r.at(0))) deltas[*id] += sign * std::stoll(*r.at(1));
  return deltas;
}

// Any table with a row quota? (A heap scan of tenant.row_quotas that stops at the first row.)
bool AnyRowQuota() {
  const Oid row_quotas = catalog::RelationId(catalog::Rel::kRowQuotas);
  if (!OidIsValid(row_quotas)) return false;
  return PgCall([row_quotas] {
    Relation rel = table_open(row_quotas, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    const bool any = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return any;
  });
}

// Does the table count rows for a quota (root or member)? One probe of tenant.row_quotas' key.
bool CountsRows(Oid relid) {
  const Oid row_quotas = catalog::RelationId(catalog::Rel::kRowQuotas);
  const Oid index = catalog::RelationId(catalog::Rel::kRowQuotasPkey);
  if (!OidIsValid(row_quotas) || !OidIsValid(index)) return false;
  return PgCall([&] {
    Relation rel = table_open(row_quotas, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(rel, index, true, nullptr, 1, &key);
    const bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
  });
}

// The bookkeeping concerns a touched table that counts rows, or whose parent or child does (a
// new, attached or detached member; a counted table becoming a child).
bool ConcernsQuotas(const std::vector<Oid> &touched) {
  for (Oid relid : touched)
    if (CountsRows(relid)) return true;
  for (const policy::Link &link : policy::LinksOf(touched))
    if (CountsRows(link.parent) || CountsRows(link.child)) return true;
  return false;
}

struct Quota {
  std::string resource;
  std::string column;
  bool is_root = false;          // a row with root IS NULL
  std::vector<Oid> members;      // rows with this root
  std::map<Oid, std::string> member_columns;
  std::map<Oid, std::string> member_resources;
};

// After CREATE TABLE / ALTER TABLE (touched: the tables the commands touched). DDL run here
// passes the door again: every step is idempotent, and a row of tenant.row_quotas is what says
// a table's rows were counted.
void FollowTrees(spi::Session &spi, const std::vector<Oid> &touched) {
  std::map<Oid, Quota> quotas;  // by root
  std::set<Oid> recorded;
  for (const auto &r : spi.Query("SELECT q.relid::pg_catalog.oid, q.root::pg_catalog.oid, q.resource, "
                                 "q.tenant_column::pg_catalog.text FROM tenant.row_quotas q")) {
    const Oid relid = spi::ToOid(r.at(0));
    recorded.insert(relid);
    if (!r.at(1)) {
      Quota &q = quotas[relid];
      q.is_root = true;
      q.resource = *r.at(2);
      q.column = *r.at(3);
    } else {
      Quota &q = quotas[spi::ToOid(r.at(1))];
      q.members.push_back(relid);
      q.member_resources[relid] = *r.at(2);
      q.member_columns[relid] = *r.at(3);
    }
  }
  // A counted table may not become a partition or child.
  for (const auto &[root, q] : quotas) {
    if (!q.is_root) continue;
    for (const policy::Link &link : policy::LinksOf({root}))
      if (link.child == root)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "table " + RegclassText(root) + " counts rows for \"" + q.resource +
                        "\" and cannot become a partition or child of " + RegclassText(link.parent),
                    "Statements on the parent would not fire its quota triggers.",
                    "Run tenant.unlimit_rows() on it first; tenant.limit_rows() on the parent counts every partition.");
  }
  std::vector<std::pair<Oid, const Quota *>> left;
  for (const auto &[root, q] : quotas) {
    const Oid top = root;  // (a structured binding cannot be captured in C++17)
    if (!PgCall([&] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(top)); })) continue;
    const policy::TreeChanges changes = policy::CompareTree(root, q.members);
    for (Oid member : changes.left) left.emplace_back(member, &q);
    if (!q.is_root) continue;
    // New members: the triggers, the row, and the rows they hold.
    for (const policy::TreeNode &node : changes.joined) {
      if (recorded.count(node.relid) != 0) continue;  // counted with another root (multiple inheritance)
      Install(spi, node.relid, q.resource, q.column);
      const bool inserted = !spi.Query("INSERT INTO tenant.row_quotas (relid, resource, tenant_column, root) "
                                       "VALUES ($1, $2, $3::pg_catalog.name, $4) "
                                       "ON CONFLICT ON CONSTRAINT row_quotas_pkey DO NOTHING RETURNING 1",
                                       {{OIDOID, ObjectIdGetDatum(node.relid)},
                                        {TEXTOID, spi::TextParam(q.resource)},
                                        {TEXTOID, spi::TextParam(q.column)},
                                        {OIDOID, ObjectIdGetDatum(root)}})
                                 .empty();
      if (!inserted) continue;
      const Deltas counts = CountRows(spi, node.relid, q.column, 1);
      if (counts.empty()) continue;
      RequireReadCommitted("attaching a table with rows to a counted table");
      Apply(q.resource, counts, false);
    }
  }
  // Members that left the tree (DETACH PARTITION, NO INHERIT) but still exist.
  for (const auto &[member, q] : left) {
    const bool deleted = !spi.Query("DELETE FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) $1 RETURNING 1",
                                    {{OIDOID, ObjectIdGetDatum(member)}})
                              .empty();
    if (!deleted) continue;
    Deltas counts = CountRows(spi, member, q->member_columns.at(member), -1);
    if (!counts.empty()) Apply(q->member_resources.at(member), counts, false);
    Uninstall(spi, member);
  }
  if (Restoring()) return;
  const auto disabled = spi.Query(
      "SELECT q.relid::pg_catalog.text, g.tgname::pg_catalog.text FROM tenant.row_quotas q "
      "JOIN pg_catalog.pg_trigger g ON g.tgrelid OPERATOR(pg_catalog.=) q.relid "
      "WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) AND g.tgfoid OPERATOR(pg_catalog.=) ANY ($2) "
      "AND g.tgenabled OPERATOR(pg_catalog.<>) 'A' LIMIT 1",
      {spi::OidArrayParam(touched), spi::OidArrayParam(TriggerFunctions())});
  if (!disabled.empty())
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "trigger " + *disabled[0].at(1) + " of table " + *disabled[0].at(0) + " must stay ENABLE ALWAYS",
                "The table's row quota is kept by it.", "tenant.unlimit_rows() removes the quota with its triggers.");
}

// After a drop (dropped: the tables it dropped): a dropped counted table leaves the catalog (its
// counts go with the last table of the resource, or are recounted from the others); a dropped
// partition's rows are gone without DELETE triggers, so its resource is recounted; the quota
// triggers of a table still counted cannot be dropped alone.
void ForgetDropped(spi::Session &spi, const std::vector<Oid> &dropped) {
  if (!dropped.empty()) {
    std::set<std::string> resources;
    for (const auto &r : spi.Query("DELETE FROM tenant.row_quotas q WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) "
                                   "ANY ($1) OR q.root::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) "
                                   "RETURNING q.relid::pg_catalog.oid, q.resource",
                                   {spi::OidArrayParam(dropped)})) {
      resources.insert(*r.at(1));
      const Oid relid = spi::ToOid(r.at(0));
      if (PgCall([&] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)); }))
        Uninstall(spi, relid);  // a child that outlived its dropped root
    }
    for (const std::string &resource : resources) {
      const std::vector<spi::Param> param = {{TEXTOID, spi::TextParam(resource)}};
      if (!spi.Query("SELECT 1 FROM tenant.row_quotas q WHERE q.resource OPERATOR(pg_catalog.=) $1 LIMIT 1", param).empty())
        spi.Execute("SELECT tenant._row_quota_recount($1)", param);
      else
        spi.Execute("DELETE FROM tenant.row_counts c WHERE c.resource OPERATOR(pg_catalog.=) $1", param);
    }
  }
  if (Restoring()) return;
  const auto partial = spi.Query(
      "SELECT q.relid::pg_catalog.text FROM tenant.row_quotas q WHERE (SELECT pg_catalog.count(*) FROM "
      "pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) q.relid AND g.tgfoid OPERATOR(pg_catalog.=) ANY ($1)) "
      "OPERATOR(pg_catalog.<) 4 LIMIT 1",
      {spi::OidArrayParam(TriggerFunctions())});
  if (!partial.empty())
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the row quota triggers of table " + *partial[0].at(0) + " cannot be dropped", "",
                "tenant.unlimit_rows() removes the quota with its triggers.");
}

Oid RelArgument(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "table must not be NULL");
  return PG_GETARG_OID(0);
}

std::string TextArgument(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "arguments must not be NULL");
  return PgCall([&] { return std::string(text_to_cstring(PG_GETARG_TEXT_PP(n))); });
}

}  // namespace

void AfterCommand(ddl::Event &event) {
  if ((event.tag() != CMDTAG_CREATE_TABLE && event.tag() != CMDTAG_ALTER_TABLE) || !AnyRowQuota()) return;
  const std::vector<Oid> touched = event.TouchedTables();
  if (touched.empty() || !ConcernsQuotas(touched)) return;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  FollowTrees(spi, touched);
}

void AfterDrop(ddl::Event &event) {
  if (!AnyRowQuota()) return;
  // Only the drop of a counted table or of a trigger (a quota trigger cannot go alone) concerns it.
  std::vector<Oid> dropped;
  bool concerned = false;
  for (const auto &d : event.DroppedObjects()) {
    if (d.classid == RelationRelationId && d.objsubid == 0) {
      dropped.push_back(d.objid);
      concerned = concerned || CountsRows(d.objid);
    }
    concerned = concerned || d.classid == TriggerRelationId;
  }
  if (!concerned) return;
  spi::Session &spi = event.Spi();
  spi::AsRole as_owner(event.Owner());
  ForgetDropped(spi, dropped);
}

}  // namespace pg_tenant::quotas

using namespace pg_tenant;
using namespace pg_tenant::quotas;

// tenant._row_quota_install(rel regclass, resource text, tenant_column name): limit_rows' way
// to the triggers (as its caller: limit_rows is SECURITY DEFINER).
PG_TENANT_FUNCTION(pg_tenant_row_quota_install) {
  const Oid relid = RelArgument(fcinfo);
  const std::string resource = TextArgument(fcinfo, 1);
  if (PG_ARGISNULL(2)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "arguments must not be NULL");
  const std::string column = NameStr(*PG_GETARG_NAME(2));
  (void)spi::RelationOwner(relid);  // 42P01 for a regclass naming no table
  spi::PinnedSearchPath pinned;
  spi::Session spi;
  Install(spi, relid, resource, column);
  spi.Finish();
  PG_RETURN_VOID();
}

// tenant._row_quota_uninstall(rel regclass): drops the table's quota triggers.
PG_TENANT_FUNCTION(pg_tenant_row_quota_uninstall) {
  const Oid relid = RelArgument(fcinfo);
  spi::PinnedSearchPath pinned;
  spi::Session spi;
  Uninstall(spi, relid);  // a table that does not exist has none
  spi.Finish();
  PG_RETURN_VOID();
}

// tenant._row_quota_require_read_committed(what text)
PG_TENANT_FUNCTION(pg_tenant_row_quota_require_read_committed) {
  RequireReadCommitted(TextArgument(fcinfo, 0));
  PG_RETURN_VOID();
}

// tenant._require_owner(rel regclass): limit_rows' and unlimit_rows' ownership check, the rule
// protect applies (policy::OwnsTable), for the role that called them (SET ROLE, else the session
// user: they are SECURITY DEFINER).
PG_TENANT_FUNCTION(pg_tenant_require_owner) {
  const Oid relid = RelArgument(fcinfo);
  if (!policy::OwnsTable(relid, GetOuterUserId()))
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + RegclassText(relid));
  PG_RETURN_VOID();
}
