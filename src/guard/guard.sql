
-------------------------------------------------------------------------------------------------
-- Exemptions: tables without a tenant column on purpose (shared reference data)
-------------------------------------------------------------------------------------------------

CREATE TABLE tenant.exemptions (
    schema_name  name NOT NULL,
    table_name   name NOT NULL,
    reason       text NOT NULL CONSTRAINT exemptions_reason_given CHECK (pg_catalog.btrim(reason) OPERATOR(pg_catalog.<>) ''),
    exempted_by  name NOT NULL DEFAULT pg_catalog.session_user(),
    exempted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (schema_name, table_name)
);
COMMENT ON TABLE tenant.exemptions IS 'Shared tables without a tenant column, each a recorded decision';
SELECT pg_catalog.pg_extension_config_dump('tenant.exemptions', '');
REVOKE ALL ON tenant.exemptions FROM PUBLIC;

-- 'schema.table', parsed like an identifier, so quoting works. The schema is required: inside
-- these functions search_path is pinned, so an unqualified name would be ambiguous.
CREATE FUNCTION tenant._split_table_name(table_name text, OUT schema_name name, OUT rel_name name)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    parts text[];
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table name must not be NULL' USING ERRCODE = '22004';
    END IF;
    parts := pg_catalog.parse_ident(table_name);
    IF pg_catalog.array_length(parts, 1) IS DISTINCT FROM 2 THEN
        RAISE EXCEPTION 'invalid table name: "%"', table_name USING ERRCODE = '42602',
            HINT = 'Name the table with its schema: schema.table (quote parts as in SQL).';
    END IF;
    schema_name := parts[1];
    rel_name := parts[2];
END
$$;

CREATE FUNCTION tenant.exempt(table_name text, reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    target record;
BEGIN
    IF reason IS NULL OR pg_catalog.btrim(reason) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'an exemption needs a reason' USING ERRCODE = '22023';
    END IF;
    target := tenant._split_table_name(table_name);
    INSERT INTO tenant.exemptions (schema_name, table_name, reason)
         VALUES (target.schema_name, target.rel_name, reason)
    ON CONFLICT ON CONSTRAINT exemptions_pkey DO UPDATE
         SET reason = EXCLUDED.reason, exempted_by = EXCLUDED.exempted_by, exempted_at = EXCLUDED.exempted_at;
END
$$;
COMMENT ON FUNCTION tenant.exempt(text, text) IS 'records that a table (existing or not yet) is shared on purpose';

CREATE FUNCTION tenant.unexempt(table_name text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    target record;
BEGIN
    target := tenant._split_table_name(table_name);
    DELETE FROM tenant.exemptions e
     WHERE e.schema_name OPERATOR(pg_catalog.=) target.schema_name
       AND e.table_name OPERATOR(pg_catalog.=) target.rel_name;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tenant.unexempt(text) IS 'removes an exemption; returns whether there was one';

-- New tables in guarded schemas must carry the tenant column (or be exempted); protected tables
-- stay protected: steps of the DDL door (src/ddl/ddl.sql, src/guard/guard.cpp). Settings:
-- pg_tenant.enforce, pg_tenant.guarded_schemas, pg_tenant.auto_protect (all superuser-only).

-- pg_tenant.guarded_schemas as the guard reads it: parsed once like search_path (unquoted names
-- folded to lower case, quoted ones as written). tenant.audit() asks here too.
CREATE FUNCTION tenant.guarded_schemas() RETURNS name[]
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_guarded_schemas';
COMMENT ON FUNCTION tenant.guarded_schemas() IS 'the schemas of pg_tenant.guarded_schemas, as the DDL guard reads them';

-- Exemptions, with whether the table exists yet.
CREATE VIEW tenant.exempted_tables AS
SELECT e.schema_name, e.table_name, e.reason, e.exempted_by, e.exempted_at,
       pg_catalog.to_regclass(pg_catalog.format('%I.%I', e.schema_name, e.table_name)) IS NOT NULL AS table_exists
  FROM tenant.exemptions e;
COMMENT ON VIEW tenant.exempted_tables IS 'deliberate shared tables (tenant.exempt), with who, when and why';

REVOKE ALL ON tenant.exempted_tables FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant._split_table_name(text), tenant.exempt(text, text), tenant.unexempt(text),
    tenant.guarded_schemas() FROM PUBLIC;
