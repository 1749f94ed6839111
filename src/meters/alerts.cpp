// Usage alerts, the meter calls' side (0.9.0): the levels a count crossed are queued in the
// alert outbox (store.hpp) for the worker, which writes them with its flush (flusher.cpp). The
// meter call knows the count before and after its own amount (the CAS in shared memory, the
// script's reply in Redis), so it alone sees a level crossed; with Redis leases every server's
// high-water mark passes it, and a level is claimed in Redis first.
//
// Locking: AlertQueue::mutex (a spinlock) is held only to append one record: no call, no error,
// no allocation under it. No LWLock is taken here. A full queue: the caller writes the alert
// itself through SPI, as the extension owner (spi::AsRole; tenant._usage_alert is pg_tenant's own
// function: no user code runs), holding no lock; a report (the worker) drops it with a LOG.
#include <string>
#include <vector>

#include "bridge/bridge.hpp"
#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"
#include "meters/redis_backend.hpp"
#include "meters/store.hpp"

namespace pg_tenant::meters {
namespace store {
namespace {

using bridge::PgCall;
using limits::Period;
using limits::PeriodName;

// The worker writes the alerts of its database (pg_tenant.database) only, as it saves only that
// database's counters.
bool InWorkerDatabase() {
  static int known = -1;
  if (known < 0)
    known = PgCall([] {
      const char *name = get_database_name(MyDatabaseId);
      return name != nullptr && meter_database != nullptr && strcmp(name, meter_database) == 0;
    });
  return known == 1;
}

// A full queue (the worker is behind by a thousand alerts): the caller writes the alert in its own
// transaction, as the extension owner; it is then lost if that transaction rolls back.
pg_noinline void WriteAlertNow(const AlertRecord &alert) {
  spi::Session spi;
  spi::AsRole as_owner(catalog::ExtensionOwner());
  pg_uuid_t tenant = alert.tenant;
  spi.Execute(kAlertSql, {{UUIDOID, UUIDPGetDatum(&tenant)},
                          {TEXTOID, spi::TextParam(alert.resource)},
                          {TIMESTAMPTZOID, TimestampTzGetDatum(alert.window_start)},
                          {TEXTOID, spi::TextParam(PeriodName(static_cast<Period>(alert.period)))},
                          {INT4OID, Int32GetDatum(alert.level)},
                          {INT8OID, Int64GetDatum(static_cast<int64>(alert.used))},
                          {INT8OID, Int64GetDatum(static_cast<int64>(alert.limit))},
                          {TEXTOID, spi::TextParam(alert.soft ? "soft" : "hard")}});
  spi.Finish();
}

}  // namespace

// The levels a count that moved from before to after crossed. In shared memory each is crossed
// by exactly one call of the window. With Redis (claim) every server's high-water mark passes
// it, so a level is claimed first (SET NX of <key>:alert:<level>, one round trip for the levels
// of a call, with the backend's connection or a report's client): only the server that sets the
// key records it. A claim that fails (Redis unreachable) records anyway: at least once rather
// than never. A report (from_report: the worker, outside a transaction) writes no SQL: with the
// queue full it drops the alert with a LOG.
void RecordCrossings(const MeterKey &key, const limits::Limit &limit, uint64 before, uint64 after, bool claim,
                     redis::Client *client, const std::string *redis_key, bool from_report) {
  if (RecoveryInProgress() || (!from_report && !InWorkerDatabase())) return;  // a standby writes nothing
  int crossed[limits::kMostAlertLevels];
  int count = 0;
  for (int i = 0; i < limit.alert_count && i < limits::kMostAlertLevels; ++i) {
    const uint64 threshold = limits::AlertThreshold(limit.value, limit.alert_levels[i]);
    if (before < threshold && threshold <= after) crossed[count++] = i;
  }
  bool mine[limits::kMostAlertLevels];
  for (int j = 0; j < count; ++j) mine[j] = true;
  std::string error;
  if (count > 0 && claim && (client != nullptr || redis_backend::EnsureRedis(&error))) {  // only on a crossing: rare
    const std::string counter = redis_key != nullptr ? *redis_key : redis_backend::RedisKey(key);
    std::vector<std::string> keys;
    for (int j = 0; j < count; ++j) keys.push_back(counter + ":alert:" + std::to_string(limit.alert_levels[crossed[j]]));
    std::vector<int64_t> claimed;
    if ((client != nullptr ? client : &redis_backend::Connection())
            ->Claim(keys, redis_backend::TtlMs(limit.period, key.window_start), &claimed, &error))
      for (int j = 0; j < count; ++j) mine[j] = claimed[j] == 1;
  }
  for (int j = 0; j < count; ++j) {
    if (!mine[j]) continue;  // another server records it
    const int i = crossed[j];
    AlertRecord alert;
    memset(&alert, 0, sizeof(alert));
    alert.tenant = key.tenant;
    memcpy(alert.resource, key.resource, sizeof(alert.resource));
    alert.window_start = key.window_start;
    alert.period = static_cast<int32>(limit.period);
    alert.level = limit.alert_levels[i];
    alert.used = after;
    alert.limit = limit.value;
    alert.soft = limit.soft;
    SpinLockAcquire(&alert_queue->mutex);
    const bool queued = alert_queue->count < kAlertQueueSize;
    if (queued) alert_queue->records[alert_queue->count++] = alert;
    SpinLockRelease(&alert_queue->mutex);
    if (!queued && !from_report) WriteAlertNow(alert);
    if (!queued && from_report)
      PgCall([&] {
        ereport(LOG, (errmsg("pg_tenant dropped usage alert %d%% of \"%s\": the alert queue is full", alert.level,
                             alert.resource)));
      });
  }
}

}  // namespace store

// A report raised the mark of key (lease.hpp): the levels it passed, for the keys of the
// worker's database only (pg_tenant:<database>:...).
void RecordReportedCrossings(const lease::AlertSpec &spec, const std::string &redis_key, uint64 before, uint64 after,
                             redis::Client &client) {
  using namespace store;
  if (meter_database == nullptr || redis_key.rfind("pg_tenant:" + std::string(meter_database) + ":", 0) != 0) return;
  MeterKey key;
  memset(&key, 0, sizeof(key));
  key.database = MyDatabaseId;
  key.tenant = spec.tenant;
  memcpy(key.resource, spec.resource, sizeof(key.resource));
  key.window_start = spec.window_start;
  limits::Limit limit;
  limit.limited = true;
  limit.value = spec.limit;
  limit.period = static_cast<limits::Period>(spec.period);
  limit.soft = spec.soft;
  limit.alert_count = spec.alert_count;
  memcpy(limit.alert_levels, spec.alert_levels, sizeof(limit.alert_levels));
  RecordCrossings(key, limit, before, after, true, &client, &redis_key, true);
}

}  // namespace pg_tenant::meters
