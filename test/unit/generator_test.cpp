#include "policy/generator.hpp"

#include <gtest/gtest.h>

namespace pg_tenant::policy {
namespace {

TableState Bare() {
  TableState s;
  s.schema = "public";
  s.table = "items";
  s.column = "tenant_id";
  return s;
}

TableState Protected() {
  TableState s = Bare();
  s.column_not_null = s.column_default_is_current_id = s.has_tenant_key = s.has_leading_index = true;
  s.rls_enabled = s.rls_forced = true;
  s.isolation_policy = s.guard_policy = PolicyState::kCurrent;
  return s;
}

TEST(QuoteIdent, QuotesEverythingAndDoublesQuotes) {
  EXPECT_EQ(QuoteIdent("items"), "\"items\"");
  EXPECT_EQ(QuoteIdent("Mixed Case"), "\"Mixed Case\"");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteIdent("\""), "\"\"\"\"");
  EXPECT_EQ(QuoteIdent("select"), "\"select\"");
  EXPECT_EQ(QuoteIdent("t\xc3\xa9nant"), "\"t\xc3\xa9nant\"");
  EXPECT_EQ(QuoteIdent("x\"; DROP TABLE y; --"), "\"x\"\"; DROP TABLE y; --\"");
}

TEST(TenantPredicate, IsSchemaQualified) {
  EXPECT_EQ(TenantPredicate("tenant_id"), "(\"tenant_id\" OPERATOR(pg_catalog.=) tenant.current_id())");
}

TEST(ProtectStatements, BareTableGetsEverythingInOrder) {
  auto statements = ProtectStatements(Bare());
  ASSERT_EQ(statements.size(), 8u);
  EXPECT_EQ(statements[0], "ALTER TABLE \"public\".\"items\" ALTER COLUMN \"tenant_id\" SET DEFAULT tenant.current_id()");
  EXPECT_EQ(statements[1], "ALTER TABLE \"public\".\"items\" ALTER COLUMN \"tenant_id\" SET NOT NULL");
  EXPECT_EQ(statements[2],
            "CREATE OR REPLACE TRIGGER \"tenant_key\" AFTER INSERT OR UPDATE OF \"tenant_id\" ON \"public\".\"items\" FOR EACH ROW "
            "EXECUTE FUNCTION tenant._tenant_key_check('tenant_id')");
  EXPECT_EQ(statements[3], "CREATE INDEX ON \"public\".\"items\" (\"tenant_id\")");
  EXPECT_EQ(statements[4], "ALTER TABLE \"public\".\"items\" ENABLE ROW LEVEL SECURITY");
  EXPECT_EQ(statements[5], "ALTER TABLE \"public\".\"items\" FORCE ROW LEVEL SECURITY");
  EXPECT_NE(statements[6].find("CREATE POLICY \"tenant_isolation\" ON \"public\".\"items\" AS PERMISSIVE FOR ALL TO PUBLIC"),
            std::string::npos);
  EXPECT_NE(statements[7].find("AS RESTRICTIVE"), std::string::npos);
  EXPECT_NE(statements[7].find("WITH CHECK (\"tenant_id\" OPERATOR(pg_catalog.=) tenant.current_id())"), std::string::npos);
}

TEST(ProtectStatements, LegacySqlGetsTheForeignKey) {
  TableState s = Bare();
  s.legacy_foreign_key = true;
  EXPECT_EQ(ProtectStatements(s)[2],
            "ALTER TABLE \"public\".\"items\" ADD FOREIGN KEY (\"tenant_id\") REFERENCES tenant.tenants (id) ON DELETE "
            "CASCADE");
}

TEST(ProtectStatements, TenantKeyArgumentIsALiteral) {
  TableState s = Bare();
  s.column = "it's \"odd\"";
  EXPECT_NE(ProtectStatements(s)[2].find("OF \"it's \"\"odd\"\"\" ON"), std::string::npos);
  EXPECT_NE(ProtectStatements(s)[2].find("tenant._tenant_key_check('it''s \"odd\"')"), std::string::npos);
}

TEST(UnprotectStatements, DropsOwnKeyTriggerOnly) {
  TableState s = Protected();
  s.own_key_trigger = "tenant_key_x";
  EXPECT_EQ(UnprotectStatements(s).back(), "DROP TRIGGER \"tenant_key_x\" ON \"public\".\"items\"");
  s.own_key_trigger.clear();
  EXPECT_EQ(UnprotectStatements(s).back().find("DROP TRIGGER"), std::string::npos);
}

TEST(TenantKeyTriggerName, PartitionedTablesNameTheirsAfterThemselves) {
  TableState s = Bare();
  EXPECT_EQ(TenantKeyTriggerName(s), "tenant_key");
  s.partitioned = true;
  EXPECT_EQ(TenantKeyTriggerName(s), "tenant_key_items");
  s.table = std::string(60, 'a');
  EXPECT_EQ(TenantKeyTriggerName(s), "tenant_key_" + std::string(52, 'a'));
  s.table = std::string(51, 'a') + "\xc3\xa9";  // the 2-byte character would end at byte 64
  EXPECT_EQ(TenantKeyTriggerName(s), "tenant_key_" + std::string(51, 'a'));
}

TEST(ProtectStatements, ProtectedTableNeedsNothing) { EXPECT_TRUE(ProtectStatements(Protected()).empty()); }

TEST(ProtectStatements, ChangedPolicyIsDroppedAndRecreated) {
  TableState s = Protected();
  s.guard_policy = PolicyState::kDifferent;
  auto statements = ProtectStatements(s);
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0], "DROP POLICY \"tenant_isolation_guard\" ON \"public\".\"items\"");
  EXPECT_NE(statements[1].find("CREATE POLICY \"tenant_isolation_guard\""), std::string::npos);
}

TEST(ProtectStatements, PartitionInheritsColumnKeyAndIndexFromParent) {
  TableState s = Bare();
  s.parent_sets_column = true;
  s.parent_creates_key_and_index = true;
  auto statements = ProtectStatements(s);
  ASSERT_EQ(statements.size(), 4u);
  EXPECT_EQ(statements[0], "ALTER TABLE \"public\".\"items\" ENABLE ROW LEVEL SECURITY");
}

TEST(ProtectStatements, HostileNamesStayInsideQuotes) {
  TableState s = Bare();
  s.schema = "My Schema";
  s.table = "ta\"ble; DROP TABLE x";
  s.column = "Tenant Id";
  for (const auto &statement : ProtectStatements(s)) {
    EXPECT_NE(statement.find("\"My Schema\".\"ta\"\"ble; DROP TABLE x\""), std::string::npos) << statement;
  }
}

TEST(UnprotectStatements, UndoesAccessControlOnly) {
  auto statements = UnprotectStatements(Protected());
  ASSERT_EQ(statements.size(), 4u);
  EXPECT_EQ(statements[0], "DROP POLICY \"tenant_isolation_guard\" ON \"public\".\"items\"");
  EXPECT_EQ(statements[1], "DROP POLICY \"tenant_isolation\" ON \"public\".\"items\"");
  EXPECT_EQ(statements[2], "ALTER TABLE \"public\".\"items\" NO FORCE ROW LEVEL SECURITY");
  EXPECT_EQ(statements[3], "ALTER TABLE \"public\".\"items\" DISABLE ROW LEVEL SECURITY");
  EXPECT_TRUE(UnprotectStatements(Bare()).empty());
}

TEST(Script, OneStatementPerLine) {
  EXPECT_EQ(Script({"A", "B"}), "A;\nB;\n");
  EXPECT_EQ(Script({}), "");
}

}  // namespace
}  // namespace pg_tenant::policy
