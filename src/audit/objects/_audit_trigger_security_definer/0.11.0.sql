-- trigger_security_definer (a warning, for review: triggers are legitimate): a trigger function that runs with its owner's rights (not pg_tenant's own).
CREATE OR REPLACE FUNCTION tenant._audit_trigger_security_definer(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'trigger_security_definer', 'warning',
       format('trigger %I runs %s with the rights of its owner %I, who may not be bound by row level security',
              g.tgname, p.oid::regprocedure, pg_get_userbyid(p.proowner)),
       format('ALTER FUNCTION %s SECURITY INVOKER;', p.oid::regprocedure)
  FROM unnest($1) s
  JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
  JOIN pg_proc p ON p.oid = g.tgfoid
 WHERE p.prosecdef AND NOT tenant._is_extension_function(p.oid)
$$;
REVOKE ALL ON FUNCTION tenant._audit_trigger_security_definer(tenant._audited_table[]) FROM PUBLIC;
