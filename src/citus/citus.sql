-------------------------------------------------------------------------------------------------
-- Citus (README, section Citus): the registry as reference tables, and the restrictive policy
-- Citus loses on shards.
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant._is_citus_table(rel regclass) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_is_citus_table';

-- Makes the registry reference tables, so that every node reads it (pg_tenant reads each node's
-- copy). Citus refuses triggers on reference tables unless told they are safe: the registry's
-- write no other table on a shard. The foreign keys between them stay between reference tables.
-- Returns the registry's tables; running it again distributes what is not yet.
CREATE FUNCTION tenant.distribute_registry() RETURNS SETOF regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    registry_table regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
            HINT = 'CREATE EXTENSION citus on the coordinator first (README, section Citus).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node d WHERE d.groupid OPERATOR(pg_catalog.=) 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the Citus metadata' USING ERRCODE = '55000',
            DETAIL = 'pg_tenant reads the registry from the copy of its reference tables on each node, the coordinator included.',
            HINT = 'SELECT citus_set_coordinator_host(''<host>'', <port>) first.';
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    FOREACH registry_table IN ARRAY
        ARRAY['tenant.plans', 'tenant.tenants', 'tenant.plan_limits', 'tenant.tenant_limits', 'tenant.status_history']::regclass[]
    LOOP
        IF NOT tenant._is_citus_table(registry_table) THEN
            PERFORM pg_catalog.create_reference_table(registry_table);
        END IF;
        RETURN NEXT registry_table;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.distribute_registry() IS
    'on a Citus coordinator: makes the registry (plans, tenants, limits, status history) reference tables that every node reads';

--#include citus/objects/_restore_restrictive_guard/0.11.0.sql

--#include citus/objects/_citus_shard_findings/0.11.0.sql

REVOKE ALL ON FUNCTION tenant._is_citus_table(regclass), tenant.distribute_registry()
FROM PUBLIC;
