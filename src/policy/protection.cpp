#include "policy/protection.hpp"

#include "catalog/catalog.hpp"
#include "citus/citus.hpp"

#include "bridge/cache.hpp"

#include <algorithm>
#include <cstring>
#include <set>

namespace pg_tenant::policy {

char *tenant_column_setting = nullptr;  // pg_tenant.tenant_column, owned by guc.c

namespace {

using bridge::PgCall;


// (column OPERATOR(pg_catalog.=) tenant.current_id()), as protect creates it.
bool IsTenantPredicate(Node *expr, AttrNumber column, Oid current_id) {
  if (expr == nullptr || !IsA(expr, OpExpr)) return false;
  auto *op = reinterpret_cast<OpExpr *>(expr);
  if (get_opcode(op->opno) != F_UUID_EQ || list_length(op->args) != 2) return false;
  auto *left = static_cast<Node *>(linitial(op->args));
  auto *right = static_cast<Node *>(lsecond(op->args));
  return IsA(left, Var) && reinterpret_cast<Var *>(left)->varattno == column && IsA(right, FuncExpr) &&
         reinterpret_cast<FuncExpr *>(right)->funcid == current_id &&
         reinterpret_cast<FuncExpr *>(right)->args == NIL;
}

bool IsCurrentIdCall(Node *expr, Oid current_id) {
  return expr != nullptr && IsA(expr, FuncExpr) && reinterpret_cast<FuncExpr *>(expr)->funcid == current_id &&
         reinterpret_cast<FuncExpr *>(expr)->args == NIL;
}

// What PostgreSQL stores for an expression column (pg_node_tree text), as a node; nullptr for NULL.
Node *StoredExpression(HeapTuple tuple, int attribute, TupleDesc desc) {
  bool isnull;
  Datum value = heap_getattr(tuple, attribute, desc, &isnull);
  return isnull ? nullptr : static_cast<Node *>(stringToNode(TextDatumGetCString(value)));
}

bool IsPublicOnly(ArrayType *roles) {
  return ARR_NDIM(roles) == 1 && ARR_DIMS(roles)[0] == 1 && reinterpret_cast<Oid *>(ARR_DATA_PTR(roles))[0] == ACL_ID_PUBLIC;
}

// What protect creates: for all commands, to PUBLIC, the tenant predicate in USING and WITH CHECK.
PolicyState Classify(char command, bool permissive, bool expected_permissive, ArrayType *roles, Node *using_qual,
                     Node *check_qual, AttrNumber column, Oid current_id) {
  const bool current = command == '*' && permissive == expected_permissive && roles != nullptr && IsPublicOnly(roles) &&
                       IsTenantPredicate(using_qual, column, current_id) &&
                       IsTenantPredicate(check_qual, column, current_id);
  return current ? PolicyState::kCurrent : PolicyState::kDifferent;
}

// Both generated policies. With row level security on, the relcache holds them parsed; with it
// off it holds none, so they are read from pg_policy.
void ReadPolicies(Relation rel, AttrNumber column, Oid current_id, PolicyState *isolation, PolicyState *guard) {
  if (rel->rd_rsdesc != nullptr) {
    ListCell *cell;
    foreach (cell, rel->rd_rsdesc->policies) {
      auto *policy = static_cast<RowSecurityPolicy *>(lfirst(cell));
      const bool is_isolation = kIsolationPolicy == policy->policy_name;
      if (!is_isolation && kGuardPolicy != policy->policy_name) continue;
      *(is_isolation ? isolation : guard) =
          Classify(policy->polcmd, policy->permissive, is_isolation, policy->roles,
                   reinterpret_cast<Node *>(policy->qual), reinterpret_cast<Node *>(policy->with_check_qual),
                   column, current_id);
    }
    return;
  }
  const Oid relid = RelationGetRelid(rel);
  Relation policies = table_open(PolicyRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(policies, PolicyPolrelidPolnameIndexId, true, nullptr, 1, &key);
  HeapTuple tuple;
  while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
    auto *form = reinterpret_cast<Form_pg_policy>(GETSTRUCT(tuple));
    const bool is_isolation = kIsolationPolicy == NameStr(form->polname);
    if (!is_isolation && kGuardPolicy != NameStr(form->polname)) continue;
    TupleDesc desc = RelationGetDescr(policies);
    bool roles_null;
    Datum roles = heap_getattr(tuple, Anum_pg_policy_polroles, desc, &roles_null);
    *(is_isolation ? isolation : guard) =
        Classify(form->polcmd, form->polpermissive, is_isolation, roles_null ? nullptr : DatumGetArrayTypeP(roles),
                 StoredExpression(tuple, Anum_pg_policy_polqual, desc),
                 StoredExpression(tuple, Anum_pg_policy_polwithcheck, desc), column, current_id);
  }
  systable_endscan(scan);
  table_close(policies, AccessShareLock);
}

// What protect creates: tenant._tenant_key_check(column) AFTER INSERT OR UPDATE (of the column or
// of any) FOR EACH ROW, no WHEN clause, firing in origin or always mode (not disabled or replica).
bool IsTenantKeyTrigger(const Trigger &t, Oid key_check, AttrNumber column, const char *column_name) {
  if (!OidIsValid(key_check) || t.tgfoid != key_check || t.tgqual != nullptr) return false;
  if (t.tgenabled != TRIGGER_FIRES_ON_ORIGIN && t.tgenabled != TRIGGER_FIRES_ALWAYS) return false;
  if (!TRIGGER_FOR_ROW(t.tgtype) || !TRIGGER_FOR_AFTER(t.tgtype) || !TRIGGER_FOR_INSERT(t.tgtype) ||
      !TRIGGER_FOR_UPDATE(t.tgtype))
    return false;
  if (t.tgnargs != 1 || strcmp(t.tgargs[0], column_name) != 0) return false;
  if (t.tgnattr == 0) return true;
  for (int i = 0; i < t.tgnattr; ++i)
    if (t.tgattr[i] == column) return true;
  return false;
}

// Everything but the names, read in one PgCall (no C++ object is alive inside it).
struct Facts {
  bool exists;
  char relkind;
  const char *schema;
  const char *table;
  const char *extension;
  bool column_exists, column_is_uuid, column_not_null, column_default_is_current_id;
  const char *own_key_trigger;
  bool has_tenant_key, legacy_foreign_key, has_leading_index, rls_enabled, rls_forced;
  PolicyState isolation_policy, guard_policy;
};

// all: everything protect needs; otherwise only what the guard checks after every ALTER TABLE
// (column, tenant key, row level security, policies), which the relcache answers.
Facts ReadFacts(Oid relid, const char *column, bool all) {
  return PgCall([&] {
    Facts f{};
    f.isolation_policy = f.guard_policy = PolicyState::kMissing;
    Relation rel = try_relation_open(relid, AccessShareLock);
    if (rel == nullptr) return f;
    f.exists = true;
    f.relkind = rel->rd_rel->relkind;
    f.rls_enabled = rel->rd_rel->relrowsecurity;
    f.rls_forced = rel->rd_rel->relforcerowsecurity;
    f.schema = get_namespace_name(RelationGetNamespace(rel));
    f.table = pstrdup(RelationGetRelationName(rel));
    Oid extension = all ? getExtensionOfObject(RelationRelationId, relid) : InvalidOid;
    f.extension = OidIsValid(extension) ? get_extension_name(extension) : nullptr;
    const AttrNumber attnum = get_attnum(relid, column);
    const bool is_table = f.relkind == RELKIND_RELATION || f.relkind == RELKIND_PARTITIONED_TABLE;
    if (attnum > 0 && is_table) {
      (void)catalog::Schema(false);
      const Oid tenants = catalog::RelationId(catalog::Rel::kTenants);
      const Oid current_id = catalog::FunctionId(catalog::Func::kCurrentId, false);
      TupleDesc desc = RelationGetDescr(rel);
      Form_pg_attribute attribute = TupleDescAttr(desc, attnum - 1);
      f.column_exists = true;
      f.column_is_uuid = attribute->atttypid == UUIDOID;
      f.column_not_null = attribute->attnotnull;
      if (all && attribute->atthasdef && desc->constr != nullptr) {
        for (int i = 0; i < desc->constr->num_defval; ++i)
          if (desc->constr->defval[i].adnum == attnum)
            f.column_default_is_current_id =
                IsCurrentIdCall(static_cast<Node *>(stringToNode(desc->constr->defval[i].adbin)), current_id);
      }
      const Oid key_check = catalog::FunctionId(catalog::Func::kTenantKeyCheck, true);
      f.legacy_foreign_key = !OidIsValid(key_check);
      for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers; ++i)
        if (IsTenantKeyTrigger(rel->trigdesc->triggers[i], key_check, attnum, column)) {
          f.has_tenant_key = true;
          if (!rel->trigdesc->triggers[i].tgisclone) f.own_key_trigger = pstrdup(rel->trigdesc->triggers[i].tgname);
        }
      ListCell *cell;
      foreach (cell, RelationGetFKeyList(rel)) {
        auto *key = static_cast<ForeignKeyCacheInfo *>(lfirst(cell));
        if (key->confrelid == tenants && key->nkeys == 1 && key->conkey[0] == attnum && key->confkey[0] == 1)
          f.has_tenant_key = true;
      }
      foreach (cell, all ? RelationGetIndexList(rel) : NIL) {
        HeapTuple index = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(cell)));
        if (!HeapTupleIsValid(index)) continue;
        auto *form = reinterpret_cast<Form_pg_index>(GETSTRUCT(index));
        if (form->indnatts > 0 && form->indkey.values[0] == attnum && heap_attisnull(index, Anum_pg_index_indpred, nullptr))
          f.has_leading_index = true;
        ReleaseSysCache(index);
      }
      ReadPolicies(rel, attnum, current_id, &f.isolation_policy, &f.guard_policy);
    }
    relation_close(rel, AccessShareLock);
    return f;
  });
}

}  // namespace

Protection ReadProtection(Oid relid, const std::string &column) {
  const Facts f = ReadFacts(relid, column.c_str(), true);
  Protection p;
  if (!f.exists) return p;
  p.exists = true;
  p.relkind = f.relkind;
  p.schema = f.schema;
  p.table = f.table;
  p.system_catalog = p.schema == "pg_catalog" || p.schema == "information_schema" || p.schema.rfind("pg_toast", 0) == 0;
  p.extension = f.extension != nullptr ? f.extension : "";
  p.column_exists = f.column_exists;
  p.column_is_uuid = f.column_is_uuid;
  p.column_not_null = f.column_not_null;
  p.column_default_is_current_id = f.column_default_is_current_id;
  p.has_tenant_key = f.has_tenant_key;
  p.own_key_trigger = f.own_key_trigger != nullptr ? f.own_key_trigger : "";
  p.legacy_foreign_key = f.legacy_foreign_key;
  p.has_leading_index = f.has_leading_index;
  p.rls_enabled = f.rls_enabled;
  p.rls_forced = f.rls_forced;
  p.isolation_policy = f.isolation_policy;
  p.guard_policy = f.guard_policy;
  return p;
}

std::vector<std::string> MissingProtection(Oid relid, const std::string &column) {
  const Facts p = ReadFacts(relid, column.c_str(), false);
  if (!p.exists) return {};
  if (!p.column_exists) return {"the tenant column " + QuoteIdent(column) + " is gone (dropped or renamed)"};
  std::vector<std::string> missing;
  if (!p.column_is_uuid) missing.push_back("tenant column " + QuoteIdent(column) + " is not uuid");
  if (!p.column_not_null) missing.push_back("tenant column " + QuoteIdent(column) + " is nullable");
  if (!p.has_tenant_key && !citus::RegistryDistributed())
    missing.push_back("the tenant key (trigger tenant_key, or a foreign key to tenant.tenants) is gone or disabled");
  if (!p.rls_enabled) missing.push_back("row level security is disabled");
  if (!p.rls_forced) missing.push_back("row level security is not forced");
  if (p.isolation_policy != PolicyState::kCurrent)
    missing.push_back("policy " + QuoteIdent(kIsolationPolicy) + " is dropped or changed");
  if (p.guard_policy != PolicyState::kCurrent)
    missing.push_back("policy " + QuoteIdent(kGuardPolicy) + " is dropped or changed");
  return missing;
}

std::string DefaultTenantColumn() {
  return tenant_column_setting != nullptr ? tenant_column_setting : kDefaultTenantColumn;
}

std::vector<TreeNode> TableTree(Oid root) {
  std::vector<TreeNode> tree{{root, InvalidOid, false}};
  for (size_t next = 0; next < tree.size(); ++next) {
    const Oid parent = tree[next].relid;
    bool partitioned = false;
    List *children = PgCall([&] {
      partitioned = get_rel_relkind(parent) == RELKIND_PARTITIONED_TABLE;
      // Partitions being detached concurrently too: until the detach finishes they are partitions.
      return find_inheritance_children_extended(parent, false, NoLock, nullptr, nullptr);
    });
    // Depth first: the children go right after their parent, in OID order.
    std::vector<TreeNode> nodes;
    ListCell *cell;
    foreach (cell, children) nodes.push_back({lfirst_oid(cell), parent, partitioned});
    tree.insert(tree.begin() + static_cast<long>(next) + 1, nodes.begin(), nodes.end());
  }
  return tree;
}

std::vector<Link> LinksOf(const std::vector<Oid> &tables) {
  std::vector<Link> links;
  PgCall([&] {
    Relation inherits = table_open(InheritsRelationId, AccessShareLock);
    for (Oid relid : tables) {
      ListCell *cell;  // as parent (partitions being detached concurrently too, as TableTree)
      foreach (cell, find_inheritance_children_extended(relid, false, NoLock, nullptr, nullptr))
        links.push_back({relid, lfirst_oid(cell)});
      ScanKeyData key;  // as child
      ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
      SysScanDesc scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true, nullptr, 1, &key);
      HeapTuple tuple;
      while (HeapTupleIsValid(tuple = systable_getnext(scan)))
        links.push_back({reinterpret_cast<Form_pg_inherits>(GETSTRUCT(tuple))->inhparent, relid});
      systable_endscan(scan);
    }
    table_close(inherits, AccessShareLock);
  });
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  return links;
}

TreeChanges CompareTree(Oid root, const std::vector<Oid> &recorded_members) {
  TreeChanges changes;
  const std::vector<TreeNode> tree = TableTree(root);
  const std::set<Oid> recorded(recorded_members.begin(), recorded_members.end());
  std::set<Oid> in_tree;
  for (const TreeNode &node : tree) {
    in_tree.insert(node.relid);
    if (node.relid != root && recorded.count(node.relid) == 0) changes.joined.push_back(node);
  }
  for (Oid member : recorded)
    if (member != root && in_tree.count(member) == 0 &&
        PgCall([&] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(member)); }))
      changes.left.push_back(member);
  return changes;
}

bool OwnsTable(Oid relid, Oid role) {
  return PgCall([&] { return OidIsValid(get_rel_relkind(relid)) && pg_class_ownercheck(relid, role); });
}

// A column name as protect takes it (a name, not an SQL identifier: no quoting, case kept).
bool CheckTenantColumn(char **newval, void **, GucSource) noexcept {
  if (*newval != nullptr && (*newval)[0] != '\0' && strlen(*newval) < NAMEDATALEN) return true;
  GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
  GUC_check_errdetail("A column name of 1 to %d bytes is required.", NAMEDATALEN - 1);
  return false;
}

}  // namespace pg_tenant::policy
