// The Redis meter backend (pg_tenant.meter_backend = redis), written in redis_backend.cpp: one
// lazy connection per backend, the counts served from this server's leases (lease.hpp), the
// round trips and pg_tenant.redis_failure when Redis cannot answer.
#pragma once

#include <string>
#include <string_view>

#include "meters/store.hpp"
#include "redis/client.hpp"

namespace pg_tenant::meters::redis_backend {

// An unkeyed call: from this server's lease, else a round trip; on a Redis failure applies
// pg_tenant.redis_failure (closed: TN009; open: let through, uncounted; local: store::CountIn,
// kept pending for Redis). levels: the limit whose alert levels the call checks (for the
// worker's reports).
store::Count CountInRedis(const store::MeterKey &key, limits::Period period, uint64 amount, bool limited,
                          uint64 limit, const limits::Limit &levels);

// A keyed call: one script (redis/once.cpp). While Redis fails, closed refuses (TN009); open and
// local count as an unkeyed call would (the key is not remembered then).
store::Count CountOnceInRedis(const store::MeterKey &key, std::string_view once, limits::Period period, uint64 amount,
                              bool hard, uint64 limit, const limits::Limit &levels, bool *repeated);

// tenant._meter_usage() with this backend: the tenant's open windows as every server counted
// them, as a materialized SRF. False, with a WARNING, when Redis cannot answer.
bool Usage(FunctionCallInfo fcinfo, const pg_uuid_t &tenant);

// tenant.purge(): this server's leases of the tenant forgotten, and with this backend its keys
// deleted (a failure: TN009 under redis_failure = closed, else a WARNING).
void ForgetTenant(const pg_uuid_t &tenant);

// For the alert claims (store::RecordCrossings): the backend's connection, opened if need be;
// the counter's key in Redis and its time to live.
bool EnsureRedis(std::string *error);
redis::Client &Connection();
std::string RedisKey(const store::MeterKey &key);
int64 TtlMs(limits::Period period, int64 window_start);

}  // namespace pg_tenant::meters::redis_backend
