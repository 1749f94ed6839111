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

-- Called by the DDL door on a shard that just got tenant_isolation_guard from Citus, as
-- permissive: the same policy again, restrictive.
CREATE FUNCTION tenant._restore_restrictive_guard(shard regclass) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    guard record;
BEGIN
    SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
      INTO guard
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) shard AND p.polname OPERATOR(pg_catalog.=) 'tenant_isolation_guard'
       AND p.polpermissive;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP POLICY tenant_isolation_guard ON %s', shard);
    EXECUTE pg_catalog.format('CREATE POLICY tenant_isolation_guard ON %s AS RESTRICTIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                              shard, guard.qual, guard.with_check);
    RETURN true;
END
$$;

-- For tenant.audit(): every placement of every scoped Citus table, read on its node by the one
-- protection reader (tenant._protection, src/policy/protection.cpp: row level security enabled
-- and forced, tenant_isolation and tenant_isolation_guard as protect makes them, compared as
-- expression trees), and no other permissive policy. Nothing when Citus is not installed. It runs
-- as the audit's caller (tenant.audit() is SECURITY DEFINER: the extension owner), on each node too.
CREATE FUNCTION tenant._citus_shard_findings()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    scoped regclass;
    tenant_column name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    FOR scoped, tenant_column IN
        SELECT s.relid, s.tenant_column FROM tenant.scoped_tables s WHERE tenant._is_citus_table(s.relid) ORDER BY s.relid::text
    LOOP
        RETURN QUERY
            SELECT scoped::text, 'citus_shard_policy', 'critical',
                   pg_catalog.format('shard %s on %s:%s: %s', r.shardid, r.nodename, r.nodeport, r.result),
                   pg_catalog.format('SELECT tenant.unprotect(%L); SELECT tenant.protect(%L);', scoped::text, scoped::text)
              FROM pg_catalog.run_command_on_placements(scoped, pg_catalog.format($shard$
SELECT CASE WHEN p.rls_enabled AND p.rls_forced AND p.isolation_policy = 'current' AND p.guard_policy = 'current'
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy o WHERE o.polrelid = c.oid AND o.polpermissive AND o.polname <> 'tenant_isolation')
            THEN 'ok'
            ELSE 'row level security ' || CASE WHEN c.relforcerowsecurity THEN 'forced' ELSE 'not forced' END ||
                 ', tenant_isolation ' || coalesce(p.isolation_policy, 'missing') ||
                 ', tenant_isolation_guard ' || coalesce(p.guard_policy, 'missing') || ', policies: ' ||
                 coalesce((SELECT pg_catalog.string_agg(o.polname || CASE WHEN o.polpermissive THEN ' (permissive)' ELSE ' (restrictive)' END, ', ' ORDER BY o.polname)
                             FROM pg_catalog.pg_policy o WHERE o.polrelid = c.oid), 'none')
       END
  FROM pg_catalog.pg_class c LEFT JOIN tenant._protection(c.oid::pg_catalog.regclass, %L) p ON true
 WHERE c.oid = '%%s'::pg_catalog.regclass
$shard$, tenant_column)) r
             WHERE r.result IS DISTINCT FROM 'ok';
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION tenant._is_citus_table(regclass), tenant.distribute_registry(), tenant._restore_restrictive_guard(regclass),
    tenant._citus_shard_findings()
FROM PUBLIC;
