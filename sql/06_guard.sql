-- The DDL guard: new tables in guarded schemas need the tenant column; protected tables stay
-- protected; modes; exemptions; what it must not touch.
SHOW pg_tenant.enforce;
SHOW pg_tenant.guarded_schemas;
SHOW pg_tenant.auto_protect;
-- DDL reaches pg_tenant through one door: one ddl_command_end and one sql_drop trigger, ENABLE ALWAYS.
SELECT evtname, evtevent, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'pg_tenant%' ORDER BY 1;

-- Every way to create a table without the tenant column is refused in a guarded schema.
SELECT error_of($$CREATE TABLE g_plain (id int)$$);
SELECT error_of($$CREATE UNLOGGED TABLE g_unlogged (id int)$$);
SELECT error_of($$CREATE TABLE g_as AS SELECT 1 AS id$$);
SELECT error_of($$SELECT 1 AS id INTO g_into$$);
SELECT error_of($$CREATE TABLE g_parted (id int) PARTITION BY RANGE (id)$$);
SELECT error_of($$DO 'BEGIN CREATE TABLE g_in_do (id int); END'$$);
CREATE FUNCTION public.make_table() RETURNS void LANGUAGE plpgsql AS 'BEGIN CREATE TABLE g_in_function (id int); END';
CREATE PROCEDURE public.make_table_proc() LANGUAGE plpgsql AS 'BEGIN CREATE TABLE g_in_procedure (id int); END';
SELECT error_of($$SELECT public.make_table()$$);
SELECT error_of($$CALL public.make_table_proc()$$);
SET pg_tenant.guarded_schemas = 'public, g_schema';
SELECT error_of($$CREATE SCHEMA g_schema CREATE TABLE inner_table (id int)$$);
RESET pg_tenant.guarded_schemas;
-- The error names the table and both ways out.
\set VERBOSITY default
CREATE TABLE g_plain (id int);
\set VERBOSITY terse
-- Nothing was created by the refusals.
SELECT count(*) AS created FROM pg_class WHERE relname LIKE 'g\_%' OR relname = 'inner_table';
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'g_schema';

-- Allowed: the tenant column (plain, LIKE, INHERITS, PARTITION OF), temporary tables, unguarded
-- schemas, exempted tables (exempted before they exist).
CREATE TABLE g_ok (tenant_id uuid NOT NULL, id int);
CREATE TABLE g_like (LIKE g_ok);
CREATE TABLE g_parent (tenant_id uuid NOT NULL, id int);
CREATE TABLE g_child (extra int) INHERITS (g_parent);
CREATE TABLE g_ranged (tenant_id uuid NOT NULL, id int) PARTITION BY RANGE (id);
CREATE TABLE g_ranged_1 PARTITION OF g_ranged FOR VALUES FROM (0) TO (10);
CREATE TEMP TABLE g_temp (id int);
CREATE SCHEMA g_free;
CREATE TABLE g_free.anything (id int);
SELECT tenant.exempt('public.g_countries', 'shared reference data: ISO country codes');
CREATE TABLE g_countries (code text PRIMARY KEY);
SELECT schema_name, table_name, reason, exempted_by = session_user AS by_me, table_exists FROM tenant.exempted_tables;
-- A LIKE copy of an exempted table is a new table: refused.
SELECT error_of($$CREATE TABLE g_countries_copy (LIKE g_countries)$$);
-- Exempted by unquoted and quoted names; unexempt; bad input.
SELECT tenant.exempt('public."Mixed Case"', 'shared');
CREATE TABLE "Mixed Case" (id int);
SELECT tenant.unexempt('public."Mixed Case"') AS removed, tenant.unexempt('public."Mixed Case"') AS removed_again;
SELECT error_of($$SELECT tenant.exempt('public.x', '  ')$$);
SELECT error_of($$SELECT tenant.exempt('public.x', NULL)$$);
SELECT error_of($$SELECT tenant.exempt(NULL, 'why')$$);
SELECT error_of($$SELECT tenant.exempt('a.b.c', 'why')$$);
SELECT error_of($$SELECT tenant.exempt('unqualified', 'why')$$);

-- Protected tables stay protected.
SELECT count(*) FROM tenant.protect('g_ok');
SELECT error_of($$ALTER TABLE g_ok DISABLE ROW LEVEL SECURITY$$);
SELECT error_of($$ALTER TABLE g_ok NO FORCE ROW LEVEL SECURITY$$);
SELECT error_of($$ALTER TABLE g_ok RENAME COLUMN tenant_id TO tid$$);
SELECT error_of($$ALTER TABLE g_ok ALTER COLUMN tenant_id TYPE text$$);
SELECT error_of($$ALTER TABLE g_ok ALTER COLUMN tenant_id DROP NOT NULL$$);
SELECT error_of($$ALTER TABLE g_ok DROP COLUMN tenant_id CASCADE$$);
SELECT error_of($$DROP POLICY tenant_isolation ON g_ok$$);
SELECT error_of($$DROP POLICY tenant_isolation_guard ON g_ok$$);
SELECT error_of($$ALTER POLICY tenant_isolation ON g_ok USING (true)$$);
SELECT error_of($$ALTER POLICY tenant_isolation_guard ON g_ok TO postgres$$);
SELECT error_of($$DROP TRIGGER tenant_key ON g_ok$$);
SELECT error_of($$ALTER TABLE g_ok DISABLE TRIGGER tenant_key$$);
SELECT error_of($$ALTER TABLE g_ok DISABLE TRIGGER USER$$);
SELECT error_of($$ALTER TABLE g_ok ENABLE REPLICA TRIGGER tenant_key$$);
-- Several subcommands in one ALTER TABLE: one weakening is enough.
SELECT error_of($$ALTER TABLE g_ok ADD COLUMN note text, DISABLE ROW LEVEL SECURITY$$);
-- Nothing changed.
SELECT tenant.policy_sql('g_ok') = '' AS still_protected,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'g_ok'::regclass AND attname = 'note') AS note_columns;
-- Harmless changes pass.
ALTER TABLE g_ok ADD COLUMN note text;
ALTER TABLE g_ok ALTER COLUMN note SET DEFAULT 'x';
CREATE INDEX ON g_ok (id);
COMMENT ON TABLE g_ok IS 'guarded';
-- A materialized view would copy every tenant's rows out of RLS.
SELECT error_of($$CREATE MATERIALIZED VIEW g_mat AS SELECT * FROM g_ok$$);
CREATE MATERIALIZED VIEW g_free.counts AS SELECT count(*) FROM g_countries;
-- session_replication_role = replica does not switch the triggers off (ENABLE ALWAYS).
SET session_replication_role = replica;
SELECT error_of($$ALTER TABLE g_ok DISABLE ROW LEVEL SECURITY$$);
SELECT error_of($$CREATE TABLE g_replica (id int)$$);
RESET session_replication_role;
-- Through tenant.unprotect, the same changes are allowed.
SELECT count(*) FROM tenant.unprotect('g_ok');
ALTER TABLE g_ok DISABLE ROW LEVEL SECURITY;
ALTER TABLE g_ok ALTER COLUMN tenant_id DROP NOT NULL;
-- A protected partition and child are guarded too.
SELECT count(*) FROM tenant.protect('g_ranged');
SELECT error_of($$ALTER TABLE g_ranged_1 NO FORCE ROW LEVEL SECURITY$$);

-- Modes: warn lets the DDL through with a WARNING; off is silent.
SET pg_tenant.enforce = warn;
CREATE TABLE g_warned (id int);
SET pg_tenant.enforce = off;
CREATE TABLE g_unchecked (id int);
RESET pg_tenant.enforce;
SELECT error_of($$SET pg_tenant.enforce = 'sometimes'$$);

-- auto_protect: a new table with the tenant column is protected in the same transaction.
SET pg_tenant.auto_protect = on;
BEGIN;
CREATE TABLE g_auto (tenant_id uuid, id int);
SELECT relid, tenant.policy_sql(relid) = '' AS protected FROM tenant.scoped_tables WHERE relid = 'g_auto'::regclass;
ROLLBACK;
SELECT to_regclass('g_auto') AS rolled_back;
RESET pg_tenant.auto_protect;

-- An application role cannot turn the guard off or change where it applies.
CREATE ROLE g_app;
SET ROLE g_app;
SELECT error_of($$SET pg_tenant.enforce = off$$);
SELECT error_of($$SET pg_tenant.guarded_schemas = ''$$);
SELECT error_of($$SET pg_tenant.auto_protect = on$$);
SELECT error_of($$SELECT tenant.exempt('public.sneaky', 'because')$$);
RESET ROLE;
DROP ROLE g_app;

-- The extension's own scripts and other extensions that create tables are not touched.
SET client_min_messages = warning;  -- ("already installed" names the version)
ALTER EXTENSION pg_tenant UPDATE;
RESET client_min_messages;
CREATE EXTENSION pt_fixture_tables;  -- test/fixtures: creates two tables without tenant_id in public
SELECT count(*) AS fixture_tables FROM pg_class WHERE relname LIKE 'pt\_fixture\_%';
DROP EXTENSION pt_fixture_tables;

DROP TABLE g_ok, g_like, g_parent, g_child, g_ranged, g_countries, "Mixed Case", g_warned, g_unchecked CASCADE;
DROP SCHEMA g_free CASCADE;
DROP FUNCTION public.make_table();
DROP PROCEDURE public.make_table_proc();
SELECT tenant.unexempt('public.g_countries');
