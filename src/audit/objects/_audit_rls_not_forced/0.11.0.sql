-- rls_not_forced: the table owner is not bound by the policies.
CREATE OR REPLACE FUNCTION tenant._audit_rls_not_forced(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'rls_not_forced', 'critical',
       'row level security is not forced: the table owner reads every tenant''s rows',
       format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', s.relid::regclass)
  FROM unnest($1) s WHERE NOT s.rls_forced
$$;
REVOKE ALL ON FUNCTION tenant._audit_rls_not_forced(tenant._audited_table[]) FROM PUBLIC;
