#include "registry/slug.hpp"

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in
#include "common/uuid_text.hpp"

namespace pg_tenant {

bool HasUuidShape(std::string_view text) { return text.size() == 36 && ParseUuid(text).has_value(); }

bool IsValidSlug(std::string_view slug) {
  if (slug.empty() || slug.size() > kMaxSlugLength) return false;
  if (slug.front() == '-' || slug.back() == '-') return false;
  for (char c : slug) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!allowed) return false;
  }
  return !HasUuidShape(slug);
}

}  // namespace pg_tenant
