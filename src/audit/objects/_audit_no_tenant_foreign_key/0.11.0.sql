-- no_tenant_foreign_key: the table has no tenant key (named before 0.9.0, when the key was a foreign key; the name stays for those who match on it).
CREATE OR REPLACE FUNCTION tenant._audit_no_tenant_foreign_key(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'no_tenant_foreign_key', 'high',
       format('%I has no tenant key (trigger tenant_key): rows can name tenants that do not exist, and deleted tenants'' rows stay', s.col),
       format('SELECT tenant.protect(%L, %L);', s.relid::regclass, s.col)
  FROM unnest($1) s
 WHERE NOT s.has_tenant_key AND NOT tenant._is_citus_table('tenant.tenants')
$$;
REVOKE ALL ON FUNCTION tenant._audit_no_tenant_foreign_key(tenant._audited_table[]) FROM PUBLIC;
