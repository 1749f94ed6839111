-- pg_tenant 0.2.0 -> 0.3.0: the DDL guard.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.3.0'" to load this file. \quit

-- New tables in guarded schemas must carry the tenant column (or be exempted); protected tables
-- stay protected. Both triggers are ENABLE ALWAYS, so session_replication_role = replica does
-- not switch them off. Settings: pg_tenant.enforce, pg_tenant.guarded_schemas,
-- pg_tenant.auto_protect (all superuser-only).
-- No SET search_path here: the C code resolves the altered table's name as the user wrote it,
-- then pins search_path itself for its own SQL (spi::PinnedSearchPath).
CREATE FUNCTION tenant._guard_ddl_command_end() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_guard_ddl_command_end';
CREATE EVENT TRIGGER pg_tenant_guard_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA', 'ALTER TABLE',
                 'ALTER POLICY', 'CREATE MATERIALIZED VIEW')
    EXECUTE FUNCTION tenant._guard_ddl_command_end();
ALTER EVENT TRIGGER pg_tenant_guard_ddl_command_end ENABLE ALWAYS;

CREATE FUNCTION tenant._guard_sql_drop() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_guard_sql_drop';
CREATE EVENT TRIGGER pg_tenant_guard_sql_drop ON sql_drop
    WHEN TAG IN ('ALTER TABLE', 'DROP POLICY')
    EXECUTE FUNCTION tenant._guard_sql_drop();
ALTER EVENT TRIGGER pg_tenant_guard_sql_drop ENABLE ALWAYS;

-- Exemptions, with whether the table exists yet.
CREATE VIEW tenant.exempted_tables AS
SELECT e.schema_name, e.table_name, e.reason, e.exempted_by, e.exempted_at,
       pg_catalog.to_regclass(pg_catalog.format('%I.%I', e.schema_name, e.table_name)) IS NOT NULL AS table_exists
  FROM tenant.exemptions e;
COMMENT ON VIEW tenant.exempted_tables IS 'deliberate shared tables (tenant.exempt), with who, when and why';

REVOKE ALL ON FUNCTION tenant._guard_ddl_command_end(), tenant._guard_sql_drop() FROM PUBLIC;
REVOKE ALL ON tenant.exempted_tables FROM PUBLIC;
