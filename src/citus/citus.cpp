#include "citus/citus.hpp"

#include "bridge/spi.hpp"
#include "catalog/catalog.hpp"

#include <string>

namespace pg_tenant::citus {
namespace {

using bridge::PgCall;

// Citus's prefix for the application_name of the connections it opens between nodes
// (connection_management.h); Citus itself trusts it the same way.
constexpr const char *kInternalApplicationPrefix = "citus_internal gpid=";

// The shard of table placed on this node, or nullopt.
std::optional<std::string> LocalShardId(spi::Session &spi, Oid table) {
  const auto rows = spi.Query(
      "SELECT s.shardid FROM pg_catalog.pg_dist_shard s "
      "JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
      "WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
      "AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) "
      "ORDER BY s.shardid LIMIT 1",
      {{OIDOID, ObjectIdGetDatum(table)}});
  if (rows.empty() || !rows[0][0]) return std::nullopt;
  return rows[0][0];
}

// Citus names a shard and its indexes <name>_<shardid> (in the schema of the table).
Oid ShardRelation(Oid relation, const std::string &shard_id) {
  return PgCall([&] {
    const std::string name = std::string(get_rel_name(relation)) + "_" + shard_id;
    return get_relname_relid(name.c_str(), get_rel_namespace(relation));
  });
}

}  // namespace

bool Loaded() {
  static int loaded = -1;
  if (loaded < 0) loaded = PgCall([] { return GetConfigOption("citus.propagate_set_commands", true, false) != nullptr; });
  return loaded == 1;
}

bool Installed() {
  return Loaded() && PgCall([] { return OidIsValid(get_extension_oid("citus", true)); });
}

bool IsCitusTable(Oid table) {
  if (!Installed()) return false;
  spi::Session spi;
  const auto rows = spi.Query(
      "SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
      {{OIDOID, ObjectIdGetDatum(table)}});
  spi.Finish();
  return !rows.empty();
}

LocalRows RowsOf(Oid table, Oid index) {
  if (!IsCitusTable(table)) return {table, index};
  spi::Session spi;
  const auto shard_id = LocalShardId(spi, table);
  spi.Finish();
  if (!shard_id)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "table " + bridge::RelationName(table) + " is a Citus table with no shard on this node",
                "pg_tenant reads the registry from the copy of its reference tables on each node.",
                "On the coordinator, run SELECT citus_set_coordinator_host(...) so that it holds the reference "
                "tables too (README, section Citus).");
  LocalRows rows{ShardRelation(table, *shard_id), ShardRelation(index, *shard_id)};
  if (!OidIsValid(rows.table) || !OidIsValid(rows.index))
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the shard " + *shard_id + " of " + bridge::RelationName(table) + " or its index is missing on this node");
  return rows;
}

bool RegistryDistributed() {
  if (!Installed()) return false;
  const Oid tenants = catalog::RelationId(catalog::Rel::kTenants);
  return OidIsValid(tenants) && IsCitusTable(tenants);
}

bool IsWorker() {
  if (!Installed()) return false;
  spi::Session spi;
  const auto rows = spi.Query("SELECT g.groupid OPERATOR(pg_catalog.<>) 0 FROM pg_catalog.pg_dist_local_group g");
  spi.Finish();
  return !rows.empty() && rows[0][0] == std::optional<std::string>("t");
}

bool InternalBackend() {
  return application_name != nullptr &&
         strncmp(application_name, kInternalApplicationPrefix, strlen(kInternalApplicationPrefix)) == 0;
}

bool IsKnownShard(Oid relid) {
  if (!Installed()) return false;
  spi::Session spi;
  const auto rows = spi.Query("SELECT pg_catalog.relation_is_a_known_shard($1::pg_catalog.regclass)",
                              {{OIDOID, ObjectIdGetDatum(relid)}});
  spi.Finish();
  return !rows.empty() && rows[0][0] == std::optional<std::string>("t");
}

}  // namespace pg_tenant::citus

using namespace pg_tenant;

// tenant._is_citus_table(rel regclass) returns boolean.
PG_TENANT_FUNCTION(pg_tenant_is_citus_table) { PG_RETURN_BOOL(citus::IsCitusTable(PG_GETARG_OID(0))); }

