// Included last by the .cpp files of pure C++ logic (no PostgreSQL headers), so that unit tests can build
// them without a server. If PostgreSQL's headers came in before it (through src/bridge/pg.hpp), the build
// fails.
#pragma once

#ifdef PG_TENANT_INCLUDES_POSTGRES
static_assert(false, "a pure C++ file must not include PostgreSQL headers");
#endif
