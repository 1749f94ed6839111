#include "policy/generator.hpp"

#include <algorithm>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::policy {

std::string QuoteIdent(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string QualifiedName(std::string_view schema, std::string_view table) {
  return QuoteIdent(schema) + "." + QuoteIdent(table);
}

std::string TenantKeyTriggerName(const TableState &state) {
  std::string name(kTenantKeyTrigger);
  if (!state.partitioned) return name;
  name += "_" + state.table;
  size_t length = std::min<size_t>(name.size(), 63);
  while (length > 0 && length < name.size() && (static_cast<unsigned char>(name[length]) & 0xC0) == 0x80) --length;
  return name.substr(0, length);
}

std::string QuoteLiteral(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  quoted += '\'';
  return quoted;
}

std::string TenantPredicate(std::string_view column) {
  return "(" + QuoteIdent(column) + " OPERATOR(pg_catalog.=) tenant.current_id())";
}

std::string CreatePolicy(const TableState &state, std::string_view name, bool restrictive) {
  const std::string predicate = TenantPredicate(state.column);
  return "CREATE POLICY " + QuoteIdent(name) + " ON " + QualifiedName(state.schema, state.table) +
         (restrictive ? " AS RESTRICTIVE" : " AS PERMISSIVE") + " FOR ALL TO PUBLIC USING " +
         predicate + " WITH CHECK " + predicate;
}

namespace {

void AppendPolicy(std::vector<std::string> &out, const TableState &state, std::string_view name,
                  PolicyState policy, bool restrictive) {
  if (policy == PolicyState::kCurrent) return;
  if (policy == PolicyState::kDifferent)
    out.push_back("DROP POLICY " + QuoteIdent(name) + " ON " + QualifiedName(state.schema, state.table));
  out.push_back(CreatePolicy(state, name, restrictive));
}

}  // namespace

std::vector<std::string> ProtectStatements(const TableState &state) {
  std::vector<std::string> out;
  const std::string table = QualifiedName(state.schema, state.table);
  const std::string column = QuoteIdent(state.column);
  if (!state.parent_sets_column) {
    if (!state.column_default_is_current_id) {
      if (state.citus_table) out.push_back("SELECT pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true)");
      out.push_back("ALTER TABLE " + table + " ALTER COLUMN " + column + " SET DEFAULT tenant.current_id()");
      if (state.citus_table) out.push_back("SELECT pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true)");
    }
    if (!state.column_not_null) out.push_back("ALTER TABLE " + table + " ALTER COLUMN " + column + " SET NOT NULL");
  }
  if (!state.parent_creates_key_and_index) {
    if (!state.has_tenant_key && !state.registry_distributed) {
      if (state.legacy_foreign_key)
        out.push_back("ALTER TABLE " + table + " ADD FOREIGN KEY (" + column +
                      ") REFERENCES tenant.tenants (id) ON DELETE CASCADE");
      else
        // OR REPLACE: a trigger that took the key's name (guard off) is put back in shape.
        out.push_back("CREATE OR REPLACE TRIGGER " + QuoteIdent(TenantKeyTriggerName(state)) + " AFTER INSERT OR UPDATE OF " + column +
                      " ON " + table + " FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check(" +
                      QuoteLiteral(state.column) + ")");
    }
    if (!state.has_leading_index) out.push_back("CREATE INDEX ON " + table + " (" + column + ")");
  }
  if (!state.rls_enabled) out.push_back("ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY");
  if (!state.rls_forced) out.push_back("ALTER TABLE " + table + " FORCE ROW LEVEL SECURITY");
  AppendPolicy(out, state, kIsolationPolicy, state.isolation_policy, false);
  AppendPolicy(out, state, kGuardPolicy, state.guard_policy, true);
  return out;
}

std::vector<std::string> UnprotectStatements(const TableState &state) {
  std::vector<std::string> out;
  const std::string table = QualifiedName(state.schema, state.table);
  if (state.guard_policy != PolicyState::kMissing)
    out.push_back("DROP POLICY " + QuoteIdent(kGuardPolicy) + " ON " + table);
  if (state.isolation_policy != PolicyState::kMissing)
    out.push_back("DROP POLICY " + QuoteIdent(kIsolationPolicy) + " ON " + table);
  if (state.rls_forced) out.push_back("ALTER TABLE " + table + " NO FORCE ROW LEVEL SECURITY");
  if (state.rls_enabled) out.push_back("ALTER TABLE " + table + " DISABLE ROW LEVEL SECURITY");
  if (!state.own_key_trigger.empty()) out.push_back("DROP TRIGGER " + QuoteIdent(state.own_key_trigger) + " ON " + table);
  return out;
}

std::string Script(const std::vector<std::string> &statements) {
  std::string script;
  for (const auto &statement : statements) script += statement + ";\n";
  return script;
}

}  // namespace pg_tenant::policy
