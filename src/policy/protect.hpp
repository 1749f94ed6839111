// What the DDL guard needs from policy generation.
#pragma once

#include "bridge/spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pg_tenant::policy {

// What a scoped table lacks compared with what tenant.protect() made of it (tenant column,
// NOT NULL, foreign key, RLS enabled and forced, both generated policies); empty when whole.
// Reads the relcache only (the policies' expression trees), so it is cheap enough for every DDL.
std::vector<std::string> MissingProtection(Oid relid, const std::string &column);

// The tenant column of a table in tenant.scoped_tables, or nullopt (one index lookup, no SQL).
std::optional<std::string> ScopedColumn(Oid relid);

// Protects a table and its children on the extension's behalf (no ownership check): used by
// pg_tenant.auto_protect. The caller runs it as the extension owner.
void ProtectOnBehalf(spi::Session &spi, Oid relid, const std::string &column);

// True while tenant.protect()/unprotect() run their own DDL (the guard lets it through).
bool RunningProtectDdl();

}  // namespace pg_tenant::policy
