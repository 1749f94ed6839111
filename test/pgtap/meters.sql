-- Meters (tenant.meter / try_meter) and feature flags, as an application role.
-- Meter counts live in shared memory and are not transactional: every run uses new tenants.
BEGIN;
SELECT plan(37);

CREATE ROLE meter_app NOLOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(), tenant.meter(text, bigint),
    tenant.try_meter(text, bigint), tenant.has_feature(text), tenant.require_feature(text) TO meter_app;
INSERT INTO tenant.plans (name, features, upgrade_url)
     VALUES ('metered', '{"sso": true, "beta": false, "export": "yes"}', 'https://example.com/upgrade');
SELECT tenant.create('Meter A', 'meter-a', 'metered') AS ma \gset
SELECT tenant.create('Meter B', 'meter-b', 'metered') AS mb \gset
SELECT tenant.set_limit('metered', 'api_calls', 3);
SELECT tenant.set_limit('metered', 'exports', 0);
SELECT tenant.set_limit('metered', 'per_second', 2, 'second');
SELECT tenant.set_tenant_limit(:'mb', 'api_calls', 5);
UPDATE tenant.tenants SET feature_overrides = '{"beta": true}' WHERE slug = 'meter-a';

-- The usage of a tenant's resource, as the superuser sees it in shared memory.
CREATE FUNCTION pg_temp.used(t uuid, r text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT coalesce(sum(used), 0)::bigint FROM tenant._meter_usage(t) WHERE resource = r $$;

SET LOCAL ROLE meter_app;
SELECT throws_ok($$SELECT tenant.meter('api_calls')$$, 'TN008', NULL, 'no tenant: TN008');
SELECT is(tenant.has_feature('sso'), false, 'no tenant: no feature (fail closed)');
SELECT throws_ok($$SELECT tenant.require_feature('sso')$$, 'TN008', NULL, 'no tenant: require_feature TN008');

SELECT tenant.set('meter-a') IS NOT NULL AS entered_a;
SELECT is(tenant.meter('api_calls'), 2::bigint, 'first call leaves 2');
SELECT is(tenant.meter('api_calls'), 1::bigint, 'second call leaves 1');
SELECT is(tenant.meter('api_calls'), 0::bigint, 'third call leaves 0');
SELECT throws_ok($$SELECT tenant.meter('api_calls')$$, 'TN006', 'limit of "api_calls" reached', 'the fourth raises TN006');
SELECT is(tenant.try_meter('api_calls'), false, 'try_meter says false at the limit');
RESET ROLE;
SELECT is(pg_temp.used(:'ma', 'api_calls'), 3::bigint, 'refused calls counted nothing');
SET LOCAL ROLE meter_app;

-- The error is an HTTP 429 in SQL: DETAIL with the numbers, HINT with the upgrade URL.
CREATE FUNCTION pg_temp.limit_error() RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN
    PERFORM tenant.meter('api_calls');
    RETURN 'no error';
EXCEPTION WHEN SQLSTATE 'TN006' THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN d || ' | ' || h;
END $$;
SELECT matches(pg_temp.limit_error(), 'limit 3.*current 3.*https://example.com/upgrade', 'DETAIL and HINT carry limit, usage and URL');

-- An amount that does not fit counts nothing.
SELECT throws_ok($$SELECT tenant.meter('per_second', 3)$$, 'TN006', NULL, 'an amount over the limit is refused whole');
RESET ROLE;
SELECT is(pg_temp.used(:'ma', 'per_second'), 0::bigint, '... and counted nothing');
SET LOCAL ROLE meter_app;

-- Limit 0: not allowed at all. No limit: unlimited, meter returns NULL but counts.
SELECT throws_ok($$SELECT tenant.meter('exports')$$, 'TN006', NULL, 'limit 0 refuses the first call');
SELECT is(tenant.meter('unlimited_thing', 40), NULL::bigint, 'no limit: NULL left');
SELECT is(tenant.meter('unlimited_thing', 2), NULL::bigint, 'still unlimited');
RESET ROLE;
SELECT is(pg_temp.used(:'ma', 'unlimited_thing'), 42::bigint, 'unlimited resources are counted');
SET LOCAL ROLE meter_app;

-- Windows: 2 per second; the next second starts afresh.
SELECT is(tenant.try_meter('per_second') AND tenant.try_meter('per_second'), true, 'two calls in a second');
SELECT is(tenant.try_meter('per_second'), false, 'the third in the same second is refused');
SELECT pg_sleep(1.05);
SELECT is(tenant.try_meter('per_second'), true, 'the next second is a new window');

-- Tenant B: its own counters and its own override (5).
SELECT tenant.set('meter-b') IS NOT NULL AS entered_b;
SELECT is(tenant.meter('api_calls', 5), 0::bigint, 'B''s override allows 5, A''s usage is not B''s');
SELECT throws_ok($$SELECT tenant.meter('api_calls')$$, 'TN006', NULL, 'B stops at 5');

-- A plan without an upgrade URL: the same error, without a HINT (and no crash: regression test
-- for a NULL SQL parameter).
RESET ROLE;
SELECT tenant.create('Meter C', 'meter-c') AS mc \gset
SELECT tenant.set_limit('free', 'no_url_calls', 1);
SET LOCAL ROLE meter_app;
SELECT tenant.set('meter-c') IS NOT NULL AS entered_c;
SELECT is(tenant.meter('no_url_calls'), 0::bigint, 'the free plan allows one call');
SELECT throws_ok($$SELECT tenant.meter('no_url_calls')$$, 'TN006', 'limit of "no_url_calls" reached',
                 'a plan without an upgrade URL still gets TN006');
SELECT tenant.set('meter-b') IS NOT NULL AS entered_b_for_bad_input;

-- Bad input.
SELECT throws_ok($$SELECT tenant.meter(NULL)$$, '22004', NULL, 'NULL resource');
SELECT throws_ok($$SELECT tenant.meter('api_calls', NULL)$$, '22004', NULL, 'NULL amount');
SELECT throws_ok($$SELECT tenant.meter('api_calls', 0)$$, '22023', NULL, 'zero amount');
SELECT throws_ok($$SELECT tenant.meter('api_calls', -5)$$, '22023', NULL, 'negative amount (no refunds)');
SELECT throws_ok($$SELECT tenant.meter('Bad Name')$$, '22023', NULL, 'invalid resource name');
SELECT throws_ok($$SELECT tenant.meter(repeat('a', 64))$$, '22023', NULL, 'resource name too long');

-- Feature flags: the plan's, overridden by the tenant's; only JSON true is on.
SELECT tenant.set('meter-a') IS NOT NULL AS entered_a_again;
SELECT is(tenant.has_feature('sso'), true, 'plan feature on');
SELECT is(tenant.has_feature('beta'), true, 'tenant override turns beta on');
SELECT is(tenant.has_feature('export'), false, 'a non-boolean value is off');
SELECT is(tenant.has_feature('nope'), false, 'an unknown feature is off');
SELECT lives_ok($$SELECT tenant.require_feature('sso')$$, 'require_feature passes');
SELECT throws_ok($$SELECT tenant.require_feature('nope')$$, 'TN007', NULL, 'require_feature raises TN007');
SELECT tenant.set('meter-b') IS NOT NULL AS entered_b_again;
SELECT is(tenant.has_feature('beta'), false, 'B has no override');
RESET ROLE;
-- A change is seen at once (the cache is invalidated with the tenant record).
UPDATE tenant.tenants SET feature_overrides = '{"sso": false}' WHERE slug = 'meter-b';
SET LOCAL ROLE meter_app;
SELECT is(tenant.has_feature('sso'), false, 'an override switched off is seen at once');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
