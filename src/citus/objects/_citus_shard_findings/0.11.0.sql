-- For tenant.audit(): every placement of every scoped Citus table, read on its node by the one
-- protection reader (tenant._protection, src/policy/protection.cpp: row level security enabled
-- and forced, tenant_isolation and tenant_isolation_guard as protect makes them, compared as
-- expression trees), and no other permissive policy. Nothing when Citus is not installed. It runs
-- as the audit's caller (tenant.audit() is SECURITY DEFINER: the extension owner), on each node too.
CREATE OR REPLACE FUNCTION tenant._citus_shard_findings()
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
REVOKE ALL ON FUNCTION tenant._citus_shard_findings() FROM PUBLIC;
