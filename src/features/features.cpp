// Feature flags (DESIGN.md capability 9): tenant.has_feature() and tenant.require_feature(). The
// merged flags (plan defaults || tenant overrides) come with the cached tenant record.
#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "context/context.hpp"
#include "registry/registry.hpp"

#include <string>

namespace pg_tenant::features {
namespace {

using bridge::PgCall;

// A flag is on when the merged features map it to JSON true; anything else (absent, false, a
// string) is off: fail closed.
bool FeatureOn(const registry::TenantRecord &tenant, const std::string &name) {
  if (tenant.features == nullptr) return false;
  return PgCall([&] {
    JsonbValue *value = getKeyJsonValueFromContainer(&tenant.features->root, name.data(),
                                                     static_cast<int>(name.size()), nullptr);
    return value != nullptr && value->type == jbvBool && value->val.boolean;
  });
}

std::string FeatureArgument(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "feature name must not be NULL");
  text *name = PG_GETARG_TEXT_PP(0);
  return std::string(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
}

}  // namespace
}  // namespace pg_tenant::features

using namespace pg_tenant;
using namespace pg_tenant::features;

// tenant.has_feature(name text) returns boolean: false without a tenant.
PG_TENANT_FUNCTION(pg_tenant_has_feature) {
  std::string name = FeatureArgument(fcinfo);
  pg_uuid_t tenant;
  if (!context::CurrentTenant(&tenant)) PG_RETURN_BOOL(false);
  const registry::TenantRecord *record = registry::FindById(tenant);
  PG_RETURN_BOOL(record != nullptr && FeatureOn(*record, name));
}

// tenant.require_feature(name text): TN007 unless the current tenant has it.
PG_TENANT_FUNCTION(pg_tenant_require_feature) {
  std::string name = FeatureArgument(fcinfo);
  pg_uuid_t tenant;
  if (!context::CurrentTenant(&tenant)) throw context::NoTenant("Features are checked for the current tenant.");
  const registry::TenantRecord *record = registry::FindById(tenant);
  if (record == nullptr || !FeatureOn(*record, name))
    throw Error(errcodes::kFeatureNotEnabled,
                "feature \"" + name + "\" is not enabled for tenant \"" + (record ? record->slug : "?") + "\"",
                std::string("Plan \"") + (record ? record->plan : "?") + "\" does not include it.",
                "Enable it in tenant.plans.features or tenant.tenants.feature_overrides, or upgrade the plan.");
  PG_RETURN_VOID();
}
