// The slug rule, in one place: the tenants table's CHECK constraint, tenant.create and
// tenant.set(text) all call IsValidSlug (through tenant.is_valid_slug in SQL).
#pragma once

#include <string_view>

namespace pg_tenant {

constexpr size_t kMaxSlugLength = 63;

// A DNS label (RFC 1123): 1 to 63 of a-z, 0-9 and '-', neither first nor last a hyphen.
// A slug may not have the shape of a uuid, so that tenant.set(text) is never ambiguous.
bool IsValidSlug(std::string_view slug);

// True when text has the 36-character canonical uuid shape (8-4-4-4-12 hex digits).
bool HasUuidShape(std::string_view text);

}  // namespace pg_tenant
