#include "common/uuid_text.hpp"

#include <gtest/gtest.h>

namespace pg_tenant {
namespace {

TEST(ParseUuid, AcceptsCanonicalForm) {
  auto parsed = ParseUuid("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ((*parsed)[0], 0x6f);
  EXPECT_EQ((*parsed)[15], 0xff);
}

TEST(ParseUuid, AcceptsUpperCaseAndBareHex) {
  EXPECT_EQ(ParseUuid("6F9619FF-8B86-D011-B42D-00CF4FC964FF"),
            ParseUuid("6f9619ff-8b86-d011-b42d-00cf4fc964ff"));
  EXPECT_EQ(ParseUuid("6f9619ff8b86d011b42d00cf4fc964ff"), ParseUuid("6f9619ff-8b86-d011-b42d-00cf4fc964ff"));
}

TEST(ParseUuid, RejectsEverythingElse) {
  for (const char *bad :
       {"", "garbage", "6f9619ff-8b86-d011-b42d-00cf4fc964f", "6f9619ff-8b86-d011-b42d-00cf4fc964fff",
        "{6f9619ff-8b86-d011-b42d-00cf4fc964ff}", "6f9619ff+8b86-d011-b42d-00cf4fc964ff",
        "6f9619ff-8b86-d011-b42d-00cf4fc964fg", "6f9619ff8-b86-d011-b42d-00cf4fc964ff",
        " 6f9619ff-8b86-d011-b42d-00cf4fc964f", "6f9619ff8b86d011b42d00cf4fc964f-"}) {
    EXPECT_FALSE(ParseUuid(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseUuid(std::string_view("6f9619ff-8b86-d011-b42d-00cf4fc9\0\0ff", 36)).has_value());
}

TEST(FormatUuid, RoundTripsToLowerCanonical) {
  auto parsed = ParseUuid("6F9619FF8B86D011B42D00CF4FC964FF");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(FormatUuid(*parsed), "6f9619ff-8b86-d011-b42d-00cf4fc964ff");
  UuidBytes zero{};
  EXPECT_EQ(FormatUuid(zero), "00000000-0000-0000-0000-000000000000");
}

}  // namespace
}  // namespace pg_tenant
