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

-- For tenant.audit(): every placement of every scoped Citus table, read on its node, must have
-- row level security forced, tenant_isolation permissive, tenant_isolation_guard restrictive and
-- no other permissive policy. Nothing when Citus is not installed.
CREATE FUNCTION tenant._citus_shard_findings()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    scoped regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    FOR scoped IN SELECT s.relid FROM tenant.scoped_tables s WHERE tenant._is_citus_table(s.relid) ORDER BY s.relid::text LOOP
        RETURN QUERY
            SELECT scoped::text, 'citus_shard_policy', 'critical',
                   pg_catalog.format('shard %s on %s:%s: %s', r.shardid, r.nodename, r.nodeport, r.result),
                   pg_catalog.format('SELECT tenant.unprotect(%L); SELECT tenant.protect(%L);', scoped::text, scoped::text)
              FROM pg_catalog.run_command_on_placements(scoped, $shard$
SELECT CASE WHEN c.relrowsecurity AND c.relforcerowsecurity
             AND (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation' AND p.polpermissive) = 1
             AND (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation_guard' AND NOT p.polpermissive) = 1
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> 'tenant_isolation')
            THEN 'ok'
            ELSE 'row level security ' || CASE WHEN c.relforcerowsecurity THEN 'forced' ELSE 'not forced' END || ', policies: ' ||
                 coalesce((SELECT pg_catalog.string_agg(p.polname || CASE WHEN p.polpermissive THEN ' (permissive)' ELSE ' (restrictive)' END, ', ' ORDER BY p.polname)
                             FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid), 'none')
       END
  FROM pg_catalog.pg_class c WHERE c.oid = '%s'::pg_catalog.regclass
$shard$) r
             WHERE r.result IS DISTINCT FROM 'ok';
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION tenant._is_citus_table(regclass), tenant.distribute_registry(),
    tenant._citus_shard_findings()
FROM PUBLIC;
