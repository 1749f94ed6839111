// The tenant context: the GUC pg_tenant.tenant_id and the functions that set and read it.
#pragma once

#include "bridge/bridge.hpp"
#include "registry/registry.hpp"

#include <string>

namespace pg_tenant::context {

// The settings (registered, with their texts, in src/wiring/settings.cpp) and their hooks.
enum MissingContext { kMissingEmpty, kMissingError };
extern char *tenant_id_setting;       // pg_tenant.tenant_id
extern int missing_context;           // pg_tenant.missing_context
extern bool require_signed_context;   // pg_tenant.require_signed_context
extern char *signed_tenant_setting;   // pg_tenant.signed_tenant_id
bool CheckTenantId(char **newval, void **extra, GucSource source) noexcept;
void AssignTenantId(const char *newval, void *extra) noexcept;
bool CheckSignedTenantId(char **newval, void **extra, GucSource source) noexcept;
void AssignSignedTenantId(const char *newval, void *extra) noexcept;
void AssignRequireSigned(bool newval, void *extra) noexcept;

// The current tenant, validated like tenant.current_id() (TN001/TN002 when the setting names an
// unknown or suspended tenant); false when there is none.
bool CurrentTenant(pg_uuid_t *tenant);

// TN008, for a function that needs a tenant and has none; detail says what needed it.
Error NoTenant(const std::string &detail);

// The tenant, when it exists and may be entered (active or read-only); else TN001 or TN002.
const registry::TenantRecord &EnterableTenant(const pg_uuid_t &id);

// A tenant id is set (not validated: CurrentTenant validates).
bool HasContext();
// The tenant id set, not validated (nullptr when none): for checks that must not raise TN001 or
// TN002 themselves.
const pg_uuid_t *UnvalidatedTenant();

// How a tenant is entered: under pg_tenant.require_signed_context only a signed entry is a tenant.
enum class Entry { kUnsigned, kSigned };

// Enters the tenant as pg_tenant itself does (tenant.set, tenant.set_signed, provisioning
// hooks): action GUC_ACTION_LOCAL (this transaction), GUC_ACTION_SET (the session) or
// GUC_ACTION_SAVE (until the caller's GUC nest level ends). The caller has validated the tenant.
void Enter(const pg_uuid_t &tenant, GucAction action, Entry entry = Entry::kUnsigned);

// For its scope, the tenant in force is `tenant`, whatever the settings say, and it is not
// validated (a suspended tenant being purged, exported or imported): pg_tenant runs a table
// owner's statement for that tenant, so the owner's policies show that tenant's rows only.
class ActingForTenant {
 public:
  explicit ActingForTenant(const pg_uuid_t &tenant);
  ~ActingForTenant();
  ActingForTenant(const ActingForTenant &) = delete;
  ActingForTenant &operator=(const ActingForTenant &) = delete;

 private:
  bool saved_acting_;
  pg_uuid_t saved_id_;
};

// pg_tenant.require_signed_context is on for this session: only tenant.set_signed may enter.
bool SignedContextRequired();
Error SignedContextRequiredError();

// pg_tenant.missing_context = error.
bool MissingContextIsError();

}  // namespace pg_tenant::context
