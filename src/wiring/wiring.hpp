// The wiring of the module: every setting (settings.cpp) and every hook and callback PostgreSQL
// calls (hooks.cpp), each registered in one place, in a written order. _PG_init calls these two.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::wiring {

// preloading: pg_tenant is in shared_preload_libraries (the meters' and statistics' settings
// size shared memory, so they exist only then).
void DefineSettings(bool preloading);
void InstallHooks(bool preloading);

}  // namespace pg_tenant::wiring
