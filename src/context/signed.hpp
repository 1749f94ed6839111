// Signed tenant context (DESIGN.md capability 13): tenant.sign() issues a token (compact JWS,
// HS256) for a tenant under pg_tenant.context_secret, tenant.set_signed() enters the tenant it
// names after checking signature, key and validity. Under pg_tenant.require_signed_context that
// is the only way in, so SQL injection in an application cannot hop tenants.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::context {

// pg_tenant.context_secret (registered in src/wiring/settings.cpp), its check and show hooks.
extern char *context_secret;
bool CheckContextSecret(char **newval, void **extra, GucSource source) noexcept;
const char *ShowContextSecret() noexcept;

}  // namespace pg_tenant::context
