#include "policy/body_scan.hpp"

#include <gtest/gtest.h>

namespace pg_tenant::policy {
namespace {

using Names = std::vector<WrittenName>;

TEST(BodyScan, FindsTheTargetsOfWrites) {
  EXPECT_EQ(WriteTargets("BEGIN INSERT INTO audit.copy VALUES (NEW.id); RETURN NEW; END"),
            (Names{{"audit", "copy"}}));
  EXPECT_EQ(WriteTargets("update Sink set x = 1; delete from ONLY public.\"Log\" where true; merge into m using s on true"),
            (Names{{"", "sink"}, {"public", "Log"}, {"", "m"}}));
  EXPECT_EQ(WriteTargets("COPY exported FROM STDIN"), (Names{{"", "exported"}}));
}

TEST(BodyScan, IgnoresCommentsStringsAndNonWrites) {
  EXPECT_EQ(WriteTargets("-- INSERT INTO a\n/* UPDATE b */ SELECT 'DELETE FROM c' FROM t FOR UPDATE"), Names{});
  EXPECT_EQ(WriteTargets("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET n = 2"), (Names{{"", "t"}}));
  EXPECT_EQ(WriteTargets("SELECT updated_at, deleted FROM x"), Names{});
  EXPECT_EQ(WriteTargets("NEW.note := lower(NEW.note); RETURN NEW;"), Names{});
}

TEST(BodyScan, QuotedNamesKeepCaseAndDoubledQuotes) {
  EXPECT_EQ(WriteTargets("INSERT INTO \"My\"\"Schema\".\"T\" VALUES (1)"), (Names{{"My\"Schema", "T"}}));
}

}  // namespace
}  // namespace pg_tenant::policy
