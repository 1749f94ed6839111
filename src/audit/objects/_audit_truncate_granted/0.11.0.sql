-- truncate_granted: TRUNCATE ignores row level security: a grantee can erase every tenant's rows.
CREATE OR REPLACE FUNCTION tenant._audit_truncate_granted(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'truncate_granted', 'high',
       format('TRUNCATE is granted to %s; row level security does not apply to TRUNCATE',
              CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END),
       format('REVOKE TRUNCATE ON %s FROM %s;', s.relid::regclass,
              CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END)
  FROM unnest($1) s CROSS JOIN LATERAL aclexplode(s.relacl) g
 WHERE g.privilege_type = 'TRUNCATE' AND g.grantee <> s.relowner
$$;
REVOKE ALL ON FUNCTION tenant._audit_truncate_granted(tenant._audited_table[]) FROM PUBLIC;
