// Meter calls with an idempotency key, in Redis (0.9.0): one script checks the key, counts and
// keeps the answer, atomically, so concurrent repeats on any server count once. And claims (SET
// NX) that let one server in all record a usage alert. Kept apart from
// client.cpp's meter script: EVAL (not a loaded script), as a keyed call is the rare one.
#include "redis/client.hpp"

#include <hiredis/hiredis.h>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::redis {
namespace {

// KEYS[1] counter, KEYS[2] the idempotency key; ARGV amount, limit (-1: none), ttl in ms (0:
// none), horizon in ms. Returns {counted, used, repeated, amount, limit}: a repeat gets the first
// call's answer back.
constexpr const char *kMeterOnceScript = R"LUA(
local seen = redis.call('GET', KEYS[2])
if seen then
  local c, u, a, l = string.match(seen, '^(%d+):(%d+):(%d+):(%-?%d+)$')
  return {tonumber(c), tonumber(u), 1, tonumber(a), tonumber(l)}
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local counted = 0
if limit < 0 or used + amount <= limit then
  used = redis.call('INCRBY', KEYS[1], amount)
  counted = 1
  local ttl = tonumber(ARGV[3])
  if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
redis.call('SET', KEYS[2], counted .. ':' .. used .. ':' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[4])
return {counted, used, 0, amount, limit}
)LUA";

struct ReplyDeleter {
  void operator()(redisReply *reply) const { freeReplyObject(reply); }
};

// KEYS: the keys to claim; ARGV[1]: their ttl in ms (0: none). Returns 1 or 0 per key: set now,
// or there already.
constexpr const char *kClaimScript = R"LUA(
local out = {}
for i, k in ipairs(KEYS) do
  local ok
  if tonumber(ARGV[1]) > 0 then ok = redis.call('SET', k, '1', 'NX', 'PX', ARGV[1]) else ok = redis.call('SET', k, '1', 'NX') end
  out[i] = ok and 1 or 0
end
return out
)LUA";

}  // namespace

bool Client::Claim(const std::vector<std::string> &keys, int64_t ttl_ms, std::vector<int64_t> *claimed,
                   std::string *error) {
  if (!Script(kClaimScript, keys, {std::to_string(ttl_ms)}, claimed, error)) return false;
  if (claimed->size() == keys.size()) return true;
  *error = "unexpected reply from the claim script";
  return false;
}

MeterOnceReply Client::MeterOnce(const std::string &key, const std::string &once_key, int64_t amount, int64_t limit,
                                 int64_t ttl_ms, int64_t horizon_ms) {
  MeterOnceReply result;
  if (!Connected()) {
    result.meter.error = "not connected";
    return result;
  }
  const std::string a = std::to_string(amount), l = std::to_string(limit), t = std::to_string(ttl_ms),
                    h = std::to_string(horizon_ms);
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply *>(
      redisCommand(context_.get(), "EVAL %s 2 %b %b %s %s %s %s", kMeterOnceScript, key.data(), key.size(),
                   once_key.data(), once_key.size(), a.c_str(), l.c_str(), t.c_str(), h.c_str())));
  if (reply == nullptr) {  // I/O error or timeout: the context is unusable
    result.meter.error = context_->errstr;
    Disconnect();
    return result;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    result.meter.error.assign(reply->str, reply->len);
    return result;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5) {
    result.meter.error = "unexpected reply from the idempotent meter script";
    return result;
  }
  for (size_t i = 0; i < 5; ++i)
    if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
      result.meter.error = "unexpected reply from the idempotent meter script";
      return result;
    }
  result.meter.status =
      reply->element[0]->integer == 1 ? MeterReply::Status::kCounted : MeterReply::Status::kOverLimit;
  result.meter.used = reply->element[1]->integer;
  result.repeated = reply->element[2]->integer == 1;
  result.amount = reply->element[3]->integer;
  result.limit = reply->element[4]->integer;
  return result;
}

}  // namespace pg_tenant::redis
