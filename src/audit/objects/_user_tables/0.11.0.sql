-- The audit's tables of users: not catalogs, not temporary, not an extension's.
CREATE OR REPLACE FUNCTION tenant._user_tables()
    RETURNS TABLE (relid oid, relname name, nspname name, relkind "char", relowner oid, relacl aclitem[])
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT c.oid AS relid, c.relname, n.nspname, c.relkind, c.relowner, c.relacl
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
$$;
REVOKE ALL ON FUNCTION tenant._user_tables() FROM PUBLIC;
