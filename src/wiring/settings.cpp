// Every setting of pg_tenant, registered here and nowhere else, in this order (the order of
// README's settings table). A capability owns its variables and their check/assign/show hooks
// (declared in its header) and reads the variables; this file gives them their names, texts,
// defaults, bounds and contexts. The order matters where a hook reads another setting: the
// context's hooks read pg_tenant.require_signed_context as it stands when they run.
//
//   registry   tenant_cache_size
//   context    tenant_id, missing_context, require_signed_context, signed_tenant_id, context_secret
//   policy     tenant_column
//   guard      guarded_schemas, enforce, auto_protect
//   meters     (preloaded only) max_meters, max_meters_per_tenant, max_idempotency_keys,
//              max_idempotency_keys_per_tenant, idempotency_horizon, flush_interval, database,
//              meter_backend, redis_url, redis_connect_timeout, redis_command_timeout,
//              redis_failure, redis_lease_max, redis_lease_time
//   stats      log_tenant; (preloaded only) stats, stats_max_tenants, stats_period
//
// test/scripts/wiring.sh checks that README lists exactly these, in this order.
#include "wiring/wiring.hpp"

#include "bridge/settings.hpp"
#include "context/context.hpp"
#include "context/signed.hpp"
#include "guard/guard.hpp"
#include "meters/lease.hpp"
#include "meters/meter.hpp"
#include "policy/protection.hpp"
#include "registry/registry.hpp"
#include "stats/stats.hpp"

namespace pg_tenant::wiring {
namespace {

const struct config_enum_entry kMissingContextOptions[] = {
    {"empty", context::kMissingEmpty, false}, {"error", context::kMissingError, false}, {nullptr, 0, false}};
const struct config_enum_entry kEnforceOptions[] = {{"error", guard::kEnforceError, false},
                                                    {"warn", guard::kEnforceWarn, false},
                                                    {"off", guard::kEnforceOff, false},
                                                    {nullptr, 0, false}};
const struct config_enum_entry kBackendOptions[] = {
    {"shmem", meters::kBackendShmem, false}, {"redis", meters::kBackendRedis, false}, {nullptr, 0, false}};
const struct config_enum_entry kFailureOptions[] = {{"closed", meters::kFailClosed, false},
                                                    {"open", meters::kFailOpen, false},
                                                    {"local", meters::kFailLocal, false},
                                                    {nullptr, 0, false}};
const struct config_enum_entry kLogTenantOptions[] = {{"off", stats::kLogOff, false},
                                                      {"id", stats::kLogId, false},
                                                      {"slug", stats::kLogSlug, false},
                                                      {nullptr, 0, false}};

void DefineRegistrySettings() {
  DefineCustomIntVariable("pg_tenant.tenant_cache_size", "Most tenant records each backend keeps cached.",
                          "When the cache is full it is emptied and refilled on demand.", &registry::cache_capacity,
                          10000, 1, 1000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
}

void DefineContextSettings() {
  DefineCustomStringVariable(
      "pg_tenant.tenant_id", "The current tenant (a uuid), or '' for none.",
      "Set it with tenant.set() (transaction) or tenant.set_session(); SET LOCAL works too. "
      "tenant.current_id() validates it against the registry.",
      &context::tenant_id_setting, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, context::CheckTenantId, context::AssignTenantId, nullptr);
  DefineCustomEnumVariable("pg_tenant.missing_context",
                           "What a statement on a tenant-scoped table does with no tenant set: empty or error.",
                           "empty: row level security shows no rows; error: the statement fails (TN008) naming "
                           "the table. Set it per role (ALTER ROLE ... SET) to find forgotten contexts.",
                           &context::missing_context, context::kMissingEmpty, kMissingContextOptions, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomBoolVariable("pg_tenant.require_signed_context",
                           "Only tenant.set_signed() may enter a tenant (set it per role with ALTER ROLE ... SET).",
                           "tenant.set(), tenant.set_session() and any SET of pg_tenant.tenant_id are refused (TN013).",
                           &context::require_signed_context, false, PGC_SUSET, 0, nullptr, context::AssignRequireSigned, nullptr);
  DefineCustomStringVariable("pg_tenant.signed_tenant_id", "The tenant tenant.set_signed() entered (set by it only).",
                             "Under pg_tenant.require_signed_context a pg_tenant.tenant_id this does not confirm is no "
                             "tenant.",
                             &context::signed_tenant_setting, "", PGC_USERSET,
                             GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE, context::CheckSignedTenantId,
                             context::AssignSignedTenantId, nullptr);
  DefineCustomStringVariable("pg_tenant.context_secret", "The keys that sign tenant tokens: key_id:secret[, ...].",
                             "The first key signs (tenant.sign); every listed key verifies (tenant.set_signed), so "
                             "two are valid at once while keys rotate. Superuser-only, never readable by other roles; "
                             "postgresql.conf, ALTER SYSTEM or SET only.",
                             &context::context_secret, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
                             context::CheckContextSecret, nullptr, context::ShowContextSecret);
}

void DefinePolicyAndGuardSettings() {
  DefineCustomStringVariable("pg_tenant.tenant_column", "The name of the tenant column.",
                             "What the DDL guard requires of new tables in guarded schemas, what auto_protect, "
                             "protect_all and the audit look for, and tenant.protect()'s default.",
                             &policy::tenant_column_setting, policy::kDefaultTenantColumn, PGC_SUSET, 0, policy::CheckTenantColumn, nullptr, nullptr);
  DefineCustomStringVariable("pg_tenant.guarded_schemas",
                             "Schemas where every table must have the tenant column or be exempted.",
                             "A comma-separated list of schema names, quoted as in SQL; checked by the DDL guard "
                             "and tenant.audit().",
                             &guard::guarded_schemas_setting, "public", PGC_SUSET, GUC_LIST_INPUT,
                             guard::CheckGuardedSchemas, guard::AssignGuardedSchemas, nullptr);
  DefineCustomEnumVariable("pg_tenant.enforce", "What the DDL guard does with a violation: error, warn or off.",
                           nullptr, &guard::enforce, guard::kEnforceError, kEnforceOptions, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("pg_tenant.auto_protect",
                           "Protect each new table with a tenant column in a guarded schema, in the same transaction.",
                           nullptr, &guard::auto_protect, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
}

// Shared memory sizes and the worker: only a preloaded library can use them.
void DefineMeterSettings() {
  DefineCustomIntVariable("pg_tenant.max_meters", "Most meter counters kept in shared memory.",
                          "One counter per database, tenant, resource and window.", &meters::max_meters, 10000, 16,
                          10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.max_meters_per_tenant", "Most meter counters one tenant may hold at once.",
                          "Its share of pg_tenant.max_meters: one counter per resource and open window. A tenant "
                          "past it is refused (53400); the others are not affected.",
                          &meters::max_meters_per_tenant, 64, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.max_idempotency_keys", "Most idempotency keys of meter calls kept at once.",
                          "Each is kept for pg_tenant.idempotency_horizon; a keyed call finding them all younger is "
                          "refused (53400).",
                          &meters::max_idempotency_keys, 10000, 16, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.max_idempotency_keys_per_tenant", "Most idempotency keys one tenant may hold at once.",
                          "Its share of pg_tenant.max_idempotency_keys. A tenant past it is refused (53400); the "
                          "others are not affected.",
                          &meters::max_idempotency_keys_per_tenant, 1000, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("pg_tenant.idempotency_horizon", "How long a meter call's idempotency key is remembered.",
                          "A repeat within it counts nothing and gets the first call's answer.", &meters::idempotency_horizon_s,
                          300, 1, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.flush_interval", "How often meters are written to tenant.meter_counts.",
                          "A crash loses at most this much counting.", &meters::store::flush_interval_ms, 1000, 10, 3600000,
                          PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("pg_tenant.database", "The database whose meters the background worker persists.",
                             nullptr, &meters::store::meter_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomEnumVariable("pg_tenant.meter_backend", "Where meters count: shmem (this server) or redis (shared).",
                           nullptr, &meters::meter_backend, meters::kBackendShmem, kBackendOptions, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomStringVariable("pg_tenant.redis_url", "The Redis server of the redis meter backend.",
                             "redis://[:password@]host:port[/db]", &meters::redis_url, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
                             meters::CheckRedisUrl, meters::AssignRedisUrl, [] { return bridge::ShownSecret(meters::redis_url); });
  DefineCustomIntVariable("pg_tenant.redis_connect_timeout", "Longest wait to connect to Redis.", nullptr,
                          &meters::redis_connect_timeout_ms, 200, 1, 60000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.redis_command_timeout", "Longest wait for a Redis reply.", nullptr,
                          &meters::redis_command_timeout_ms, 200, 1, 60000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomEnumVariable("pg_tenant.redis_failure",
                           "When Redis is unreachable: closed (error), open (let calls through), local (count here).",
                           nullptr, &meters::redis_failure, meters::kFailClosed, kFailureOptions, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomIntVariable("pg_tenant.redis_lease_max", "Most meter units a server leases from Redis at once.",
                          "Leases are also at most half of what the limit leaves, divided among the servers "
                          "holding leases; 0 counts every call in Redis (one round trip per call).",
                          &meters::lease::lease_max, 1000, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.redis_lease_time", "How long a server keeps a lease of meter units.",
                          "The background worker then returns its unused units to Redis, and reports used "
                          "ones every half of it.",
                          &meters::lease::lease_time_ms, 1000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
}

void DefineStatsSettings(bool preloading) {
  DefineCustomEnumVariable("pg_tenant.log_tenant", "Tags server log lines with the tenant: off, id or slug.",
                           "While a tenant is set, each entry written to the server log gets a server-only "
                           "DETAIL line tenant=<id or slug>; clients see no change.",
                           &stats::log_tenant, stats::kLogOff, kLogTenantOptions, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  if (!preloading) return;
  DefineCustomBoolVariable("pg_tenant.stats", "Counts statements per tenant (tenant.stats).",
                           "Off: nothing is counted; what was counted stays readable.", &stats::stats_enabled, true,
                           PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.stats_max_tenants", "Most tenants whose statistics are kept in shared memory.",
                          "Beyond it (plus a quarter), the least active tenants are merged into the row \"other\".",
                          &stats::max_tenants, 1000, 10, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("pg_tenant.stats_period", "Length of the periods of tenant.stats (current and previous).",
                          "Periods are aligned to multiples of their length; a tenant's activity score halves at "
                          "each period boundary.",
                          &stats::period_seconds, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

}  // namespace

void DefineSettings(bool preloading) {
  DefineRegistrySettings();
  DefineContextSettings();
  DefinePolicyAndGuardSettings();
  if (preloading) DefineMeterSettings();
  DefineStatsSettings(preloading);
  MarkGUCPrefixReserved("pg_tenant");
}

}  // namespace pg_tenant::wiring
