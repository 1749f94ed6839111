-- Whether a function belongs to an extension (pg_tenant's own triggers are not the audit's findings).
CREATE OR REPLACE FUNCTION tenant._is_extension_function(fn oid) RETURNS boolean
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$
SELECT EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_proc'::regclass AND d.objid = $1
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
$$;
REVOKE ALL ON FUNCTION tenant._is_extension_function(oid) FROM PUBLIC;
