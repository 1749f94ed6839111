#include "policy/dependencies.hpp"

#include "bridge/settings.hpp"
#include "catalog/catalog.hpp"
#include "policy/body_scan.hpp"
#include "policy/protection.hpp"

#include <set>
#include <string>
#include <utility>

namespace pg_tenant::policy {
namespace {

using bridge::PgCall;
using Object = std::pair<Oid, Oid>;  // (catalog, object)

constexpr size_t kMostObjects = 10000;  // a bound on the walk, whatever the catalogs hold

// The relations and functions an object depends on (pg_depend, by its index).
std::vector<Object> DependsOn(const Object &object) {
  std::vector<Object> out;
  PgCall([&] {
    Relation depend = table_open(DependRelationId, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(object.first));
    ScanKeyInit(&keys[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(object.second));
    SysScanDesc scan = systable_beginscan(depend, DependDependerIndexId, true, nullptr, 2, keys);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
      auto *form = reinterpret_cast<Form_pg_depend>(GETSTRUCT(tuple));
      if (form->refclassid == RelationRelationId || form->refclassid == ProcedureRelationId)
        out.emplace_back(form->refclassid, form->refobjid);
    }
    systable_endscan(scan);
    table_close(depend, AccessShareLock);
  });
  return out;
}

// The rewrite rules of a relation (a view's or materialized view's query is its _RETURN rule).
std::vector<Oid> RulesOf(Oid relid) {
  std::vector<Oid> out;
  PgCall([&] {
    Relation rewrite = table_open(RewriteRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_rewrite_ev_class, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(rewrite, RewriteRelRulenameIndexId, true, nullptr, 1, &key);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan)))
      out.push_back(reinterpret_cast<Form_pg_rewrite>(GETSTRUCT(tuple))->oid);
    systable_endscan(scan);
    table_close(rewrite, AccessShareLock);
  });
  return out;
}

// raw_parser, with a syntax error (a body created with check_function_bodies = off) taken as
// "nothing found".
List *ParseQuietly(const char *sql) {
  List *parsed = NIL;
  if (!bridge::WithoutParseError([&] { parsed = raw_parser(sql, RAW_PARSE_DEFAULT); })) return NIL;
  return parsed;
}

struct NameCollector {
  List *names;  // of RangeVar
  bool writes_only;
};

bool CollectNames(Node *node, void *context) {
  if (node == nullptr) return false;
  auto *collector = static_cast<NameCollector *>(context);
  RangeVar *target = nullptr;
  if (IsA(node, InsertStmt)) target = reinterpret_cast<InsertStmt *>(node)->relation;
  if (IsA(node, UpdateStmt)) target = reinterpret_cast<UpdateStmt *>(node)->relation;
  if (IsA(node, DeleteStmt)) target = reinterpret_cast<DeleteStmt *>(node)->relation;
  if (target != nullptr && collector->writes_only) collector->names = lappend(collector->names, target);
  if (IsA(node, RangeVar) && !collector->writes_only) collector->names = lappend(collector->names, node);
  // The walker is declared with an old-style parameter list; cast through void (*)(void).
  return raw_expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(CollectNames)), context);
}

// The value of search_path in a function's settings (proconfig), or nullptr.
const char *SearchPathSetting(ArrayType *config) {
  if (config == nullptr) return nullptr;
  Datum *items;
  bool *nulls;
  int count;
  deconstruct_array(config, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &count);
  constexpr const char kPrefix[] = "search_path=";
  for (int i = 0; i < count; ++i) {
    if (nulls[i]) continue;
    char *item = TextDatumGetCString(items[i]);
    if (strncmp(item, kPrefix, sizeof(kPrefix) - 1) == 0) return item + sizeof(kPrefix) - 1;
  }
  return nullptr;
}

// Resolves names (RangeVars) with the function's search_path setting when it has one, else with
// the current search_path; names that resolve to nothing are left out.
std::vector<Oid> Resolve(List *names, ArrayType *config) {
  std::vector<Oid> out;
  PgCall([&] {
    const int level = NewGUCNestLevel();
    if (const char *search_path = SearchPathSetting(config))
      (void)set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    ListCell *cell;
    foreach (cell, names) {
      Oid relid = RangeVarGetRelid(static_cast<RangeVar *>(lfirst(cell)), NoLock, true);
      if (OidIsValid(relid)) out.push_back(relid);
    }
    AtEOXact_GUC(true, level);
  });
  return out;
}

// A function's language, body and settings.
struct Function {
  Oid language = InvalidOid;
  const char *body = nullptr;  // prosrc
  bool atomic = false;         // a BEGIN ATOMIC body: its dependencies are recorded
  ArrayType *config = nullptr;
};

Function ReadFunction(Oid function) {
  return PgCall([&] {
    Function f;
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
    if (!HeapTupleIsValid(tuple)) return f;
    f.language = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->prolang;
    bool isnull;
    Datum body = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosrc, &isnull);
    if (!isnull) f.body = TextDatumGetCString(body);
    (void)SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosqlbody, &isnull);
    f.atomic = !isnull;
    Datum config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
    if (!isnull) f.config = DatumGetArrayTypePCopy(config);
    ReleaseSysCache(tuple);
    return f;
  });
}

// The relations a SQL function's (string) body names: all of them, or only those it writes.
std::vector<Oid> RelationsInSqlBody(const Function &f, bool writes_only) {
  if (f.language != SQLlanguageId || f.atomic || f.body == nullptr) return {};
  List *names = PgCall([&] {
    NameCollector collector{NIL, writes_only};
    ListCell *cell;
    foreach (cell, ParseQuietly(f.body)) {
      Node *statement = static_cast<RawStmt *>(lfirst(cell))->stmt;
      // The raw walker knows DML statements only.
      if (IsA(statement, SelectStmt) || IsA(statement, InsertStmt) || IsA(statement, UpdateStmt) ||
          IsA(statement, DeleteStmt))
        (void)CollectNames(statement, &collector);
    }
    return collector.names;
  });
  return Resolve(names, f.config);
}

}  // namespace

std::vector<Oid> ScopedTablesRead(Oid relid) {
  std::vector<Oid> scoped;
  std::set<Object> seen{{RelationRelationId, relid}};
  std::vector<Object> todo;
  for (Oid rule : RulesOf(relid)) todo.emplace_back(RewriteRelationId, rule);
  while (!todo.empty() && seen.size() < kMostObjects) {
    const Object object = todo.back();
    todo.pop_back();
    if (!seen.insert(object).second) continue;
    if (object.first == RelationRelationId) {
      if (catalog::ScopedColumn(object.second)) scoped.push_back(object.second);
      const char kind = PgCall([&] { return get_rel_relkind(object.second); });
      if (kind == RELKIND_VIEW || kind == RELKIND_MATVIEW)
        for (Oid rule : RulesOf(object.second)) todo.emplace_back(RewriteRelationId, rule);
      continue;
    }
    for (const Object &dependency : DependsOn(object)) todo.push_back(dependency);
    if (object.first == ProcedureRelationId)
      for (Oid read : RelationsInSqlBody(ReadFunction(object.second), false)) todo.emplace_back(RelationRelationId, read);
  }
  return scoped;
}

std::vector<Oid> TablesWrittenBy(Oid function) {
  const Function f = ReadFunction(function);
  if (f.body == nullptr || f.language == ClanguageId || f.language == INTERNALlanguageId) return {};
  if (f.language == SQLlanguageId) return RelationsInSqlBody(f, true);
  List *names = NIL;
  for (const WrittenName &name : WriteTargets(f.body))
    names = PgCall([&] {
      return lappend(names, makeRangeVar(name.schema.empty() ? nullptr : pstrdup(name.schema.c_str()),
                                         pstrdup(name.name.c_str()), -1));
    });
  return Resolve(names, f.config);
}

}  // namespace pg_tenant::policy

using namespace pg_tenant;

namespace {

Datum RegclassArray(const std::vector<Oid> &relids) {
  return bridge::PgCall([&] {
    Datum *items = static_cast<Datum *>(palloc(sizeof(Datum) * (relids.size() + 1)));
    for (size_t i = 0; i < relids.size(); ++i) items[i] = ObjectIdGetDatum(relids[i]);
    return PointerGetDatum(construct_array(items, static_cast<int>(relids.size()), REGCLASSOID, sizeof(Oid), true,
                                           TYPALIGN_INT));
  });
}

}  // namespace

// tenant._reads_scoped(rel regclass) returns regclass[]: the scoped tables a view or
// materialized view reads, at any depth (the audit's materialized_view_reads_scoped).
PG_TENANT_FUNCTION(pg_tenant_reads_scoped) { return RegclassArray(policy::ScopedTablesRead(PG_GETARG_OID(0))); }

// tenant._writes_to(fn regprocedure) returns regclass[]: the tables a function writes to (the
// audit's trigger_writes_unscoped).
PG_TENANT_FUNCTION(pg_tenant_writes_to) { return RegclassArray(policy::TablesWrittenBy(PG_GETARG_OID(0))); }
