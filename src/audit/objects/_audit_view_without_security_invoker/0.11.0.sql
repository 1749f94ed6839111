-- view_without_security_invoker: a view runs with its owner's rights unless security_invoker is set.
CREATE OR REPLACE FUNCTION tenant._audit_view_without_security_invoker(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT v.oid::regclass::text, 'view_without_security_invoker', 'critical',
       format('reads %s with the rights of its owner %I, not of the querying role',
              string_agg(DISTINCT s.relid::regclass::text, ', '), pg_get_userbyid(v.relowner)),
       format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass)
  FROM pg_class v
  JOIN pg_rewrite rw ON rw.ev_class = v.oid
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                  AND d.refclassid = 'pg_class'::regclass
  JOIN unnest($1) s ON s.relid = d.refobjid
 WHERE v.relkind = 'v'
   AND NOT coalesce('security_invoker=true' = ANY (v.reloptions)
                 OR 'security_invoker=on' = ANY (v.reloptions), false)
 GROUP BY v.oid, v.relowner
$$;
REVOKE ALL ON FUNCTION tenant._audit_view_without_security_invoker(tenant._audited_table[]) FROM PUBLIC;
