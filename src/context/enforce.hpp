// Per-statement enforcement of the context (strict context, read-only tenants): an ExecutorStart
// hook, chained to any earlier one.
#pragma once

namespace pg_tenant::context {

// Called from _PG_init.
void InitEnforcement();

}  // namespace pg_tenant::context
