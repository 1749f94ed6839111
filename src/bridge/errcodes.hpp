// The extension's own SQLSTATEs (class TN, "tenant"); README.md lists them with the standard
// codes the extension also raises. Never renumber a shipped code.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::errcodes {

constexpr int kTenantNotFound = MAKE_SQLSTATE('T', 'N', '0', '0', '1');
constexpr int kTenantSuspended = MAKE_SQLSTATE('T', 'N', '0', '0', '2');
constexpr int kPlanNotFound = MAKE_SQLSTATE('T', 'N', '0', '0', '3');
constexpr int kTenantColumnMissing = MAKE_SQLSTATE('T', 'N', '0', '0', '4');
constexpr int kProtectionWeakened = MAKE_SQLSTATE('T', 'N', '0', '0', '5');
constexpr int kLimitReached = MAKE_SQLSTATE('T', 'N', '0', '0', '6');
constexpr int kFeatureNotEnabled = MAKE_SQLSTATE('T', 'N', '0', '0', '7');
constexpr int kNoTenantContext = MAKE_SQLSTATE('T', 'N', '0', '0', '8');
constexpr int kRedisUnavailable = MAKE_SQLSTATE('T', 'N', '0', '0', '9');
constexpr int kTenantReadOnly = MAKE_SQLSTATE('T', 'N', '0', '1', '0');
constexpr int kInvalidTenantToken = MAKE_SQLSTATE('T', 'N', '0', '1', '1');
constexpr int kTenantTokenExpired = MAKE_SQLSTATE('T', 'N', '0', '1', '2');
constexpr int kSignedContextRequired = MAKE_SQLSTATE('T', 'N', '0', '1', '3');

}  // namespace pg_tenant::errcodes
