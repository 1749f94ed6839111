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

-- 'missing', 'current' or 'different': how a table's generated policy compares with what protect
-- creates. search_path is pinned because pg_get_expr prints names relative to it.
CREATE FUNCTION tenant._policy_state(rel oid, policy name, permissive boolean, tenant_column name)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT CASE
         WHEN p.oid IS NULL THEN 'missing'
         WHEN p.polcmd OPERATOR(pg_catalog.=) '*' AND p.polpermissive OPERATOR(pg_catalog.=) $3
              AND p.polroles OPERATOR(pg_catalog.=) '{0}'::pg_catalog.oid[]
              AND pg_catalog.pg_get_expr(p.polqual, p.polrelid)
                  OPERATOR(pg_catalog.=) pg_catalog.format('(%s = tenant.current_id())', pg_catalog.quote_ident($4))
              AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
                  OPERATOR(pg_catalog.=) pg_catalog.format('(%s = tenant.current_id())', pg_catalog.quote_ident($4))
         THEN 'current'
         ELSE 'different'
       END
  FROM (SELECT) AS one
  LEFT JOIN pg_catalog.pg_policy p
         ON p.polrelid OPERATOR(pg_catalog.=) $1 AND p.polname OPERATOR(pg_catalog.=) $2
$$;

CREATE FUNCTION tenant.protect(rel regclass, tenant_column name DEFAULT 'tenant_id')
    RETURNS SETOF regclass
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_protect';
COMMENT ON FUNCTION tenant.protect(regclass, name) IS
    'makes rel tenant-scoped (column, foreign key, index, forced RLS, generated policies), with its partitions and children; returns them';

CREATE FUNCTION tenant.unprotect(rel regclass)
    RETURNS SETOF regclass
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_unprotect';
COMMENT ON FUNCTION tenant.unprotect(regclass) IS
    'drops the generated policies and RLS flags of rel and of the children protected with it; returns them';

CREATE FUNCTION tenant.policy_sql(rel regclass, tenant_column name DEFAULT 'tenant_id')
    RETURNS text
    LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_policy_sql';
COMMENT ON FUNCTION tenant.policy_sql(regclass, name) IS
    'the DDL tenant.protect(rel) would run now, for review in a migration';

CREATE FUNCTION tenant.protect_all(schema name DEFAULT 'public', tenant_column name DEFAULT 'tenant_id')
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

-- New partitions and children of protected tables (CREATE TABLE ... PARTITION OF / INHERITS,
-- ATTACH PARTITION, ALTER TABLE ... INHERIT) are protected in the same transaction.
CREATE FUNCTION tenant._protect_new_children() RETURNS event_trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_protect_new_children';
CREATE EVENT TRIGGER pg_tenant_protect_new_children ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION tenant._protect_new_children();
ALTER EVENT TRIGGER pg_tenant_protect_new_children ENABLE ALWAYS;

-- A dropped table leaves the catalog.
CREATE FUNCTION tenant._forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    DELETE FROM tenant.scoped_tables s
     WHERE s.relid::pg_catalog.oid IN (
           SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              AND d.objsubid OPERATOR(pg_catalog.=) 0);  -- a dropped column is not a dropped table
END
$$;
CREATE EVENT TRIGGER pg_tenant_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION tenant._forget_dropped_tables();
ALTER EVENT TRIGGER pg_tenant_forget_dropped_tables ENABLE ALWAYS;

REVOKE ALL ON FUNCTION tenant._policy_state(oid, name, boolean, name), tenant.protect(regclass, name),
    tenant.unprotect(regclass), tenant.policy_sql(regclass, name), tenant.protect_all(name, name),
    tenant._protect_new_children(), tenant._forget_dropped_tables() FROM PUBLIC;
