// A step of the DDL door for CREATE POLICY on Citus. Citus copies a table's policies to its
// shards without AS RESTRICTIVE (its CreatePolicyCommandForPolicy never writes it): on a shard,
// the restrictive tenant_isolation_guard would become permissive, and any other permissive policy
// would widen what a tenant sees. So: on a shard, tenant_isolation_guard is made restrictive again
// as it arrives (creation, moves, splits); on a protected Citus table, no other policy is accepted
// (TN005). A policy rule, so it lives with the policies; citus/ only answers what Citus knows.
#pragma once

#include "event/event.hpp"

namespace pg_tenant::policy {

void AfterCreatePolicy(ddl::Event &event);

}  // namespace pg_tenant::policy
