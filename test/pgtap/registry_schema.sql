-- The registry's shape, as the README documents it.
BEGIN;
SELECT plan(22);

SELECT has_schema('tenant');
SELECT has_table('tenant', 'tenants', 'tenant.tenants exists');
SELECT has_table('tenant', 'plans', 'tenant.plans exists');
SELECT col_is_pk('tenant', 'tenants', 'id', 'tenants.id is the primary key');
SELECT col_type_is('tenant', 'tenants', 'id', 'uuid', 'tenants.id is uuid');
SELECT col_default_is('tenant', 'tenants', 'id', 'gen_random_uuid()', 'tenants.id defaults to gen_random_uuid()');
SELECT col_is_unique('tenant', 'tenants', 'slug', 'slugs are unique');
SELECT col_not_null('tenant', 'tenants', 'name', 'tenants.name is NOT NULL');
SELECT fk_ok('tenant', 'tenants', 'plan', 'tenant', 'plans', 'name');
SELECT has_table('tenant', 'tenant_limits', 'per-tenant limit overrides are rows of tenant.tenant_limits');
SELECT col_type_is('tenant', 'tenants', 'feature_overrides', 'jsonb', 'feature overrides are jsonb');
SELECT col_type_is('tenant', 'tenants', 'created_at', 'timestamp with time zone', 'created_at is timestamptz');
SELECT col_type_is('tenant', 'tenants', 'updated_at', 'timestamp with time zone', 'updated_at is timestamptz');
SELECT has_trigger('tenant', 'tenants', 'tenants_touch_updated_at', 'updated_at is kept current');
SELECT has_trigger('tenant', 'tenants', 'tenants_invalidate_cache', 'tenant changes invalidate caches');
SELECT has_trigger('tenant', 'plans', 'plans_invalidate_cache', 'plan changes invalidate caches');
SELECT results_eq($$SELECT name FROM tenant.plans WHERE builtin$$, ARRAY['free'], 'the free plan is seeded');
SELECT function_returns('tenant', 'current_id', ARRAY[]::text[], 'uuid');
SELECT volatility_is('tenant', 'current_id', ARRAY[]::text[], 'stable');
SELECT function_lang_is('tenant', 'current_id', ARRAY[]::text[], 'c');
SELECT function_returns('tenant', 'create', ARRAY['text', 'text', 'text'], 'uuid');
SELECT is_definer('tenant', 'create', ARRAY['text', 'text', 'text'], 'tenant.create is SECURITY DEFINER');

SELECT * FROM finish();
ROLLBACK;
