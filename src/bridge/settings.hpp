// Rules for settings that hold a secret (pg_tenant.redis_url, pg_tenant.context_secret), shared by
// their GUC check hooks.
#pragma once

#include "bridge/pg.hpp"

#include <string>

namespace pg_tenant::bridge {

// A secret may be set in postgresql.conf, by ALTER SYSTEM or by SET, never by ALTER DATABASE/ROLE
// ... SET or a function's SET clause (validated as PGC_S_TEST): those store it in catalogs every
// role can read (pg_db_role_setting, pg_proc). For a check hook: true when the source is refused,
// with the GUC error (55P02) set.
bool RefuseSecretSource(const char *name, GucSource source) noexcept;

// The whole check hook of a setting that holds a secret: an empty value passes; a refused source
// fails (above); then parse(value, &error) says whether the value is valid. An invalid value is
// refused (22023) as "invalid <what>: <error>" with the hint. A C++ exception of the parser
// (bad_alloc) refuses the value: nothing escapes; the message is copied out before the parser's
// strings go away.
template <typename Parse>
bool CheckSecretSetting(const char *name, const char *what, const char *hint, const char *value, GucSource source,
                        Parse &&parse) noexcept {
  if (value == nullptr || value[0] == '\0') return true;
  if (RefuseSecretSource(name, source)) return false;
  char message[256] = "out of memory while reading it";
  bool valid = false;
  try {
    std::string error;
    valid = parse(value, &error);
    if (!valid) strlcpy(message, error.c_str(), sizeof(message));
  } catch (...) {
    valid = false;
  }
  if (!valid) {
    GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
    GUC_check_errmsg("invalid %s: %s", what, message);
    GUC_check_errhint("%s", hint);
  }
  return valid;
}

// What SHOW, current_setting() and pg_settings show of a secret setting: its value to a
// superuser, '' when it is empty, "********" to everyone else. PostgreSQL shows
// GUC_SUPERUSER_ONLY settings to members of pg_read_all_settings (pg_monitor), and the exporter
// role is one: this show hook keeps the secret from them, and GUC_NO_SHOW_ALL keeps the setting
// out of pg_settings and SHOW ALL (whose reset_val column would print it raw). pg_tenant's own
// code reads the variable, never the shown value.
const char *ShownSecret(const char *value) noexcept;

// A server log entry that would print a secret setting's value (PostgreSQL's "parameter ...
// changed to ..." on reload, matched by its untranslated format, whatever lc_messages is): the
// message with the value masked, or nullptr. For the emit_log_hook.
char *MaskedSecretMessage(const ErrorData *entry) noexcept;

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
