// The tenant registry as seen from C++: lookups of tenant.tenants through a backend-local cache.
//
// The cache lives in a child of CacheMemoryContext. A statement trigger on tenant.tenants and
// tenant.plans sends a relcache invalidation at commit; every backend processes it at its next
// transaction start (or lock acquisition), where the catalog's callback bumps
// catalog::RegistryGeneration() (src/catalog/catalog.hpp), which marks the cache stale. The cache
// is emptied lazily at the next lookup, never inside the callback, so a lookup in progress is
// never pulled from under itself.
#pragma once

#include <string>
#include <string_view>

#include "bridge/bridge.hpp"

namespace pg_tenant::registry {

constexpr size_t kNameBufferSize = 64;  // slugs and plan names are at most 63 bytes (CHECK)

struct TenantRecord {
  pg_uuid_t id;
  bool active;     // may be entered: status 'active' or 'read_only'
  bool read_only;  // status 'read_only': reads and deletes only
  char slug[kNameBufferSize];
  char plan[kNameBufferSize];
  Jsonb *features;          // the plan's features overridden by the tenant's (in the cache's memory)
  const char *upgrade_url;  // the plan's, or nullptr (in the cache's memory)
};

// nullptr when no tenant has this id / slug. The pointer is valid until the next lookup.
// May throw PgError (catalog access) or Error (extension not installed in this database).
const TenantRecord *FindById(const pg_uuid_t &id);
const TenantRecord *FindBySlug(std::string_view slug);

// Whether a tenant has this id (FindById); false, not an error, when the registry is not
// installed in this database. May throw PgError (catalog access).
bool IsRegistered(const pg_uuid_t &id);

// The slug of a tenant this backend's cache holds, copied into out; false when it holds none.
// Never reads a table, allocates or raises: for the log hook. The cached record may be stale (a
// renamed slug shows until the backend's next look-up).
bool CachedSlug(const pg_uuid_t &id, char (&out)[kNameBufferSize]) noexcept;

// Changes whenever the cache is invalidated; callers that memoise a lookup compare it.
uint64 Generation();

// True when tenant.plans has a plan of this name (the latest committed state).
bool PlanExists(std::string_view plan);

// The errors for a tenant or plan that is not registered (TN001, TN003): one text everywhere.
Error TenantNotFound(const std::string &asked);
Error PlanNotFound(std::string_view plan);

// The canonical text of a tenant id.
std::string IdText(const pg_uuid_t &id);

// pg_tenant.tenant_cache_size (registered, with the other settings, in src/wiring/settings.cpp).
extern int cache_capacity;

}  // namespace pg_tenant::registry
