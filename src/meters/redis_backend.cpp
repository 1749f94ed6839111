// The Redis meter backend (pg_tenant.meter_backend = redis): counters live in Redis under
// pg_tenant:<database>:<tenant>:<resource>:<window start>, shared by every server that uses the
// same Redis. Most calls are served from this server's lease of units (meters/lease.cpp) with no
// round trip; the rest run the lease script over one lazy connection per backend, reconnecting
// after a pause (doubling up to 5 s) when Redis fails, and apply pg_tenant.redis_failure then.
//
// Locking: no lock of its own. The connection and its state are the backend's. Under
// redis_failure = local the counts go to the shared-memory store (store::CountIn, the meters'
// LWLock shared) with MeterEntry::pending raised; Reconcile, after a reconnection, takes the
// meters' LWLock SHARED to exchange each pending count for 0 (atomic) and, when Redis still
// fails, SHARED again to add it back. No lock is held across a round trip. The leases' locking is
// lease.cpp's.
#include "meters/redis_backend.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/settings.hpp"
#include "common/uuid_text.hpp"
#include "meters/keys.hpp"
#include "meters/lease.hpp"
#include "redis/url.hpp"

namespace pg_tenant::meters {

// The settings (registered in src/wiring/settings.cpp; only when preloaded).
int meter_backend = kBackendShmem;
char *redis_url = nullptr;
int redis_connect_timeout_ms = 200;
int redis_command_timeout_ms = 200;
int redis_failure = kFailClosed;

namespace {
uint64 redis_url_version = 0;  // raised by every assignment of pg_tenant.redis_url
}  // namespace

// A GUC check hook: the URL may hold a password (bridge::CheckSecretSetting).
bool CheckRedisUrl(char **newval, void **, GucSource source) noexcept {
  return bridge::CheckSecretSetting("pg_tenant.redis_url", "Redis URL", "The form is redis://[:password@]host:port[/db].",
                                    *newval, source, [](const char *value, std::string *error) {
                                      return redis::ParseRedisUrl(value, error).has_value();
                                    });
}

void AssignRedisUrl(const char *, void *) noexcept { ++redis_url_version; }

namespace redis_backend {
namespace {

using bridge::PgCall;
using limits::Period;
using limits::WindowEnd;
using namespace store;

redis::Client redis_client;  // one lazy connection per backend, reused
uint64 connected_url_version = 0;
TimestampTz next_connect_attempt = 0;
int connect_backoff_ms = 0;
TimestampTz last_open_warning = 0;

// pg_tenant:<database>:<tenant>:. The database by name: servers that share one Redis (a primary
// and its replicas, Citus nodes) agree on names, not on OIDs.
std::string RedisTenantPrefix(const pg_uuid_t &tenant_id) {
  static std::string database;
  static pg_uuid_t last_tenant;  // most calls of a backend are for the tenant of the call before
  static std::string last_prefix;
  if (!last_prefix.empty() && memcmp(&last_tenant, &tenant_id, sizeof(tenant_id)) == 0) return last_prefix;
  if (database.empty()) database = PgCall([] { return std::string(get_database_name(MyDatabaseId)); });
  char tenant[37];
  UuidBytes bytes;
  memcpy(bytes.data(), tenant_id.data, UUID_LEN);
  FormatUuid(bytes, tenant);
  last_prefix = "pg_tenant:" + database + ":" + tenant + ":";
  last_tenant = tenant_id;
  return last_prefix;
}

// Counts made locally (redis_failure = local) go to Redis once it answers again.
void Reconcile() {
  struct Pending {
    MeterKey key;
    int32 period;
    uint64 amount;
  };
  List *pending = PgCall([] {
    List *out = NIL;
    LWLockAcquire(shared->lock, LW_SHARED);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, meter_table);
    MeterEntry *entry;
    while ((entry = static_cast<MeterEntry *>(hash_seq_search(&status))) != nullptr) {
      if (entry->key.database != MyDatabaseId || pg_atomic_read_u64(&entry->pending) == 0) continue;
      auto *p = static_cast<Pending *>(palloc(sizeof(Pending)));
      p->key = entry->key;
      p->period = entry->period;
      p->amount = pg_atomic_exchange_u64(&entry->pending, 0);
      out = lappend(out, p);
    }
    LWLockRelease(shared->lock);
    return out;
  });
  ListCell *cell;
  foreach (cell, pending) {
    auto *p = static_cast<Pending *>(lfirst(cell));
    std::string error;
    if (!redis_client.Add(RedisKey(p->key), static_cast<int64>(p->amount),
                          TtlMs(static_cast<Period>(p->period), p->key.window_start), &error)) {
      // Still unreachable: keep them for the next time (the entry is still there: only the
      // flusher frees entries, and only those of ended windows).
      PgCall([&] {
        LWLockAcquire(shared->lock, LW_SHARED);
        auto *entry = static_cast<MeterEntry *>(hash_search(meter_table, &p->key, HASH_FIND, nullptr));
        if (entry != nullptr) pg_atomic_fetch_add_u64(&entry->pending, p->amount);
        LWLockRelease(shared->lock);
      });
    }
  }
}

// What the worker needs to record the alert levels of this meter (lease::AlertSpec).
pg_noinline lease::AlertSpec SpecOf(const MeterKey &key, const limits::Limit &levels) {
  lease::AlertSpec spec;
  memset(&spec, 0, sizeof(spec));
  spec.tenant = key.tenant;
  memcpy(spec.resource, key.resource, sizeof(spec.resource));
  spec.window_start = key.window_start;
  spec.period = static_cast<int32>(levels.period);
  spec.soft = levels.soft;
  spec.limit = levels.value;
  spec.alert_count = levels.limited ? levels.alert_count : 0;
  memcpy(spec.alert_levels, levels.alert_levels, sizeof(spec.alert_levels));
  return spec;
}

}  // namespace

std::string RedisKey(const MeterKey &key) {
  return RedisTenantPrefix(key.tenant) + key.resource + ":" + std::to_string(key.window_start);
}

int64 TtlMs(Period period, int64 window_start) {
  if (period == Period::kNone) return 0;
  return (WindowEnd(period, window_start) - window_start) / 1000 + 1000;  // a second of grace
}

redis::Client &Connection() { return redis_client; }

// Connects lazily; after a failure, waits (doubling up to 5 s) before the next attempt, so a
// Redis outage costs each call no more than a check of the clock.
bool EnsureRedis(std::string *error) {
  if (connected_url_version != redis_url_version) {
    redis_client.Disconnect();
    connected_url_version = redis_url_version;
    next_connect_attempt = 0;
  }
  if (redis_client.Connected()) return true;
  const TimestampTz now = GetCurrentTimestamp();
  if (now < next_connect_attempt) {
    *error = "Redis was unreachable; reconnecting after a pause";
    return false;
  }
  std::string url_error;
  auto url = redis::ParseRedisUrl(redis_url != nullptr ? redis_url : "", &url_error);
  if (!url) {
    *error = "pg_tenant.redis_url is not set or invalid: " + url_error;
    return false;
  }
  if (!redis_client.Connect(*url, redis_connect_timeout_ms, redis_command_timeout_ms, error)) {
    connect_backoff_ms = connect_backoff_ms == 0 ? 100 : std::min(connect_backoff_ms * 2, 5000);
    next_connect_attempt = now + static_cast<TimestampTz>(connect_backoff_ms) * 1000;
    return false;
  }
  connect_backoff_ms = 0;
  Reconcile();
  return true;
}

Count CountInRedis(const MeterKey &key, Period period, uint64 amount, bool limited, uint64 limit,
                   const limits::Limit &levels) {
  std::string error;
  const std::string redis_key = RedisKey(key);
  // Most calls are served from this server's lease of units (meters/lease.cpp): no round trip.
  const lease::Session session{redis_url, redis_url_version, redis_client.Connected()};
  uint64 served_used = 0, before = lease::kNoMark;
  if (lease::Serve(session, redis_key, amount, limited, limit, &served_used, &before))
    return {Outcome::kCounted, served_used, before};
  if (EnsureRedis(&error)) {
    redis::MeterReply reply = lease::Meter(redis_client, session, redis_key, static_cast<int64>(amount),
                                           limited ? static_cast<int64>(limit) : -1, TtlMs(period, key.window_start),
                                           WindowEnd(period, key.window_start), SpecOf(key, levels), &before);
    if (reply.status == redis::MeterReply::Status::kCounted)
      return {Outcome::kCounted, static_cast<uint64>(reply.used), before};
    if (reply.status == redis::MeterReply::Status::kOverLimit) return {Outcome::kOverLimit, static_cast<uint64>(reply.used)};
    error = reply.error;
    connect_backoff_ms = connect_backoff_ms == 0 ? 100 : std::min(connect_backoff_ms * 2, 5000);
    next_connect_attempt = GetCurrentTimestamp() + static_cast<TimestampTz>(connect_backoff_ms) * 1000;
  }
  switch (redis_failure) {
    case kFailOpen: {
      const TimestampTz now = GetCurrentTimestamp();
      if (now - last_open_warning >= 10 * USECS_PER_SEC) {
        last_open_warning = now;
        PgCall([&] {
          ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                            errmsg("Redis meter backend unavailable, letting meter calls through: %s", error.c_str()),
                            errhint("pg_tenant.redis_failure = open; this warning repeats at most every 10 s.")));
        });
      }
      return {Outcome::kCounted, std::numeric_limits<uint64>::max()};  // not counted anywhere: left unknown
    }
    case kFailLocal:
      return PgCall([&] { return CountIn(key, period, amount, limited, limit, true); });
    default:
      throw Error(errcodes::kRedisUnavailable, "Redis meter backend unavailable: " + error, "",
                  "Check pg_tenant.redis_url and the Redis server; pg_tenant.redis_failure = open or local keeps "
                  "meters working during an outage.");
  }
}

Count CountOnceInRedis(const MeterKey &key, std::string_view once, Period period, uint64 amount, bool hard,
                       uint64 limit, const limits::Limit &levels, bool *repeated) {
  std::string error;
  if (EnsureRedis(&error)) {
    const std::string once_key = RedisTenantPrefix(key.tenant) + key.resource + ":once:" + std::string(once);
    const redis::MeterOnceReply reply =
        redis_client.MeterOnce(RedisKey(key), once_key, static_cast<int64>(amount), hard ? static_cast<int64>(limit) : -1,
                               TtlMs(period, key.window_start), static_cast<int64>(idempotency_horizon_s) * 1000);
    if (reply.meter.status != redis::MeterReply::Status::kFailed) {
      if (reply.repeated && reply.amount != static_cast<int64>(amount))
        throw keys::AmountDiffers(reply.amount, static_cast<int64>(amount));
      *repeated = reply.repeated;
      return {reply.meter.status == redis::MeterReply::Status::kCounted ? Outcome::kCounted : Outcome::kOverLimit,
              static_cast<uint64>(reply.meter.used)};
    }
    error = reply.meter.error;
  }
  if (redis_failure == kFailClosed)
    throw Error(errcodes::kRedisUnavailable, "Redis meter backend unavailable: " + error, "",
                "Check pg_tenant.redis_url and the Redis server.");
  return CountInRedis(key, period, amount, hard, limit, levels);
}

// Redis's count plus what this server served and has not reported yet (other servers report
// theirs every half pg_tenant.redis_lease_time).
bool Usage(FunctionCallInfo fcinfo, const pg_uuid_t &tenant) {
  struct Row {
    std::string resource;
    int64 window_start;
    int64 used;
    bool no_window;
  };
  std::vector<Row> rows;
  std::string error;
  std::vector<std::pair<std::string, int64_t>> values;
  const std::string prefix = RedisTenantPrefix(tenant);
  if (!EnsureRedis(&error) || !redis_client.ValuesWithPrefix(prefix, &values, &error)) {
    PgCall([&] {
      ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                        errmsg("tenant usage shows this server's meter counters only: %s", error.c_str())));
    });
    return false;
  }
  const TimestampTz now = GetCurrentTimestamp();
  for (const auto &[key, used] : values) {
    const std::string rest = key.substr(prefix.size());  // <resource>:<window start>
    const size_t colon = rest.find(':');
    if (colon == std::string::npos || rest.find(':', colon + 1) != std::string::npos) continue;
    const std::string resource = rest.substr(0, colon);
    if (!limits::IsValidResourceName(resource)) continue;
    const int64 window_start = std::strtoll(rest.c_str() + colon + 1, nullptr, 10);
    const Period period = limits::EffectiveLimit(tenant, resource).period;
    if (WindowEnd(period, window_start) <= now) continue;
    rows.push_back({resource, window_start, used + static_cast<int64>(lease::Unreported(key)), period == Period::kNone});
  }
  PgCall([&] {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    for (const Row &row : rows) {
      Datum datums[3] = {CStringGetTextDatum(row.resource.c_str()), TimestampTzGetDatum(row.window_start),
                         Int64GetDatum(row.used)};
      bool nulls[3] = {false, row.no_window, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, datums, nulls);
    }
  });
  return true;
}

// Redis keys are deleted now (a rollback of the purge loses them: they are counters, not data).
void ForgetTenant(const pg_uuid_t &tenant) {
  lease::Forget(RedisTenantPrefix(tenant));  // nothing of it may reach Redis after the keys are gone
  if (meter_backend != kBackendRedis) return;
  std::string error;
  int64 deleted = 0;
  if (!EnsureRedis(&error) || !redis_client.DeletePrefix(RedisTenantPrefix(tenant), &deleted, &error)) {
    if (redis_failure == kFailClosed)
      throw Error(errcodes::kRedisUnavailable, "cannot delete the tenant's meters in Redis: " + error, "",
                  "Retry when Redis answers; with pg_tenant.redis_failure = open or local the purge goes on "
                  "with a warning and the keys expire with their windows.");
    PgCall([&] {
      ereport(WARNING, (errcode(errcodes::kRedisUnavailable),
                        errmsg("the tenant's meters in Redis were not deleted: %s", error.c_str())));
    });
  }
}

}  // namespace redis_backend
}  // namespace pg_tenant::meters
