// Citus (DESIGN.md: scale-out): what pg_tenant needs to know about a Citus cluster, read from
// Citus's metadata tables (pg_dist_*) by SPI, so that pg_tenant builds and runs without Citus.
//
// On Citus the registry is made of reference tables (tenant.distribute_registry()). Their rows
// live in a shard on every node: the coordinator's own table keeps only the rows of before the
// distribution, and a worker's has none. pg_tenant reads the registry by index scans (like a
// catalog), so it scans the local shard instead of the table.
#pragma once

#include "bridge/bridge.hpp"

#include <string>

namespace pg_tenant::citus {

// The citus library is loaded in this server (it must come first in shared_preload_libraries):
// looked up once per backend. Without it nothing below needs a catalog look-up.
bool Loaded();

// The citus extension is installed in this database (and its library loaded).
bool Installed();

// Where this node keeps the rows of a table. For a table Citus does not manage: the table itself
// and its own index. For a Citus reference table: its shard on this node and the shard's copy of
// the index. A Citus table with no shard here (a coordinator not added with
// citus_set_coordinator_host, a distributed table) raises 55000: never the stale rows.
struct LocalRows {
  Oid table = InvalidOid;
  Oid index = InvalidOid;
};
LocalRows RowsOf(Oid table, Oid index);

// tenant.tenants is a Citus reference table (tenant.distribute_registry() ran): protected tables
// then have no foreign key to it (src/policy/generator.hpp says why).
bool RegistryDistributed();

// This node is a Citus worker (pg_dist_local_group's group is not the coordinator's, 0).
bool IsWorker();

// The table is managed by Citus (distributed, reference or Citus local table).
bool IsCitusTable(Oid table);

// Citus itself runs this statement on this node (shard creation, moves, DDL it propagates):
// the backend is one of its internal connections. Citus trusts the same sign.
bool InternalBackend();

// The relation is a shard of a Citus table (relation_is_a_known_shard).
bool IsKnownShard(Oid relid);

}  // namespace pg_tenant::citus
