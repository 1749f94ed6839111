// UUID text handling without PostgreSQL, shared by the GUC check hook and the unit tests.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pg_tenant {

using UuidBytes = std::array<uint8_t, 16>;

// Parses the canonical form 8-4-4-4-12 (either case) or 32 bare hex digits; braces are not
// accepted (the context value is a plain id).
std::optional<UuidBytes> ParseUuid(std::string_view text);

// Lowercase canonical 8-4-4-4-12 form, 36 characters.
std::string FormatUuid(const UuidBytes &bytes);

// Writes the canonical form plus NUL into out (37 bytes); no allocation.
void FormatUuid(const UuidBytes &bytes, char out[37]);

}  // namespace pg_tenant
