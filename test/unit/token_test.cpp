#include "context/token.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pg_tenant::token {
namespace {

TEST(Base64Url, MatchesRfc4648WithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff\xbf", 3)), "-_-_");  // the url-safe alphabet
}

TEST(Base64Url, DecodesWhatItEncodesAndRefusesTheRest) {
  for (const std::string &text : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(text)), text);
  EXPECT_FALSE(Base64UrlDecode("Zm9v="));   // padding
  EXPECT_FALSE(Base64UrlDecode("Zm+v"));    // the standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Z"));       // an impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh"));      // non-zero leftover bits: a second text for "f"
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEqual("", ""));
}

TEST(Split, NeedsThreeNonEmptyParts) {
  auto parts = Split("aa.bb.cc");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->header, "aa");
  EXPECT_EQ(parts->payload, "bb");
  EXPECT_EQ(parts->signature, "cc");
  EXPECT_EQ(parts->signing_input, "aa.bb");
  EXPECT_FALSE(Split("aa.bb"));
  EXPECT_FALSE(Split("aa.bb.cc.dd"));
  EXPECT_FALSE(Split("aa..cc"));
  EXPECT_FALSE(Split("aa.bb."));
}

TEST(ParseKeys, ReadsTheListAndRefusesWeakOrMalformedKeys) {
  std::string error;
  const std::string a(32, 'a'), b(40, 'b');
  auto keys = ParseKeys("k2:" + a + ", k1:" + b, &error);
  ASSERT_TRUE(keys) << error;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, "k2");
  EXPECT_EQ((*keys)[0].secret, a);
  EXPECT_EQ((*keys)[1].id, "k1");
  EXPECT_FALSE(ParseKeys("k1:short", &error));
  EXPECT_FALSE(ParseKeys(a, &error));  // no key id
  EXPECT_FALSE(ParseKeys("bad id:" + a, &error));
  EXPECT_FALSE(ParseKeys("k1:" + a + ",k1:" + b, &error));
  EXPECT_TRUE(ParseKeys("", &error).value().empty());
}

}  // namespace
}  // namespace pg_tenant::token
