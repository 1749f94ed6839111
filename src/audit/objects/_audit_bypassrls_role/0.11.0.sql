-- bypassrls_role: row level security never applies to BYPASSRLS roles (superusers: superuser_owner).
CREATE OR REPLACE FUNCTION tenant._audit_bypassrls_role(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT quote_ident(r.rolname), 'bypassrls_role', 'high',
       format('login role %I has BYPASSRLS and can use %s: it reads every tenant''s rows', r.rolname,
              string_agg(DISTINCT s.relid::regclass::text, ', ')),
       format('ALTER ROLE %I NOBYPASSRLS;', r.rolname)
  FROM pg_roles r
  JOIN unnest($1) s ON s.relowner = r.oid
                                OR EXISTS (SELECT 1 FROM aclexplode(s.relacl) g WHERE g.grantee = r.oid)
 WHERE r.rolcanlogin AND r.rolbypassrls AND NOT r.rolsuper
 GROUP BY r.rolname
$$;
REVOKE ALL ON FUNCTION tenant._audit_bypassrls_role(tenant._audited_table[]) FROM PUBLIC;
