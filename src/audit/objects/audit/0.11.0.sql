-- tenant.audit(): the findings of every rule (one function each, above), most severe first.
-- SECURITY DEFINER, search_path pinned, revoked from PUBLIC: a role granted it (README: the
-- migration role) reads the catalogs and pg_tenant's tables as the extension owner. What runs
-- inside is pg_tenant's own SQL and C (the rule functions, tenant._protection, _reads_scoped,
-- _writes_to, guarded_schemas, tenant_column) and PostgreSQL's catalog functions: no user code.
-- The rules run with the definer's rights too (they are SECURITY INVOKER, called from here).
-- The scoped tables and their protection are read once (tenant._audited_tables) and handed to
-- each rule that judges them.
-- Order of the rules: the table's protection, then who can bypass it, then copies made outside
-- it, then Citus's shards; the rows are sorted, so this order only reads well.
CREATE OR REPLACE FUNCTION tenant.audit()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
SELECT f.* FROM (SELECT array_agg(t) AS scoped FROM tenant._audited_tables() t) AS input
CROSS JOIN LATERAL (
    SELECT * FROM tenant._audit_unprotected_table()
    UNION ALL SELECT * FROM tenant._audit_rls_not_enabled(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_rls_not_forced(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_policy_missing_or_changed(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_no_tenant_index(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_unique_without_tenant(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_no_tenant_foreign_key(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_bypassrls_role(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_superuser_owner(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_truncate_granted(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_view_without_security_invoker(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_table_without_tenant_column()
    UNION ALL SELECT * FROM tenant._audit_unprotected_ancestor(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_tenant_column_not_uuid()
    UNION ALL SELECT * FROM tenant._audit_materialized_view_reads_scoped()
    UNION ALL SELECT * FROM tenant._audit_rule_on_scoped_table(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_trigger_security_definer(input.scoped)
    UNION ALL SELECT * FROM tenant._audit_trigger_writes_unscoped(input.scoped)
    -- citus_shard_policy: every shard of a scoped table, on every node (src/citus/citus.sql).
    UNION ALL SELECT * FROM tenant._citus_shard_findings()
) AS f(object, rule, severity, detail, fix)
 ORDER BY CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, f.object, f.rule, f.detail, f.fix
$$;
COMMENT ON FUNCTION tenant.audit() IS 'one row per isolation finding: object, rule, severity, detail, fix SQL';
REVOKE ALL ON FUNCTION tenant.audit() FROM PUBLIC;
