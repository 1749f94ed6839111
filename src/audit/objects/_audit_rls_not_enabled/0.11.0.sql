-- rls_not_enabled: row level security is off, so the policies are ignored.
CREATE OR REPLACE FUNCTION tenant._audit_rls_not_enabled(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'rls_not_enabled', 'critical',
       'row level security is disabled: the policies are ignored',
       format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', s.relid::regclass)
  FROM unnest($1) s WHERE NOT s.rls_enabled
$$;
REVOKE ALL ON FUNCTION tenant._audit_rls_not_enabled(tenant._audited_table[]) FROM PUBLIC;
