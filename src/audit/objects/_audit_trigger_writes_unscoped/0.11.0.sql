-- trigger_writes_unscoped (a warning, for review): a trigger function (not an extension's) that writes to tables that are not scoped.
CREATE OR REPLACE FUNCTION tenant._audit_trigger_writes_unscoped(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'trigger_writes_unscoped', 'warning',
       format('trigger %I runs %s, which writes to %s: rows copied there are readable without the policies',
              g.tgname, p.oid::regprocedure, array_to_string(w.unscoped, ', ')),
       format('DROP TRIGGER %I ON %s;', g.tgname, s.relid::regclass)
  FROM unnest($1) s
  JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
  JOIN pg_proc p ON p.oid = g.tgfoid
 CROSS JOIN LATERAL (SELECT array_agg(x ORDER BY x::text) AS unscoped FROM unnest(tenant._writes_to(p.oid)) AS x
                      WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables k WHERE k.relid = x)) w
 WHERE w.unscoped IS NOT NULL AND NOT tenant._is_extension_function(p.oid)
$$;
REVOKE ALL ON FUNCTION tenant._audit_trigger_writes_unscoped(tenant._audited_table[]) FROM PUBLIC;
