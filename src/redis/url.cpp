#include "redis/url.hpp"

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::redis {
namespace {

bool ParseNumber(std::string_view text, int low, int high, int *out) {
  if (text.empty() || text.size() > 9) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < low || value > high) return false;
  *out = value;
  return true;
}

std::optional<RedisUrl> Fail(std::string *error, std::string message) {
  *error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<RedisUrl> ParseRedisUrl(std::string_view text, std::string *error) {
  constexpr std::string_view kScheme = "redis://";
  if (text.substr(0, kScheme.size()) != kScheme) return Fail(error, "it must start with redis://");
  std::string_view rest = text.substr(kScheme.size());
  RedisUrl url;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    // redis://:password@ (no user name: Redis before 6 has none)
    if (userinfo.empty() || userinfo.front() != ':') return Fail(error, "the password must be given as :password@");
    url.password = std::string(userinfo.substr(1));
    if (url.password.empty()) return Fail(error, "the password is empty");
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    if (!ParseNumber(rest.substr(slash + 1), 0, 1000000, &url.db)) return Fail(error, "the database must be a number");
  }
  auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    url.host = std::string(hostport);
  } else {
    url.host = std::string(hostport.substr(0, colon));
    if (!ParseNumber(hostport.substr(colon + 1), 1, 65535, &url.port)) return Fail(error, "the port must be 1 to 65535");
  }
  if (url.host.empty()) return Fail(error, "the host is missing");
  for (char c : url.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return Fail(error, "the host may hold letters, digits, '.' and '-' only");
  }
  return url;
}

}  // namespace pg_tenant::redis
