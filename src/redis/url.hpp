// redis://[:password@]host:port[/db], parsed without PostgreSQL (unit-tested).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pg_tenant::redis {

struct RedisUrl {
  std::string host;
  int port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;
};

// nullopt and *error set when the text is not a valid URL.
std::optional<RedisUrl> ParseRedisUrl(std::string_view text, std::string *error);

}  // namespace pg_tenant::redis
