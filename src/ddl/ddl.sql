-------------------------------------------------------------------------------------------------
-- The DDL door: the one ddl_command_end and the one sql_drop event trigger. Each capability that
-- reacts to DDL (guard, protection of new children, row quotas) is a step of them, run in the
-- order written in src/ddl/ddl.cpp; both read pg_event_trigger_ddl_commands() /
-- pg_event_trigger_dropped_objects() at most once. ENABLE ALWAYS, so session_replication_role =
-- replica does not switch them off.
-- No SET search_path here: the C++ resolves the names of the statement as the user wrote them,
-- then pins search_path itself for its own SQL.
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant._on_ddl_command_end() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_on_ddl_command_end';
CREATE EVENT TRIGGER pg_tenant_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA', 'ALTER SCHEMA', 'ALTER TABLE',
                 'CREATE POLICY', 'ALTER POLICY', 'CREATE MATERIALIZED VIEW', 'CREATE RULE',
                 'CREATE TRIGGER')
    EXECUTE FUNCTION tenant._on_ddl_command_end();
ALTER EVENT TRIGGER pg_tenant_ddl_command_end ENABLE ALWAYS;

CREATE FUNCTION tenant._on_sql_drop() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_on_sql_drop';
CREATE EVENT TRIGGER pg_tenant_sql_drop ON sql_drop
    EXECUTE FUNCTION tenant._on_sql_drop();
ALTER EVENT TRIGGER pg_tenant_sql_drop ENABLE ALWAYS;

REVOKE ALL ON FUNCTION tenant._on_ddl_command_end(), tenant._on_sql_drop() FROM PUBLIC;
