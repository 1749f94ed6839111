// The executor door: pg_tenant's one hook on each executor entry (ExecutorStart, Run, Finish,
// End), whose steps are written in order in src/executor/door.cpp.
#pragma once

namespace pg_tenant::executor {

// From src/wiring/hooks.cpp: takes the four hooks, keeping the ones installed before pg_tenant's.
void InstallDoor();

}  // namespace pg_tenant::executor
