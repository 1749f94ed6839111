// tenant.protect / unprotect / policy_sql / _table_tree, and the policy capability's steps of the
// DDL door.
#pragma once

#include "bridge/spi.hpp"
#include "event/event.hpp"

#include <string>

namespace pg_tenant::policy {

// Protects a table and its children on the extension's behalf (no ownership check): used by
// pg_tenant.auto_protect. The caller runs it as the extension owner.
void ProtectOnBehalf(spi::Session &spi, Oid relid, const std::string &column);

// True while tenant.protect()/unprotect() run their own DDL (the guard lets it through).
bool RunningProtectDdl();

// DDL door steps. ddl_command_end: a new or attached partition or child of a protected table is
// protected in the same transaction. sql_drop: dropped tables leave tenant.scoped_tables.
void ProtectNewChildren(ddl::Event &event);
void ForgetDroppedTables(ddl::Event &event);

}  // namespace pg_tenant::policy
