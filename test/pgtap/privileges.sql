-- Least privilege: what PUBLIC and an application role can and cannot do with the registry.
BEGIN;
SELECT plan(24);

CREATE ROLE pt_app LOGIN;
CREATE ROLE pt_other LOGIN;
SELECT tenant.create('Acme', 'pt-acme') AS acme \gset

-- Only what policies, CHECK constraints, default arguments and cloned triggers need is granted to
-- PUBLIC: tenant.tenant_column() (protect's default) reads a setting every role can SHOW;
-- tenant._tenant_key_check() is the tenant_key trigger a new partition of a protected table gets.
SELECT is(
    ARRAY(SELECT p.oid::regprocedure::text
            FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
           WHERE p.pronamespace = 'tenant'::regnamespace AND a.grantee = 0
           ORDER BY 1),
    ARRAY['tenant._tenant_key_check()', 'tenant.current_id()', 'tenant.is_valid_slug(text)', 'tenant.tenant_column()'],
    'PUBLIC may execute only tenant._tenant_key_check(), tenant.current_id(), tenant.is_valid_slug() and tenant.tenant_column()');
SELECT is(
    (SELECT count(*)::int FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
      WHERE c.relnamespace = 'tenant'::regnamespace AND a.grantee = 0),
    0, 'PUBLIC has no privilege on any table of schema tenant');
SELECT is(
    (SELECT count(*)::int FROM pg_proc
      WHERE pronamespace = 'tenant'::regnamespace AND prosecdef
        AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
    0, 'every SECURITY DEFINER function pins search_path');
SELECT ok(
    (SELECT extconfig @> ARRAY['tenant.tenants'::regclass::oid, 'tenant.plans'::regclass::oid]
       FROM pg_extension WHERE extname = 'pg_tenant'),
    'registry tables are dumped by pg_dump');

-- An application role with no grants: reads nothing, writes nothing, enters nothing.
SET ROLE pt_app;
SELECT ok(tenant.current_id() IS NULL, 'PUBLIC can read the (empty) context');
SELECT throws_ok($$SELECT * FROM tenant.tenants$$, '42501', NULL, 'cannot read tenant.tenants');
SELECT throws_ok($$SELECT * FROM tenant.plans$$, '42501', NULL, 'cannot read tenant.plans');
SELECT throws_ok($$SELECT tenant.set('pt-acme')$$, '42501', NULL, 'cannot call tenant.set() without a grant');
SELECT throws_ok($$SELECT tenant.create('X', 'pt-x')$$, '42501', NULL, 'cannot call tenant.create()');
SELECT throws_ok($$SELECT tenant.cache_info()$$, '42501', NULL, 'cannot call tenant.cache_info()');
RESET ROLE;

-- The README's grant for an application role.
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid),
                          tenant.set_session(text), tenant.reset() TO pt_app;

SET ROLE pt_app;
SELECT is(tenant.set('pt-acme'), :'acme'::uuid, 'the granted role enters a tenant');
SELECT is(tenant.current_id(), :'acme'::uuid, 'and reads it back');
SELECT lives_ok($$SELECT tenant.reset()$$, 'and leaves it');
SELECT throws_ok($$INSERT INTO tenant.tenants (name, slug) VALUES ('X', 'pt-x')$$, '42501', NULL,
                 'cannot insert a tenant');
SELECT throws_ok(format('UPDATE tenant.tenants SET status = %L WHERE id = %L', 'suspended', :'acme'),
                 '42501', NULL, 'cannot update a tenant');
SELECT throws_ok(format('DELETE FROM tenant.tenants WHERE id = %L', :'acme'), '42501', NULL,
                 'cannot delete a tenant');
SELECT throws_ok($$INSERT INTO tenant.plans (name) VALUES ('gold')$$, '42501', NULL, 'cannot insert a plan');
SELECT throws_ok($$UPDATE tenant.plans SET upgrade_url = 'x'$$, '42501', NULL, 'cannot update a plan');
SELECT throws_ok(format('SELECT tenant.suspend(%L)', :'acme'), '42501', NULL, 'cannot suspend');
SELECT throws_ok($$TRUNCATE tenant.tenants$$, '42501', NULL, 'cannot truncate the registry');
RESET ROLE;

-- The row is untouched by all of the above.
SELECT is((SELECT status FROM tenant.tenants WHERE id = :'acme'), 'active', 'tenant still active');
SELECT is((SELECT count(*)::int FROM tenant.tenants WHERE slug = 'pt-x'), 0, 'no tenant was added');

-- An administrator role can be granted tenant.create without any table privilege (SECURITY DEFINER).
GRANT EXECUTE ON FUNCTION tenant.create(text, text, text) TO pt_other;
SET ROLE pt_other;
SELECT isnt(tenant.create('Other', 'pt-other'), NULL, 'a granted admin role creates tenants');
SELECT throws_ok($$SELECT * FROM tenant.tenants$$, '42501', NULL, 'but still cannot read the table');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
