// The one reader of a table's protection state: what the catalogs say about a table and its
// tenant column, next to what tenant.protect() makes of it. protect (what to add), the DDL guard
// (what was taken away) and the audit (through tenant._protection) all read it here, so "is this
// table protected" has one answer. It reads the catalogs directly (syscache, relcache, pg_policy
// by index): no SQL, cheap enough for every ALTER TABLE.
#pragma once

#include "bridge/bridge.hpp"
#include "policy/generator.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pg_tenant::policy {

struct Protection {
  bool exists = false;
  char relkind = 0;
  std::string schema;
  std::string table;
  bool system_catalog = false;  // pg_catalog, information_schema, pg_toast*
  std::string extension;        // the extension the table belongs to; empty when none
  bool column_exists = false;
  bool column_is_uuid = false;
  bool column_not_null = false;
  bool column_default_is_current_id = false;
  bool has_tenant_key = false;     // the tenant_key trigger, or a foreign key to tenant.tenants (id)
  std::string own_key_trigger;     // the name of the table's own tenant key trigger (not a clone); empty when none
  bool legacy_foreign_key = false;  // the installed SQL has no tenant._tenant_key_check (0.8.0)
  bool has_leading_index = false;       // a non-partial index whose first column is the tenant column
  bool rls_enabled = false;
  bool rls_forced = false;
  PolicyState isolation_policy = PolicyState::kMissing;
  PolicyState guard_policy = PolicyState::kMissing;
};

Protection ReadProtection(Oid relid, const std::string &column);

// What a scoped table lacks compared with what tenant.protect() made of it (tenant column, NOT
// NULL, tenant key, RLS enabled and forced, both generated policies); empty when whole or gone.
std::vector<std::string> MissingProtection(Oid relid, const std::string &column);

// The configured tenant column (pg_tenant.tenant_column, default "tenant_id"): what the guard
// requires of a new table, what auto_protect, protect_all and the audit look for, and protect's
// default.
std::string DefaultTenantColumn();

// Whether a table is scoped (tenant.scoped_tables) is the catalog's answer: catalog::ScopedColumn,
// catalog::IsScoped.

// A table and its partitions and inheritance children, recursively: the table first, each
// child after its parent, siblings by OID.
struct TreeNode {
  Oid relid;
  Oid parent;               // InvalidOid for the root
  bool parent_partitioned;  // the parent is a partitioned table
};
std::vector<TreeNode> TableTree(Oid root);

// pg_tenant.tenant_column (registered in src/wiring/settings.cpp) and its check hook.
constexpr const char *kDefaultTenantColumn = "tenant_id";
extern char *tenant_column_setting;
bool CheckTenantColumn(char **newval, void **extra, GucSource source) noexcept;

// The table tree engine of the DDL door: protect (new children get protected) and row quotas
// (partitions and children join and leave a quota) follow CREATE TABLE ... PARTITION OF/INHERITS,
// ATTACH/DETACH PARTITION and INHERIT/NO INHERIT with these two, from the catalogs (no SQL).
// One pg_inherits link of a partition or inheritance child to its parent.
struct Link {
  Oid parent;
  Oid child;
  bool operator<(const Link &o) const { return child != o.child ? child < o.child : parent < o.parent; }
  bool operator==(const Link &o) const { return child == o.child && parent == o.parent; }
};
// Every link in which one of the tables is the parent or the child, each once, by (child, parent).
std::vector<Link> LinksOf(const std::vector<Oid> &tables);
// A tree a capability recorded (its root, and the members it recorded under it) against the
// tree the catalogs hold now: members that joined (in TableTree's order: parents first) and
// recorded members that left it but still exist (a dropped one is the sql_drop step's).
struct TreeChanges {
  std::vector<TreeNode> joined;
  std::vector<Oid> left;
};
TreeChanges CompareTree(Oid root, const std::vector<Oid> &recorded_members);

// The ownership rule of protect, unprotect, limit_rows and unlimit_rows: role has the
// privileges of the table's owner (a member of it, or a superuser). A table that does not exist
// is owned by nobody.
bool OwnsTable(Oid relid, Oid role);


}  // namespace pg_tenant::policy
