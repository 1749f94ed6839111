#include "registry/slug.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pg_tenant {
namespace {

TEST(IsValidSlug, AcceptsDnsLabels) {
  for (const char *good : {"a", "acme", "acme-corp", "0day", "a-b-c", "x1", "a--b"}) {
    EXPECT_TRUE(IsValidSlug(good)) << good;
  }
  EXPECT_TRUE(IsValidSlug(std::string(63, 'a')));
}

TEST(IsValidSlug, RejectsWhatIsNotALabel) {
  for (const char *bad : {"", "-acme", "acme-", "-", "Acme", "ACME", "ac_me", "ac me", "a.b", "a/b",
                          "acm\xc3\xa9", "acme\n", "'; DROP TABLE x; --"}) {
    EXPECT_FALSE(IsValidSlug(bad)) << bad;
  }
  EXPECT_FALSE(IsValidSlug(std::string(64, 'a')));
  EXPECT_FALSE(IsValidSlug(std::string_view("ac\0me", 5)));
}

TEST(IsValidSlug, RejectsUuidShapeSoSetTextIsUnambiguous) {
  EXPECT_FALSE(IsValidSlug("6f9619ff-8b86-d011-b42d-00cf4fc964ff"));
  EXPECT_TRUE(HasUuidShape("6F9619FF-8B86-D011-B42D-00CF4FC964FF"));
  // 32 bare hex digits are a valid slug: tenant.set(text) treats only the 36-char form as an id.
  EXPECT_FALSE(HasUuidShape("6f9619ff8b86d011b42d00cf4fc964ff"));
  EXPECT_TRUE(IsValidSlug("6f9619ff8b86d011b42d00cf4fc964ff"));
}

}  // namespace
}  // namespace pg_tenant
