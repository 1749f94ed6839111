// The DDL that protects a table, as plain C++: tenant.protect() runs it, tenant.policy_sql()
// shows it, and unit tests check it without a server. Every identifier goes through QuoteIdent;
// every expression is schema-qualified, so the caller's search_path cannot change its meaning.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pg_tenant::policy {

constexpr std::string_view kIsolationPolicy = "tenant_isolation";
constexpr std::string_view kGuardPolicy = "tenant_isolation_guard";
// The row trigger that checks a row's tenant (src/policy/tenant_key.cpp): "tenant_key" on a
// table, "tenant_key_<table>" on a partitioned table, whose partitions get a clone of it by that
// name; so a protected table attached as a partition keeps its own trigger next to the clone
// instead of clashing with it.
constexpr std::string_view kTenantKeyTrigger = "tenant_key";

// What the catalogs say about one generated policy.
enum class PolicyState { kMissing, kCurrent, kDifferent };

// What the catalogs say about a table, and what its parent's DDL will already do for it.
struct TableState {
  std::string schema;
  std::string table;
  std::string column;
  bool column_not_null = false;
  bool column_default_is_current_id = false;
  // The tenant key: the tenant_key trigger (enabled, on this table or cloned from its parent),
  // or a foreign key (column) REFERENCES tenant.tenants (id), which guarantees the same.
  bool has_tenant_key = false;
  std::string own_key_trigger;  // the name of the table's own tenant key trigger (not a clone); empty when none
  bool partitioned = false;     // a partitioned table
  // The installed SQL predates the tenant key (0.8.0 scripts with this library): protect adds
  // the foreign key to tenant.tenants instead, as 0.8.0 did.
  bool legacy_foreign_key = false;
  bool has_leading_index = false;
  bool rls_enabled = false;
  bool rls_forced = false;
  PolicyState isolation_policy = PolicyState::kMissing;
  PolicyState guard_policy = PolicyState::kMissing;
  // Set for children when the parent's statements run first: ALTER COLUMN SET NOT NULL and SET
  // DEFAULT recurse to children; a partitioned table's row triggers, foreign keys and indexes
  // are cloned to its partitions.
  bool parent_sets_column = false;
  bool parent_creates_key_and_index = false;
  // Citus: the table is a Citus table (its column default is set on the coordinator's table
  // only: Citus refuses to alter a distribution column on the shards, and evaluates defaults on
  // the coordinator); the registry is distributed (no tenant key, as no foreign key before it: Citus would
  // turn a local table into a Citus local table, and ask whoever moves a shard to own the
  // registry; the policies' WITH CHECK already admits only the current, registered tenant).
  bool citus_table = false;
  bool registry_distributed = false;
};

// Always double-quoted ("" doubles an embedded quote): right for any name, reserved word,
// mixed case, space or unicode.
std::string QuoteIdent(std::string_view name);

// "schema"."table"
std::string QualifiedName(std::string_view schema, std::string_view table);

// The name protect gives the table's tenant key trigger (kTenantKeyTrigger), cut to 63 bytes
// on a character boundary as PostgreSQL would.
std::string TenantKeyTriggerName(const TableState &state);

// 'text' as an SQL string literal ('' doubles an embedded quote).
std::string QuoteLiteral(std::string_view text);

// ("column" OPERATOR(pg_catalog.=) tenant.current_id())
std::string TenantPredicate(std::string_view column);

// CREATE POLICY <name> of the table, AS RESTRICTIVE or AS PERMISSIVE, on the tenant predicate:
// the one text of both generated policies (protect, and the guard Citus loses on a shard:
// tenant._guard_policy_sql).
std::string CreatePolicy(const TableState &state, std::string_view name, bool restrictive);

// The statements that bring the table to the protected state; none when it is there already.
std::vector<std::string> ProtectStatements(const TableState &state);

// The statements that undo what protect added but the column's NOT NULL, default and index (they
// keep the data correct either way): the policies, the RLS flags and the tenant key trigger (an
// unprotected table is no longer erased with its tenants, so it no longer checks them either).
std::vector<std::string> UnprotectStatements(const TableState &state);

// Statements joined as a script: one per line, each ending with ';'.
std::string Script(const std::vector<std::string> &statements);

}  // namespace pg_tenant::policy
