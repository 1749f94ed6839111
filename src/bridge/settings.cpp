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

}  // namespace pg_tenant::bridge
