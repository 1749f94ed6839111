-- no_tenant_index: no index leads with the tenant column (the same test protect makes).
CREATE OR REPLACE FUNCTION tenant._audit_no_tenant_index(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'no_tenant_index', 'warning',
       format('no index leads with %I: every tenant-scoped query scans the whole table', s.col),
       format('CREATE INDEX ON %s (%I);', s.relid::regclass, s.col)
  FROM unnest($1) s
 WHERE NOT s.has_leading_index
$$;
REVOKE ALL ON FUNCTION tenant._audit_no_tenant_index(tenant._audited_table[]) FROM PUBLIC;
