-- Tenant context: tenant.set, set_session, reset, current_id, the GUC, and bad input.
SELECT tenant.create('Gamma', 'gamma') AS gamma \gset
SELECT tenant.create('Delta', 'delta') AS delta \gset

-- No context: NULL (a policy comparing to it matches no row), never an error.
SELECT tenant.current_id() IS NULL AS no_context;
SELECT current_setting('pg_tenant.tenant_id') AS setting;

-- Transaction-local by default.
BEGIN;
SELECT tenant.set(:'gamma') = :'gamma' AS set_returns_id;
SELECT tenant.current_id() = :'gamma' AS in_gamma;
SELECT tenant.set('delta') = :'delta' AS set_by_slug;
SELECT tenant.current_id() = :'delta' AS in_delta;
COMMIT;
SELECT tenant.current_id() IS NULL AS gone_after_commit;
BEGIN;
SELECT tenant.set('gamma') IS NOT NULL AS entered;
ROLLBACK;
SELECT tenant.current_id() IS NULL AS gone_after_rollback;

-- An id given as text (an unknown literal resolves to set(text)) is taken as an id.
BEGIN;
SELECT tenant.set(:'gamma'::text) = :'gamma' AS id_as_text;
SELECT tenant.set(upper(:'gamma')) = :'gamma' AS id_upper_case;
COMMIT;

-- Session-wide only when asked for, until reset.
SELECT tenant.set_session('gamma') = :'gamma' AS session_set;
SELECT tenant.current_id() = :'gamma' AS still_in_gamma;
BEGIN;
SELECT tenant.set('delta') IS NOT NULL AS entered;
SELECT tenant.current_id() = :'delta' AS local_wins;
COMMIT;
SELECT tenant.current_id() = :'gamma' AS back_to_session_value;
SELECT tenant.reset();
SELECT tenant.current_id() IS NULL AS after_reset;

-- SET LOCAL (the path Citus propagates) is validated when first read.
BEGIN;
SET LOCAL pg_tenant.tenant_id = :'delta';
SELECT tenant.current_id() = :'delta' AS set_local_works;
COMMIT;
SELECT tenant.current_id() IS NULL AS set_local_gone;
-- The GUC keeps the canonical form.
BEGIN;
SELECT set_config('pg_tenant.tenant_id', replace(upper(:'delta'), '-', ''), true) = :'delta' AS canonical;
COMMIT;

-- Bad input, each with its SQLSTATE; the context is unchanged after each.
SELECT error_of($$SELECT tenant.set(NULL::uuid)$$);
SELECT error_of($$SELECT tenant.set(NULL::text)$$);
SELECT error_of($$SELECT tenant.set('not-a-uuid'::uuid)$$);
SELECT error_of($$SELECT tenant.set('00000000-0000-0000-0000-000000000000'::uuid)$$);
SELECT error_of($$SELECT tenant.set('no-such-tenant')$$);
SELECT error_of($$SELECT tenant.set('Not A Slug!')$$);
SELECT error_of($$SELECT tenant.set_session('no-such-tenant')$$);
SELECT error_of($$SET pg_tenant.tenant_id = 'garbage'$$);
SELECT error_of($$SET pg_tenant.tenant_id = '{6f9619ff-8b86-d011-b42d-00cf4fc964ff}'$$);
SELECT error_of($$SET pg_tenant.no_such_setting = 'x'$$);
SELECT tenant.current_id() IS NULL AS still_no_context;

-- A raw SET cannot skip validation: unknown and suspended tenants are refused when read.
SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000';
SELECT error_of($$SELECT tenant.current_id()$$);
RESET pg_tenant.tenant_id;
SELECT tenant.suspend(:'delta');
SELECT error_of($$SELECT tenant.set('delta')$$);
SELECT error_of(format('SELECT tenant.set(%L::uuid)', :'delta'));
SELECT error_of(format('SELECT tenant.set_session(%L::uuid)', :'delta'));
SET pg_tenant.tenant_id = :'delta';
SELECT error_of($$SELECT tenant.current_id()$$);
RESET pg_tenant.tenant_id;
-- A session already inside a tenant is refused once it is suspended.
SELECT tenant.resume(:'delta');
SELECT tenant.set_session('delta') IS NOT NULL AS entered;
SELECT tenant.current_id() = :'delta' AS inside;
SELECT tenant.suspend(:'delta');
SELECT error_of($$SELECT tenant.current_id()$$);
SELECT tenant.reset();
SELECT tenant.resume(:'delta');
-- A deleted tenant is unknown at once.
SELECT tenant.set_session('delta') IS NOT NULL AS entered;
DELETE FROM tenant.tenants WHERE slug = 'delta';
SELECT replace(error_of($$SELECT tenant.current_id()$$), :'delta', '<delta id>') AS error_of;
SELECT tenant.reset();

-- current_id() is STABLE and PARALLEL SAFE; set() is VOLATILE and PARALLEL UNSAFE.
SELECT p.oid::regprocedure AS function, provolatile, proparallel, prosecdef
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'tenant' AND p.proname IN ('set', 'set_session', 'reset', 'current_id')
 ORDER BY p.oid::regprocedure::text;

-- Cache capacity is bounded.
SET pg_tenant.tenant_cache_size = 2;
SELECT tenant.create('T' || i, 'cache-' || i) IS NOT NULL FROM generate_series(1, 5) AS i;
SELECT count(tenant.set('cache-' || i)) FROM generate_series(1, 5) AS i;
SELECT entries <= 2 AS bounded, capacity FROM tenant.cache_info();
RESET pg_tenant.tenant_cache_size;
SELECT error_of($$SET pg_tenant.tenant_cache_size = 0$$);
