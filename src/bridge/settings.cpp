#include "bridge/settings.hpp"

namespace pg_tenant::bridge {

bool RefuseSecretSource(const char *name, GucSource source) noexcept {
  if (source != PGC_S_TEST && source != PGC_S_DATABASE && source != PGC_S_USER && source != PGC_S_DATABASE_USER &&
      source != PGC_S_GLOBAL)
    return false;
  GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
  GUC_check_errmsg("%s can be set only in postgresql.conf, by ALTER SYSTEM or by SET", name);
  GUC_check_errdetail("ALTER DATABASE/ROLE ... SET and function SET clauses store it where every role can read it.");
  return true;
}

namespace {
constexpr const char *kSecretSettings[] = {"pg_tenant.context_secret", "pg_tenant.redis_url"};
constexpr char kMask[] = "********";
}  // namespace

const char *ShownSecret(const char *value) noexcept {
  if (value == nullptr || value[0] == '\0') return "";
  // superuser() reads the catalog on a cache miss: only inside a transaction (SHOW always is).
  if (IsTransactionState() && superuser()) return value;
  return kMask;
}

char *MaskedSecretMessage(const ErrorData *entry) noexcept {
  if (entry->message_id == nullptr || entry->message == nullptr ||
      strcmp(entry->message_id, "parameter \"%s\" changed to \"%s\"") != 0)
    return nullptr;
  for (const char *name : kSecretSettings) {
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "\"%s\"", name);
    if (strstr(entry->message, quoted) == nullptr) continue;
    const size_t size = strlen(quoted) + sizeof(kMask) + 32;
    auto *masked = static_cast<char *>(MemoryContextAllocExtended(CurrentMemoryContext, size, MCXT_ALLOC_NO_OOM));
    if (masked != nullptr) snprintf(masked, size, "parameter %s changed to \"%s\"", quoted, kMask);
    return masked;
  }
  return nullptr;
}

}  // namespace pg_tenant::bridge
