// The DDL door: the one ddl_command_end and the one sql_drop event trigger of pg_tenant
// (tenant._on_ddl_command_end, tenant._on_sql_drop). Each capability that reacts to DDL
// contributes a step; ddl.cpp runs them in the order written there.
#pragma once

#include "event/event.hpp"

namespace pg_tenant::ddl {

// A step: a capability's reaction to one event. It may throw (a refusal aborts the DDL).
struct Step {
  const char *name;
  void (*run)(Event &event);
};

// Runs one step alone, for an event trigger of an earlier release that a database keeps until
// ALTER EXTENSION UPDATE replaces it with the door.
Datum RunAlone(FunctionCallInfo fcinfo, const Step &step);

}  // namespace pg_tenant::ddl
