-- What holds a tenant's rows (0.11.0: one definition for purge, export, import and the tenant
-- key's erase): the top-level scoped tables, with their tenant columns. A statement on one
-- reaches its partitions and children; a table whose recorded parent is no longer its parent
-- (detached, NO INHERIT) is top-level itself.
CREATE OR REPLACE FUNCTION tenant._top_scoped_tables() RETURNS TABLE (rel regclass, tenant_column name)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid, s.tenant_column FROM tenant.scoped_tables s
 WHERE s.parent IS NULL
    OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                    WHERE i.inhrelid OPERATOR(pg_catalog.=) s.relid AND i.inhparent OPERATOR(pg_catalog.=) s.parent)
$$;
