-------------------------------------------------------------------------------------------------
-- Scoped tables
-------------------------------------------------------------------------------------------------

CREATE TABLE tenant.scoped_tables (
    relid          regclass PRIMARY KEY,
    tenant_column  name NOT NULL,
    parent         regclass,
    protected_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by   name NOT NULL DEFAULT pg_catalog.session_user()
);
COMMENT ON TABLE tenant.scoped_tables IS 'Tables protected by tenant.protect(); parent is set for partitions and children protected with their parent';
SELECT pg_catalog.pg_extension_config_dump('tenant.scoped_tables', '');
REVOKE ALL ON tenant.scoped_tables FROM PUBLIC;

-- The configured tenant column (pg_tenant.tenant_column): what protect, protect_all and
-- policy_sql use by default, what the DDL guard requires and what the audit looks for.
CREATE FUNCTION tenant.tenant_column() RETURNS name
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_tenant_column';
COMMENT ON FUNCTION tenant.tenant_column() IS 'the configured tenant column name (pg_tenant.tenant_column)';

-- A table's protection as the one C++ reader sees it (src/policy/protection.cpp): each policy is
-- 'missing', 'current' (what protect creates, compared as an expression tree) or 'different'.
CREATE FUNCTION tenant._protection(rel regclass, tenant_column name,
                                   OUT column_is_uuid boolean, OUT column_not_null boolean,
                                   OUT has_tenant_key boolean, OUT has_leading_index boolean,
                                   OUT rls_enabled boolean, OUT rls_forced boolean,
                                   OUT isolation_policy text, OUT guard_policy text)
    RETURNS record
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_protection';

-- The tenant key (src/policy/tenant_key.cpp): what a foreign key from every scoped table to
-- tenant.tenants ON DELETE CASCADE guaranteed (no row of an unregistered tenant; a deleted
-- tenant's rows go with it), with one trigger per scoped table and two on the registry instead of
-- two on the registry per scoped table, each of which made adding the next one slower.
-- protect adds to each table: CREATE TRIGGER tenant_key AFTER INSERT OR UPDATE OF <column> ...
-- FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('<column>').
CREATE FUNCTION tenant._tenant_key_check() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_key_check';
CREATE FUNCTION tenant._tenant_key_erase() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_key_erase';
CREATE TRIGGER tenants_erase_rows AFTER DELETE OR UPDATE OF id ON tenant.tenants
    FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_erase();
CREATE TRIGGER tenants_truncate BEFORE TRUNCATE ON tenant.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._tenant_key_erase();
COMMENT ON FUNCTION tenant._tenant_key_check() IS
    'trigger of each scoped table: the row''s tenant must be registered (23503); locks its registry row FOR KEY SHARE';
COMMENT ON FUNCTION tenant._tenant_key_erase() IS
    'trigger of tenant.tenants: a deleted tenant''s rows are deleted from every scoped table; its id cannot change while rows use it; no TRUNCATE while tables are scoped';

-- What views and materialized views read (through views, CTEs and SQL functions) and what
-- functions write: the audit's view of copies made outside row level security.
CREATE FUNCTION tenant._reads_scoped(rel regclass) RETURNS regclass[]
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_reads_scoped';
CREATE FUNCTION tenant._writes_to(fn regprocedure) RETURNS regclass[]
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_writes_to';

--#include policy/objects/_top_scoped_tables/0.11.0.sql

-- A table, then its partitions and inheritance children, recursively (each after its parent).
CREATE FUNCTION tenant._table_tree(rel regclass) RETURNS SETOF regclass
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_table_tree';

CREATE FUNCTION tenant.protect(rel regclass, tenant_column name DEFAULT tenant.tenant_column())
    RETURNS SETOF regclass
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_protect';
COMMENT ON FUNCTION tenant.protect(regclass, name) IS
    'makes rel tenant-scoped (column, tenant key, index, forced RLS, generated policies), with its partitions and children; returns them';

CREATE FUNCTION tenant.unprotect(rel regclass)
    RETURNS SETOF regclass
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_unprotect';
COMMENT ON FUNCTION tenant.unprotect(regclass) IS
    'drops the generated policies, RLS flags and tenant key of rel and of the children protected with it; returns them';

CREATE FUNCTION tenant.policy_sql(rel regclass, tenant_column name DEFAULT tenant.tenant_column())
    RETURNS text
    LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_policy_sql';
COMMENT ON FUNCTION tenant.policy_sql(regclass, name) IS
    'the DDL tenant.protect(rel) would run now, for review in a migration';

CREATE FUNCTION tenant.protect_all(schema name DEFAULT 'public', tenant_column name DEFAULT tenant.tenant_column())
    RETURNS SETOF regclass
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t regclass;
BEGIN
    IF schema IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'schema and tenant column must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000';
    END IF;
    -- Top-level tables only: partitions and children are protected with their parents.
    FOR t IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
               AND a.attname OPERATOR(pg_catalog.=) tenant_column AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname OPERATOR(pg_catalog.=) schema
           AND c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
         ORDER BY c.relname
    LOOP
        RETURN QUERY SELECT * FROM tenant.protect(t, tenant_column);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.protect_all(name, name) IS
    'protects every table of schema that has the tenant column; returns what it protected';

-- New partitions and children of protected tables are protected, and dropped tables forgotten,
-- by steps of the DDL door (src/ddl/ddl.sql, src/policy/protect.cpp).

--#include policy/objects/_guard_policy_sql/0.11.0.sql

REVOKE ALL ON FUNCTION tenant.tenant_column(), tenant._protection(regclass, name), tenant._table_tree(regclass),
    tenant._top_scoped_tables(),
    tenant._tenant_key_check(), tenant._tenant_key_erase(),
    tenant._reads_scoped(regclass), tenant._writes_to(regprocedure),
    tenant.protect(regclass, name), tenant.unprotect(regclass), tenant.policy_sql(regclass, name),
    tenant.protect_all(name, name) FROM PUBLIC;
-- protect's default argument calls it as the calling role.
GRANT EXECUTE ON FUNCTION tenant.tenant_column() TO PUBLIC;
-- The owner of a protected partitioned table who creates or attaches a partition clones the
-- tenant_key trigger to it, which needs EXECUTE on its function. Called directly, a trigger
-- function only raises an error; attached by anyone else, it refuses a table that is not scoped
-- (42501) and a tenant column that is not a uuid (42804) before it reads anything (0.10.0); the
-- check itself runs as the registry's owner.
GRANT EXECUTE ON FUNCTION tenant._tenant_key_check() TO PUBLIC;
