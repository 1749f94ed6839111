-- The DDL guard as an application role with CREATE on a guarded schema.
BEGIN;
SELECT plan(13);

CREATE ROLE guard_dev NOLOGIN;
CREATE SCHEMA guard_app AUTHORIZATION guard_dev;
SET LOCAL pg_tenant.guarded_schemas = 'public, guard_app';
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name) TO guard_dev;

SET LOCAL ROLE guard_dev;
SELECT throws_ok($$CREATE TABLE guard_app.t_plain (id int)$$, 'TN004', NULL,
                 'a developer cannot create a table without tenant_id');
SELECT throws_ok($$CREATE TABLE guard_app.t_copy AS SELECT 1 AS id$$, 'TN004', NULL, '... nor with CREATE TABLE AS');
SELECT lives_ok($$CREATE TABLE guard_app.t_ok (tenant_id uuid NOT NULL, id int)$$, 'with tenant_id it is allowed');
SELECT lives_ok($$CREATE TEMP TABLE t_scratch (id int)$$, 'temporary tables are allowed');
SELECT lives_ok($$SELECT tenant.protect('guard_app.t_ok')$$, 'the owner protects it');
SELECT throws_ok($$ALTER TABLE guard_app.t_ok DISABLE ROW LEVEL SECURITY$$, 'TN005', NULL,
                 'the owner cannot disable row level security');
SELECT throws_ok($$DROP POLICY tenant_isolation ON guard_app.t_ok$$, 'TN005', NULL,
                 'the owner cannot drop the generated policy');
SELECT throws_ok($$SET pg_tenant.enforce = off$$, '42501', NULL, 'the developer cannot switch the guard off');
SET LOCAL row_security = off;
SELECT throws_ok($$CREATE TABLE guard_app.t_restore_mode (id int)$$, 'TN004', NULL,
                 'row_security = off is a restore only for superusers');
SET LOCAL row_security = on;
SELECT throws_ok($$SET session_replication_role = replica$$, '42501', NULL,
                 'nor use replica mode (superuser only, and the triggers fire ALWAYS anyway)');
SELECT throws_ok($$SELECT tenant.unprotect('guard_app.t_ok')$$, '42501', NULL,
                 'unprotect is not granted to the developer');
RESET ROLE;

-- The table is still whole.
SELECT is(tenant.policy_sql('guard_app.t_ok'), '', 'the protected table is unchanged');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relname IN ('t_plain', 't_copy')), 0, 'no refused table exists');

SELECT * FROM finish();
ROLLBACK;
