// Module entry: PG_MODULE_MAGIC and _PG_init, which wires every setting and every hook
// (src/wiring/: settings.cpp and hooks.cpp say what, and in which order).
#include "bridge/pg.hpp"
#include "wiring/wiring.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

void _PG_init(void) {
  // pg_upgrade loads libraries only to check them; define nothing then.
  if (IsBinaryUpgrade) return;
  const bool preloading = process_shared_preload_libraries_in_progress;
  pg_tenant::wiring::DefineSettings(preloading);
  pg_tenant::wiring::InstallHooks(preloading);
}
