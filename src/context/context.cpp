// The context is the GUC pg_tenant.tenant_id, so that it follows PostgreSQL's own rules: SET LOCAL
// and tenant.set() end with the transaction (pooler-safe), SET and tenant.set_session() last for
// the session, RESET/DISCARD ALL clear it. On Citus, tenant.set() runs a SET LOCAL that Citus
// propagates to its workers.
//
// The check hook accepts only '' or a uuid (it may not read tables). Whether that tenant exists
// and is active is checked by tenant.set() before setting, and by tenant.current_id() on first
// read after any change of the value or of the registry, so a raw SET cannot skip validation.
//
// How a tenant was entered is part of the context (0.10.0): tenant.set_signed() also sets the
// hidden pg_tenant.signed_tenant_id to the same tenant, with the same GUC action, and only
// pg_tenant itself can set that one (its check hook refuses every other path; a parallel worker
// restores its leader's). Under pg_tenant.require_signed_context, a pg_tenant.tenant_id that
// signed_tenant_id does not confirm is no tenant at all: whatever set it (startup options applied
// before the role's settings, ALTER ROLE ... SET, a function's SET clause, anything PostgreSQL
// adds later), current_id() is NULL and the policies show nothing. The rule is evaluated in the
// assign hooks of the three settings, so the hot path still reads statics only.
#include "context/context.hpp"

#include "bridge/spi.hpp"
#include "citus/citus.hpp"

#include <string>

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "common/uuid_text.hpp"
#include "registry/registry.hpp"
#include "registry/slug.hpp"

namespace pg_tenant::context {

// The settings (registered in src/wiring/settings.cpp); the strings are owned by guc.c.
char *tenant_id_setting = nullptr;
int missing_context = kMissingEmpty;
bool require_signed_context = false;
char *signed_tenant_setting = nullptr;

namespace {

// Set while pg_tenant itself assigns pg_tenant.tenant_id (Enter): under
// pg_tenant.require_signed_context every other assignment (SET, SET LOCAL, set_config) is refused.
bool internal_assignment = false;
// Set while tenant.set_signed() assigns pg_tenant.signed_tenant_id: no other path may.
bool signed_assignment = false;

// What the assign hooks saw: the raw settings.
struct SettingTenant {
  bool set = false;
  pg_uuid_t id;
};
SettingTenant setting_tenant;  // pg_tenant.tenant_id
SettingTenant signed_tenant;   // pg_tenant.signed_tenant_id

// The tenant in force, derived from the settings (EffectiveContext); current_id() reads only these
// on its fast path.
bool has_context = false;
pg_uuid_t context_id;
uint64 context_version = 0;

// A tenant pg_tenant works for while it runs a table owner's statement (ActingForTenant): it
// stands in for the settings until the scope ends.
bool acting = false;
pg_uuid_t acting_id;

// The last successful validation of (context_version, registry generation).
uint64 validated_version = 0;
uint64 validated_generation = 0;

bool SameTenant(const pg_uuid_t &a, const pg_uuid_t &b) { return memcmp(a.data, b.data, UUID_LEN) == 0; }

// The one rule of which tenant is in force: the tenant pg_tenant acts for, else the setting's,
// which under require_signed_context counts only when tenant.set_signed() entered it.
void EffectiveContext(bool require_signed) noexcept {
  if (acting) {
    has_context = true;
    context_id = acting_id;
  } else {
    has_context = setting_tenant.set &&
                  (!require_signed || (signed_tenant.set && SameTenant(signed_tenant.id, setting_tenant.id)));
    if (has_context) context_id = setting_tenant.id;
  }
  ++context_version;
}

// Parses a uuid setting into its canonical text and a malloc'd pg_uuid_t for the assign hook.
bool CheckUuidSetting(char **newval, void **extra, const char *hint) noexcept {
  auto parsed = ParseUuid(*newval);
  if (!parsed) {
    GUC_check_errcode(ERRCODE_INVALID_TEXT_REPRESENTATION);
    GUC_check_errmsg("invalid tenant id: \"%s\"", *newval);
    GUC_check_errhint("%s", hint);
    return false;
  }
  // Keep the canonical form, so SHOW and current_setting() agree with current_id().
  char canonical[37];
  FormatUuid(*parsed, canonical);
  if (strcmp(canonical, *newval) != 0) {
    char *copy = static_cast<char *>(malloc(sizeof(canonical)));
    if (copy == nullptr) return false;
    memcpy(copy, canonical, sizeof(canonical));
    free(*newval);
    *newval = copy;
  }
  auto *id = static_cast<pg_uuid_t *>(malloc(sizeof(pg_uuid_t)));
  if (id == nullptr) return false;
  memcpy(id->data, parsed->data(), UUID_LEN);
  *extra = id;
  return true;
}

}  // namespace

bool CheckTenantId(char **newval, void **extra, GucSource) noexcept {
  if (*newval == nullptr || (*newval)[0] == '\0') return true;
  // A parallel worker restores its leader's settings, in name order: the leader's context is
  // restored as it was (require_signed_context may come first), and EffectiveContext judges it.
  if (require_signed_context && !internal_assignment && !InitializingParallelWorker) {
    GUC_check_errcode(errcodes::kSignedContextRequired);
    GUC_check_errmsg("this role may enter a tenant only with a signed token");
    GUC_check_errhint("pg_tenant.require_signed_context is on: call tenant.set_signed(token).");
    return false;
  }
  return CheckUuidSetting(newval, extra, "pg_tenant.tenant_id takes a tenant uuid, or '' for no tenant.");
}

void AssignTenantId(const char *, void *extra) noexcept {
  setting_tenant.set = extra != nullptr;
  if (setting_tenant.set) setting_tenant.id = *static_cast<pg_uuid_t *>(extra);
  EffectiveContext(require_signed_context);
}

// pg_tenant.signed_tenant_id: set by tenant.set_signed() only, or restored from the leader in a
// parallel worker (the leader could only have it from set_signed). '' (leaving) is always allowed.
bool CheckSignedTenantId(char **newval, void **extra, GucSource) noexcept {
  if (*newval == nullptr || (*newval)[0] == '\0') return true;
  if (!signed_assignment && !InitializingParallelWorker) {
    GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
    GUC_check_errmsg("pg_tenant.signed_tenant_id is set by tenant.set_signed() only");
    return false;
  }
  return CheckUuidSetting(newval, extra, "");
}

void AssignSignedTenantId(const char *, void *extra) noexcept {
  signed_tenant.set = extra != nullptr;
  if (signed_tenant.set) signed_tenant.id = *static_cast<pg_uuid_t *>(extra);
  EffectiveContext(require_signed_context);
}

// The assign hook runs before the variable changes: the rule is applied with the new value.
void AssignRequireSigned(bool newval, void *) noexcept { EffectiveContext(newval); }

namespace {

// Citus sends the SET LOCAL statements it sees go through ProcessUtility to every worker the
// transaction uses (citus.propagate_set_commands = local); a value set with set_config_option
// stays on this node, and the workers would see no tenant (no rows, never the wrong rows).
// SET LOCAL pg_tenant.tenant_id = value, as a statement Citus propagates (value: a canonical
// uuid, or '' to leave). Citus's setting is 'local' for that statement only.
void SetLocalForCitus(const char *value) {
  spi::Session spi;
  const std::string saved = bridge::PgCall([] {
    return std::string(GetConfigOption("citus.propagate_set_commands", true, false));
  });
  bridge::PgCall([] {
    (void)set_config_option("citus.propagate_set_commands", "local", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
                            true, 0, false);
  });
  spi.Run(std::string("SET LOCAL pg_tenant.tenant_id = '") + value + "'");
  bridge::PgCall([&] {
    (void)set_config_option("citus.propagate_set_commands", saved.c_str(), PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_LOCAL, true, 0, false);
  });
  spi.Finish();
}

// Raises the documented error for an unknown or suspended tenant; else returns the record. The
// name asked for is made into text only for the error (the hot path allocates nothing).
template <typename AskedText>
const registry::TenantRecord &RequireActive(const registry::TenantRecord *record, AskedText asked) {
  if (record == nullptr) throw registry::TenantNotFound(asked());
  if (!record->active)
    throw Error(errcodes::kTenantSuspended, "tenant \"" + std::string(record->slug) + "\" is suspended",
                "Tenant id " + registry::IdText(record->id) + ".",
                "A suspended tenant cannot be entered until tenant.resume().");
  return *record;
}

const registry::TenantRecord &ResolveArgument(FunctionCallInfo fcinfo, bool by_slug) {
  if (PG_ARGISNULL(0))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant must not be NULL", "",
                "Use tenant.reset() to leave the tenant context.");
  if (!by_slug) {
    pg_uuid_t *id = PG_GETARG_UUID_P(0);
    return RequireActive(registry::FindById(*id), [id] { return registry::IdText(*id); });
  }
  text *arg = PG_GETARG_TEXT_PP(0);
  std::string value(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
  // tenant.set('…uuid…') resolves to set(text): a uuid-shaped text is an id (slugs never have
  // that shape).
  if (auto id = ParseUuid(value); id && HasUuidShape(value)) {
    pg_uuid_t pg_id;
    memcpy(pg_id.data, id->data(), UUID_LEN);
    return RequireActive(registry::FindById(pg_id), [&id] { return FormatUuid(*id); });
  }
  return RequireActive(registry::FindBySlug(value), [&value] { return Echo(value); });
}

}  // namespace

const registry::TenantRecord &EnterableTenant(const pg_uuid_t &id) {
  return RequireActive(registry::FindById(id), [&id] { return registry::IdText(id); });
}

namespace {

Datum SetContext(FunctionCallInfo fcinfo, bool by_slug, GucAction action) {
  if (require_signed_context) throw SignedContextRequiredError();
  if (action == GUC_ACTION_SET && citus::Installed())
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "tenant.set_session() cannot reach the Citus workers",
                "Citus passes only transaction-local settings (SET LOCAL) to the workers.",
                "Call tenant.set() in each transaction.");
  const pg_uuid_t id = ResolveArgument(fcinfo, by_slug).id;
  Enter(id, action);
  auto *result = static_cast<pg_uuid_t *>(bridge::PgCall([] { return palloc(sizeof(pg_uuid_t)); }));
  *result = id;
  PG_RETURN_UUID_P(result);
}

// Sets a flag for its scope (the assignments pg_tenant itself makes).
class FlagScope {
 public:
  explicit FlagScope(bool *flag) : flag_(flag), saved_(*flag) { *flag = true; }
  ~FlagScope() { *flag_ = saved_; }
  FlagScope(const FlagScope &) = delete;
  FlagScope &operator=(const FlagScope &) = delete;

 private:
  bool *flag_;
  bool saved_;
};

void SetSignedTenant(const char *value, GucAction action) {
  FlagScope internal(&signed_assignment);
  bridge::PgCall([&] {
    (void)set_config_option("pg_tenant.signed_tenant_id", value, PGC_USERSET, PGC_S_SESSION, action, true, 0, false);
  });
}

}  // namespace

bool HasContext() { return has_context; }

const pg_uuid_t *UnvalidatedTenant() { return has_context ? &context_id : nullptr; }

void Enter(const pg_uuid_t &tenant, GucAction action, Entry entry) {
  char value[37];
  UuidBytes bytes;
  memcpy(bytes.data(), tenant.data, UUID_LEN);
  FormatUuid(bytes, value);
  // The signed mark goes first and with the same action, so both settings end together; an
  // unsigned entry clears a mark left by an earlier signed one (it costs nothing when none is).
  if (entry == Entry::kSigned)
    SetSignedTenant(value, action);
  else if (signed_tenant.set)
    SetSignedTenant("", action);
  FlagScope internal(&internal_assignment);
  // Outside a transaction block the value ends with the statement: nothing to pass on (and
  // SET LOCAL would warn).
  if (action == GUC_ACTION_LOCAL && citus::Loaded() && bridge::PgCall([] { return IsTransactionBlock(); }))
    SetLocalForCitus(value);
  else
    bridge::PgCall([&] {
      (void)set_config_option("pg_tenant.tenant_id", value, PGC_USERSET, PGC_S_SESSION, action, true, 0, false);
    });
  // The caller has just validated this value against the current registry.
  validated_version = context_version;
  validated_generation = registry::Generation();
}

bool SignedContextRequired() { return require_signed_context; }

Error SignedContextRequiredError() {
  return Error(errcodes::kSignedContextRequired, "this role may enter a tenant only with a signed token", "",
               "pg_tenant.require_signed_context is on: call tenant.set_signed(token).");
}

bool MissingContextIsError() { return missing_context == kMissingError; }

bool CurrentTenant(pg_uuid_t *tenant) {
  if (!has_context) return false;
  if (!acting && (validated_version != context_version || validated_generation != registry::Generation())) {
    pg_uuid_t id = context_id;
    RequireActive(registry::FindById(id), [&id] { return registry::IdText(id); });
    validated_version = context_version;
    validated_generation = registry::Generation();
  }
  *tenant = context_id;
  return true;
}

ActingForTenant::ActingForTenant(const pg_uuid_t &tenant) : saved_acting_(acting), saved_id_(acting_id) {
  acting = true;
  acting_id = tenant;
  EffectiveContext(require_signed_context);
}

ActingForTenant::~ActingForTenant() {
  acting = saved_acting_;
  acting_id = saved_id_;
  EffectiveContext(require_signed_context);
}

Error NoTenant(const std::string &detail) {
  return Error(errcodes::kNoTenantContext, "no tenant is set", detail, "Call tenant.set() first.");
}

}  // namespace pg_tenant::context

using namespace pg_tenant;
using namespace pg_tenant::context;

// tenant.set(uuid) / tenant.set(text): enter a tenant for the current transaction.
PG_TENANT_FUNCTION(pg_tenant_set_id) { return SetContext(fcinfo, false, GUC_ACTION_LOCAL); }
PG_TENANT_FUNCTION(pg_tenant_set_slug) { return SetContext(fcinfo, true, GUC_ACTION_LOCAL); }

// tenant.set_session(uuid) / tenant.set_session(text): enter a tenant until reset or disconnect.
PG_TENANT_FUNCTION(pg_tenant_set_session_id) { return SetContext(fcinfo, false, GUC_ACTION_SET); }
PG_TENANT_FUNCTION(pg_tenant_set_session_slug) { return SetContext(fcinfo, true, GUC_ACTION_SET); }

// tenant.reset(): leave the tenant context (transaction and session).
PG_TENANT_FUNCTION(pg_tenant_reset) {
  // On Citus the workers of this transaction leave the tenant too.
  if (citus::Loaded() && bridge::PgCall([] { return IsTransactionBlock(); })) SetLocalForCitus("");
  bridge::PgCall([] {
    (void)set_config_option("pg_tenant.tenant_id", nullptr, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true,
                            0, false);
  });
  if (signed_tenant.set) SetSignedTenant(nullptr, GUC_ACTION_SET);
  PG_RETURN_VOID();
}

// tenant.current_id(): the validated current tenant, or NULL. Called per row by policies, so the
// fast path reads only three statics and allocates the 16-byte result.
PG_TENANT_FUNCTION(pg_tenant_current_id) {
  pg_uuid_t tenant;
  if (!CurrentTenant(&tenant)) PG_RETURN_NULL();
  auto *result = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
  *result = tenant;
  PG_RETURN_UUID_P(result);
}
