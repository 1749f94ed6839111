-- policy_missing and policy_changed: a generated policy is gone, or is not what tenant.protect() creates.
CREATE OR REPLACE FUNCTION tenant._audit_policy_missing_or_changed(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text,
       CASE st.state WHEN 'missing' THEN 'policy_missing' ELSE 'policy_changed' END, 'critical',
       format('generated policy %I is %s', st.policy,
              CASE st.state WHEN 'missing' THEN 'missing' ELSE 'not what tenant.protect() created' END),
       format('SELECT tenant.protect(%L, %L);', s.relid::regclass::text, s.col)
  FROM unnest($1) s
 CROSS JOIN LATERAL (VALUES ('tenant_isolation', s.isolation_policy),
                            ('tenant_isolation_guard', s.guard_policy)) AS st(policy, state)
 WHERE st.state <> 'current'
$$;
REVOKE ALL ON FUNCTION tenant._audit_policy_missing_or_changed(tenant._audited_table[]) FROM PUBLIC;
