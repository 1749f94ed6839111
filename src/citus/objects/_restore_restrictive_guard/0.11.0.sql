-- Called by the DDL door (as the extension owner; not SECURITY DEFINER, revoked from PUBLIC) on
-- a shard that just got tenant_isolation_guard from Citus, as permissive: the policy is made
-- again as protect makes it (tenant._guard_policy_sql: the generator's text), restrictive, on
-- the column the copy reads (a policy depends on the columns of its expressions). A copy that
-- does not read exactly one column is not pg_tenant's guard: it is dropped (a permissive policy
-- only widens what a tenant sees), and the audit's citus_shard_policy reports the missing guard.
CREATE OR REPLACE FUNCTION tenant._restore_restrictive_guard(shard regclass) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    columns name[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.attname)
      INTO columns
      FROM pg_catalog.pg_policy p
      LEFT JOIN pg_catalog.pg_depend d
             ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
            AND d.objid OPERATOR(pg_catalog.=) p.oid
            AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
            AND d.refobjid OPERATOR(pg_catalog.=) p.polrelid AND d.refobjsubid OPERATOR(pg_catalog.>) 0
      LEFT JOIN pg_catalog.pg_attribute a
             ON a.attrelid OPERATOR(pg_catalog.=) p.polrelid AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
     WHERE p.polrelid OPERATOR(pg_catalog.=) shard AND p.polname OPERATOR(pg_catalog.=) 'tenant_isolation_guard'
       AND p.polpermissive
     GROUP BY p.oid;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP POLICY tenant_isolation_guard ON %s', shard);
    IF pg_catalog.cardinality(pg_catalog.array_remove(columns, NULL)) OPERATOR(pg_catalog.<>) 1 THEN
        RETURN false;
    END IF;
    EXECUTE tenant._guard_policy_sql(shard, columns[1]);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION tenant._restore_restrictive_guard(regclass) FROM PUBLIC;
