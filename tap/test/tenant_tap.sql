-- pg_tenant_tap's own tests: each assertion fails on a broken schema and passes on a sound one
-- (pgTAP's check_test: pass/fail, description, diagnostics). Run by test/scripts/tap.sh with
-- pg_prove in a database with pgtap, pg_tenant and pg_tenant_tap; everything is rolled back.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true

BEGIN;
SELECT plan(83);

-- Roles: an application role, one that bypasses RLS, one that may not enter tenants, a table owner.
CREATE ROLE pt_tap_app LOGIN;
CREATE ROLE pt_tap_bypass LOGIN BYPASSRLS;
CREATE ROLE pt_tap_norights LOGIN;
CREATE ROLE pt_tap_owner NOLOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text) TO pt_tap_app, pt_tap_bypass;
SELECT session_user AS superuser \gset

-- A sound schema: a protected table with a row quota, a protected table without one, and an
-- exempted shared table; all owned by a NOLOGIN role.
CREATE SCHEMA tap_sound AUTHORIZATION pt_tap_owner;
CREATE TABLE tap_sound.items (
    tenant_id uuid,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    label     text NOT NULL DEFAULT 'planted',
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE tap_sound.uncounted (tenant_id uuid, id bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (tenant_id, id));
CREATE TABLE tap_sound.countries (code text PRIMARY KEY);
ALTER TABLE tap_sound.items OWNER TO pt_tap_owner;
ALTER TABLE tap_sound.uncounted OWNER TO pt_tap_owner;
ALTER TABLE tap_sound.countries OWNER TO pt_tap_owner;
DO $$
BEGIN
    PERFORM tenant.protect('tap_sound.items');
    PERFORM tenant.protect('tap_sound.uncounted');
    PERFORM tenant.limit_rows('tap_sound.items', 'tap.items');
    PERFORM tenant.exempt('tap_sound.countries', 'shared reference data');
END $$;
GRANT USAGE ON SCHEMA tap_sound TO pt_tap_app, pt_tap_norights;
GRANT SELECT, INSERT, UPDATE, DELETE ON tap_sound.items TO pt_tap_app, pt_tap_norights;

-- ===== audit_is_clean (sound first: nothing broken exists yet)
SELECT * FROM check_test(tenant_tap.audit_is_clean(), true, 'audit_is_clean on a sound database',
                         'tenant.audit() finds nothing', '');

-- ===== create_test_tenants
SELECT * FROM check_test(tenant_tap.create_test_tenants(3), true, 'create_test_tenants(3)',
                         'create 3 test tenants test-tenant-1 .. test-tenant-3 on plan free', '');
SELECT is((SELECT count(*)::int FROM tenant.tenants WHERE slug LIKE 'test-tenant-_'), 3, 'the 3 test tenants exist');
SELECT * FROM check_test(tenant_tap.create_test_tenants(3), false, 'create_test_tenants(3) again (slugs taken)',
                         'create 3 test tenants test-tenant-1 .. test-tenant-3 on plan free',
                         '^tenant.create failed: 23505 ', true);
SELECT * FROM check_test(tenant_tap.create_test_tenants(2, 'no-such-plan', 'x'), false, 'create_test_tenants on a missing plan',
                         'create 2 test tenants x-1 .. x-2 on plan no-such-plan', '^tenant.create failed: TN003 ', true);
SELECT is((SELECT count(*)::int FROM tenant.tenants WHERE slug LIKE 'x-_'), 0, 'a failed create_test_tenants keeps none');

-- ===== as_tenant
SELECT * FROM check_test(tenant_tap.as_tenant('test-tenant-2'), true, 'as_tenant of an active tenant',
                         'enter tenant test-tenant-2', '');
SELECT is(tenant.current_id(), (SELECT id FROM tenant.tenants WHERE slug = 'test-tenant-2'), 'as_tenant left the tenant entered');
SELECT * FROM check_test(tenant_tap.as_tenant('no-such-tenant'), false, 'as_tenant of an unknown tenant',
                         'enter tenant no-such-tenant', '^tenant.set\(''no-such-tenant''\) failed: TN001 ', true);
DO $$ BEGIN PERFORM tenant.suspend((SELECT id FROM tenant.tenants WHERE slug = 'test-tenant-3')); END $$;
SELECT * FROM check_test(tenant_tap.as_tenant('test-tenant-3'), false, 'as_tenant of a suspended tenant',
                         'enter tenant test-tenant-3', '^tenant.set\(''test-tenant-3''\) failed: TN002 ', true);

-- ===== as_role (its output is kept in a variable: check_test must run as the superuser)
SELECT tenant_tap.as_role('pt_tap_app', 'test-tenant-1') AS have \gset
SELECT current_user AS role_after, tenant.current_id() AS tenant_after \gset
RESET ROLE;
SELECT * FROM check_test(:'have', true, 'as_role of an application role', 'act as role pt_tap_app in tenant test-tenant-1', '');
SELECT is(:'role_after'::text, 'pt_tap_app', 'as_role switched the role');
SELECT is(:'tenant_after'::uuid, (SELECT id FROM tenant.tenants WHERE slug = 'test-tenant-1'), 'as_role entered the tenant as that role');
SELECT * FROM check_test(tenant_tap.as_role('pt_tap_bypass', 'test-tenant-1'), false, 'as_role of a BYPASSRLS role',
                         'act as role pt_tap_bypass in tenant test-tenant-1',
                         'role pt_tap_bypass has BYPASSRLS: row level security never applies to it');
SELECT * FROM check_test(tenant_tap.as_role(:'superuser', 'test-tenant-1'), false, 'as_role of a superuser',
                         format('act as role %I in tenant test-tenant-1', :'superuser'),
                         format('role %I is a superuser: row level security never applies to it', :'superuser'));
SELECT * FROM check_test(tenant_tap.as_role('pt_tap_norights', 'test-tenant-1'), false, 'as_role of a role without tenant.set',
                         'act as role pt_tap_norights in tenant test-tenant-1', ' failed: 42501 ', true);
SELECT is(current_user::text, :'superuser', 'a failed as_role leaves the role unchanged');

-- ===== is_isolated: sound
SELECT * FROM check_test(tenant_tap.is_isolated('tap_sound.items', 'pt_tap_app'), true, 'is_isolated on a protected table',
                         'tap_sound.items is isolated between tenants for role pt_tap_app', '');
SELECT is((SELECT count(*)::int FROM tap_sound.items), 0, 'is_isolated left no rows');
SELECT is((SELECT count(*)::int FROM tenant.tenants WHERE slug LIKE 'tap-%'), 0, 'is_isolated left no tenants');
SELECT is(current_user::text, :'superuser', 'is_isolated left the role unchanged');

-- ===== quota_holds: sound
SELECT * FROM check_test(tenant_tap.quota_holds('tap_sound.items', 'tap.items'), true, 'quota_holds on a counted table',
                         'tap_sound.items is counted exactly against resource tap.items', '');
SELECT is((SELECT count(*)::int FROM tap_sound.items), 0, 'quota_holds left no rows');

-- ===== all_tables_protected: sound
SELECT * FROM check_test(tenant_tap.all_tables_protected('tap_sound'), true, 'all_tables_protected on a sound schema',
                         'every table of schema tap_sound is protected or exempted', '');

-- ===== Now break things.
-- An unprotected table with a tenant column, a protected table whose policies were dropped for a
-- permissive USING (true) (the guard is switched off for that), a table without the column and
-- without an exemption, and a BYPASSRLS login role granted a scoped table.
CREATE SCHEMA tap_broken AUTHORIZATION pt_tap_owner;
CREATE TABLE tap_broken.open (tenant_id uuid NOT NULL DEFAULT tenant.current_id(), id bigint GENERATED ALWAYS AS IDENTITY);
CREATE TABLE tap_broken.weakened (tenant_id uuid, id bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (tenant_id, id));
CREATE TABLE tap_broken.forgotten (name text);
ALTER TABLE tap_broken.open OWNER TO pt_tap_owner;
ALTER TABLE tap_broken.weakened OWNER TO pt_tap_owner;
ALTER TABLE tap_broken.forgotten OWNER TO pt_tap_owner;
DO $$ BEGIN PERFORM tenant.protect('tap_broken.weakened'); END $$;
SET LOCAL pg_tenant.enforce = off;
DROP POLICY tenant_isolation_guard ON tap_broken.weakened;
DROP POLICY tenant_isolation ON tap_broken.weakened;
CREATE POLICY everything ON tap_broken.weakened USING (true) WITH CHECK (true);
RESET pg_tenant.enforce;
GRANT USAGE ON SCHEMA tap_broken TO pt_tap_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tap_broken.open, tap_broken.weakened TO pt_tap_app;
GRANT SELECT ON tap_sound.items TO pt_tap_bypass;
-- Rows of another tenant already in the unprotected table.
INSERT INTO tap_broken.open (tenant_id) SELECT id FROM tenant.tenants WHERE slug = 'test-tenant-1';

-- ===== is_isolated: broken
SELECT * FROM check_test(tenant_tap.is_isolated('tap_broken.open', 'pt_tap_app'), false, 'is_isolated on an unprotected table',
                         'tap_broken.open is isolated between tenants for role pt_tap_app',
                         'SELECT in tenant A sees 4 rows, 3 of them not A''s (expected its 1 row)
with no tenant, SELECT sees 4 rows (expected none)
UPDATE in tenant A changed 4 rows (expected its 1 row)
UPDATE in tenant A moved 4 rows into tenant B
INSERT in tenant A wrote a row for tenant B
DELETE in tenant A deleted 5 rows of tenant B
DELETE in tenant A deleted 0 rows (expected its 1 row)
tenant B has 0 of its 2 rows after tenant A''s UPDATE and DELETE');
SELECT * FROM check_test(tenant_tap.is_isolated('tap_broken.weakened', 'pt_tap_app'), false,
                         'is_isolated on a table whose policies were replaced by USING (true)',
                         'tap_broken.weakened is isolated between tenants for role pt_tap_app',
                         '^SELECT in tenant A sees 3 rows, 2 of them not A''s \(expected its 1 row\)
with no tenant, SELECT sees 3 rows \(expected none\)
UPDATE in tenant A changed 3 rows \(expected its 1 row\)
UPDATE in tenant A moved 3 rows into tenant B
INSERT in tenant A wrote a row for tenant B
', true);
SELECT * FROM check_test(tenant_tap.is_isolated('tap_sound.items', 'pt_tap_bypass'), false, 'is_isolated for a BYPASSRLS role',
                         'tap_sound.items is isolated between tenants for role pt_tap_bypass',
                         'role pt_tap_bypass has BYPASSRLS: row level security never applies to it');
SELECT * FROM check_test(tenant_tap.is_isolated('tap_sound.items'), false, 'is_isolated as the superuser running the test',
                         format('tap_sound.items is isolated between tenants for role %I', :'superuser'),
                         format('role %I is a superuser: row level security never applies to it', :'superuser'));
SELECT * FROM check_test(tenant_tap.is_isolated('tap_broken.forgotten', 'pt_tap_app'), false, 'is_isolated on a table without the tenant column',
                         'tap_broken.forgotten is isolated between tenants for role pt_tap_app',
                         'tap_broken.forgotten has no tenant column tenant_id');
SELECT is((SELECT count(*)::int FROM tap_broken.open), 1, 'a failing is_isolated left the table as it was');

-- ===== quota_holds: broken
SELECT * FROM check_test(tenant_tap.quota_holds('tap_sound.uncounted', 'tap.uncounted'), false, 'quota_holds on a table without limit_rows',
                         'tap_sound.uncounted is counted exactly against resource tap.uncounted',
                         'tap_sound.uncounted is not counted for tap.uncounted (SELECT tenant.limit_rows(''tap_sound.uncounted'', ''tap.uncounted''))
a 3rd row under a limit of 2 was accepted
tenant.usage() counts no rows of tap.uncounted (expected 2)');
SELECT * FROM check_test(tenant_tap.quota_holds('tap_sound.items', 'tap.other'), false, 'quota_holds for a resource the table is not counted for',
                         'tap_sound.items is counted exactly against resource tap.other',
                         'tap_sound.items is not counted for tap.other (SELECT tenant.limit_rows(''tap_sound.items'', ''tap.other''))
a 3rd row under a limit of 2 was accepted
tenant.usage() counts no rows of tap.other (expected 2)');

-- ===== all_tables_protected: broken
SELECT * FROM check_test(tenant_tap.all_tables_protected('tap_broken'), false, 'all_tables_protected on a broken schema',
                         'every table of schema tap_broken is protected or exempted',
                         'tap_broken.forgotten: no tenant column tenant_id and no exemption \(tenant.exempt\)
tap_broken.open: unprotected_table .*
tap_broken.weakened: policy_missing .*
tap_broken.weakened: policy_missing .*', true);
SELECT * FROM check_test(tenant_tap.all_tables_protected('no_such_schema'), false, 'all_tables_protected on a missing schema',
                         'every table of schema no_such_schema is protected or exempted', 'schema no_such_schema does not exist');

-- ===== audit_is_clean: broken
SELECT * FROM check_test(tenant_tap.audit_is_clean(), false, 'audit_is_clean with the broken schema and the BYPASSRLS role',
                         'tenant.audit() finds nothing',
                         'critical unprotected_table tap_broken.open: .*
critical policy_missing tap_broken.weakened: .*
critical policy_missing tap_broken.weakened: .*
high bypassrls_role pt_tap_bypass: .*', true);

SELECT * FROM finish();
ROLLBACK;
