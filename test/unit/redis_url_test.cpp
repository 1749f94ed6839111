#include "redis/url.hpp"

#include <gtest/gtest.h>

namespace pg_tenant::redis {
namespace {

TEST(RedisUrl, ParsesEveryPart) {
  std::string error;
  auto url = ParseRedisUrl("redis://:s3cret@127.0.0.1:6380/3", &error);
  ASSERT_TRUE(url.has_value()) << error;
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->password, "s3cret");
  EXPECT_EQ(url->db, 3);
}

TEST(RedisUrl, HasDefaults) {
  std::string error;
  auto url = ParseRedisUrl("redis://localhost", &error);
  ASSERT_TRUE(url.has_value()) << error;
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
  EXPECT_TRUE(url->password.empty());
}

TEST(RedisUrl, PasswordMayHoldAnAt) {
  std::string error;
  auto url = ParseRedisUrl("redis://:p@ss@host:1", &error);
  ASSERT_TRUE(url.has_value()) << error;
  EXPECT_EQ(url->password, "p@ss");
}

TEST(RedisUrl, RejectsWhatIsMalformed) {
  for (const char *bad : {"", "http://host", "redis://", "redis://host:0", "redis://host:65536", "redis://host:x",
                          "redis://host/x", "redis://user:pw@host", "redis://:@host", "redis://ho st:1",
                          "redis://host:1/", "redis://:pw@"}) {
    std::string error;
    EXPECT_FALSE(ParseRedisUrl(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace pg_tenant::redis
