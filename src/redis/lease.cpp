#include "redis/lease.hpp"

#include <vector>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::redis {
namespace {

// KEYS[1] K, KEYS[2] K:leases; ARGV server, consumed, released, amount, limit, lease_max, ttl.
// Returns {counted (1, 0, or -1: the count would pass the largest bigint), used, leased, granted};
// the report is applied in every case (the script never fails after its first write). Counts go
// to INCRBY as the caller's decimal strings: Lua numbers are doubles, printed as 5e+18. A server's report never takes more from its field
// than it holds (a Redis restarted without its data forgot the lease): its used units still count.
constexpr const char *kLeaseScript = R"LUA(
local k, h, server = KEYS[1], KEYS[2], ARGV[1]
local consumed, released = tonumber(ARGV[2]), tonumber(ARGV[3])
local amount, limit, lease_max, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local held = tonumber(redis.call('HGET', h, server) or '0')
local total = tonumber(redis.call('HGET', h, '_total') or '0')
local drop = math.min(held, consumed + released)
held = held - drop
total = math.max(0, total - drop)
local used = tonumber(redis.call('GET', k) or '0')
if consumed > 0 then used = redis.call('INCRBY', k, ARGV[2]) end
local counted, granted = 0, 0
local incremented = nil
if amount > 0 and (limit < 0 or used + total + amount <= limit) then
  incremented = redis.pcall('INCRBY', k, ARGV[4])
  if type(incremented) == 'table' then counted = -1 end
end
if counted == 0 and incremented ~= nil then
  used = incremented
  counted = 1
  if limit >= 0 and lease_max > 0 then
    local others = redis.call('HLEN', h)
    if redis.call('HEXISTS', h, '_total') == 1 then others = others - 1 end
    if redis.call('HEXISTS', h, server) == 1 then others = others - 1 end
    granted = math.max(0, math.min(lease_max, math.floor((limit - used - total) / (2 * (others + 1)))))
    held = held + granted
    total = total + granted
  end
end
if held > 0 then redis.call('HSET', h, server, held) else redis.call('HDEL', h, server) end
if total > 0 then redis.call('HSET', h, '_total', total) else redis.call('HDEL', h, '_total') end
if ttl > 0 then
  if redis.call('PTTL', k) == -1 then redis.call('PEXPIRE', k, ttl) end
  if redis.call('PTTL', h) == -1 then redis.call('PEXPIRE', h, ttl) end
end
return {counted, used, total, granted}
)LUA";

}  // namespace

LeaseReply Lease(Client &client, const LeaseRequest &request) {
  LeaseReply reply;
  std::vector<int64_t> out;
  const std::vector<std::string> keys{request.key, request.key + ":leases"};
  const std::vector<std::string> args{request.server,
                                      std::to_string(request.consumed),
                                      std::to_string(request.released),
                                      std::to_string(request.amount),
                                      std::to_string(request.limit),
                                      std::to_string(request.lease_max),
                                      std::to_string(request.ttl_ms)};
  if (!client.Script(kLeaseScript, keys, args, &out, &reply.error)) return reply;
  if (out.size() != 4) {
    reply.error = "unexpected reply from the lease script";
    return reply;
  }
  reply.status = out[0] == 1 || request.amount == 0 ? LeaseReply::Status::kCounted
                 : out[0] == -1                     ? LeaseReply::Status::kOutOfRange
                                                    : LeaseReply::Status::kOverLimit;
  if (reply.status == LeaseReply::Status::kOutOfRange) reply.error = "the count would pass the largest bigint";
  reply.used = out[1];
  reply.leased = out[2];
  reply.granted = out[3];
  return reply;
}

}  // namespace pg_tenant::redis
