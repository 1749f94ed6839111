-- superuser_owner: row level security never applies to the superuser that owns the table.
CREATE OR REPLACE FUNCTION tenant._audit_superuser_owner(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'superuser_owner', 'high',
       format('owned by login superuser %I, to whom row level security never applies', r.rolname),
       format('DO $fix$ BEGIN CREATE ROLE tenant_table_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $fix$; ALTER TABLE %s OWNER TO tenant_table_owner;',
              s.relid::regclass)
  FROM unnest($1) s JOIN pg_roles r ON r.oid = s.relowner
 WHERE r.rolcanlogin AND r.rolsuper
$$;
REVOKE ALL ON FUNCTION tenant._audit_superuser_owner(tenant._audited_table[]) FROM PUBLIC;
