// Rules for settings that hold a secret (pg_tenant.redis_url, pg_tenant.context_secret), shared by
// their GUC check hooks.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::bridge {

// A secret may be set in postgresql.conf, by ALTER SYSTEM or by SET, never by ALTER DATABASE/ROLE
// ... SET or a function's SET clause (validated as PGC_S_TEST): those store it in catalogs every
// role can read (pg_db_role_setting, pg_proc). For a check hook: true when the source is refused,
// with the GUC error (55P02) set.
bool RefuseSecretSource(const char *name, GucSource source) noexcept;

// For pure parsers that hold no resources (jsonb_in, the raw SQL parser): runs fn, and a
// PostgreSQL error it raises is flushed and reported as false. Never for anything that takes
// locks, buffers or files.
template <typename Fn>
bool WithoutParseError(Fn &&fn) {
  MemoryContext context = CurrentMemoryContext;
  volatile bool parsed = true;
  PG_TRY();
  { fn(); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    FlushErrorState();
    parsed = false;
  }
  PG_END_TRY();
  return parsed;
}

}  // namespace pg_tenant::bridge
