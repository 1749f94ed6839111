-- Per-tenant statistics (0.8.0): what an application role, a monitoring role and a role without
-- grants may see; statements inside functions counted once; the SQL API's checks. Counters live
-- in shared memory and are not transactional: every run uses new tenants. (Errors, eviction,
-- restarts and logs: test/scripts/stats.sh; Prometheus: test/scripts/exporter.sh.)
BEGIN;
SELECT plan(29);

SELECT tenant.create('Stats A', 'stats-a') AS sa \gset
SELECT tenant.create('Stats B', 'stats-b') AS sb \gset
CREATE FUNCTION pg_temp.three() RETURNS int LANGUAGE plpgsql AS
    $$ BEGIN PERFORM 1; PERFORM 2; PERFORM count(*) FROM pg_catalog.pg_class; RETURN 3; END $$;
CREATE ROLE stats_app NOLOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(text), tenant.reset(), tenant._stats(), tenant.top_tenants(integer, text)
    TO stats_app;
GRANT SELECT ON tenant.stats TO stats_app;
CREATE ROLE stats_monitor NOLOGIN;
GRANT pg_read_all_stats TO stats_monitor;
CREATE ROLE stats_nobody NOLOGIN;

-- Tenant A: three top-level statements; the function's three queries are part of its call.
SELECT tenant.set('stats-a') IS NOT NULL AS entered;
SELECT pg_temp.three();
SELECT pg_temp.three() FROM generate_series(1, 5);
SELECT tenant.reset();
SELECT is((SELECT calls FROM tenant.stats WHERE tenant_id = :'sa'), 3::bigint,
          'a function running queries is one statement (3 calls: set, three(), three() x 5 rows)');
SELECT is((SELECT "rows" FROM tenant.stats WHERE tenant_id = :'sa'), 7::bigint, 'rows: 1 + 1 + 5');
SELECT is((SELECT slug FROM tenant.stats WHERE tenant_id = :'sa'), 'stats-a', 'the view names the slug');
SELECT is((SELECT kind FROM tenant.stats WHERE tenant_id = :'sa'), 'tenant', 'kind tenant');
SELECT ok((SELECT current_calls + previous_calls = calls AND total_time > 0 AND max_time <= total_time
             AND mean_time = total_time / calls AND first_seen <= last_seen
             FROM tenant.stats WHERE tenant_id = :'sa'), 'periods, times and first/last seen agree');
SELECT ok(EXISTS (SELECT FROM tenant.stats WHERE kind = 'none' AND tenant_id IS NULL AND slug IS NULL),
          'statements with no tenant have a row of their own');

-- Tenant B: two statements.
SELECT tenant.set('stats-b') IS NOT NULL AS entered;
SELECT 1;
SELECT tenant.reset();

-- An application role sees the row of the tenant it is in, and nothing else.
SET LOCAL ROLE stats_app;
SELECT is((SELECT count(*) FROM tenant.stats), 0::bigint, 'app role, no tenant: no rows');
SELECT tenant.set('stats-a') IS NOT NULL AS entered;
SELECT is((SELECT array_agg(tenant_id) FROM tenant.stats), ARRAY[:'sa'::uuid], 'app role in A: only A''s row');
SELECT is((SELECT count(*) FROM tenant.stats WHERE tenant_id = :'sb'), 0::bigint, 'app role in A: never B''s numbers');
SELECT is((SELECT count(*) FROM tenant.stats WHERE kind <> 'tenant'), 0::bigint, 'app role: no none or other row');
SELECT is((SELECT array_agg(tenant_id) FROM tenant.top_tenants(100, 'calls')), ARRAY[:'sa'::uuid],
          'top_tenants as the app role: only A');
SELECT tenant.set('stats-b') IS NOT NULL AS entered;
SELECT is((SELECT array_agg(tenant_id) FROM tenant.stats), ARRAY[:'sb'::uuid], 'app role in B: only B''s row');
SELECT throws_ok($$SELECT tenant.stats_reset()$$, '42501', NULL, 'app role: stats_reset is not granted');
SELECT throws_ok($$SELECT * FROM tenant.stats_for_export()$$, '42501', NULL, 'app role: stats_for_export is not granted');
SELECT throws_ok($$SELECT * FROM tenant.stats_info()$$, '42501', NULL, 'app role: stats_info is not granted');
SELECT tenant.reset();
RESET ROLE;

SET LOCAL ROLE stats_nobody;
SELECT throws_ok($$SELECT * FROM tenant.stats$$, '42501', NULL, 'a role without grants cannot read tenant.stats');
SELECT throws_ok($$SELECT * FROM tenant._stats()$$, '42501', NULL, 'nor tenant._stats()');
RESET ROLE;

-- A monitoring role (pg_read_all_stats, so pg_monitor too) sees every row.
SET LOCAL ROLE stats_monitor;
SELECT is((SELECT count(*) FROM tenant.stats WHERE tenant_id IN (:'sa', :'sb')), 2::bigint,
          'pg_read_all_stats: every tenant');
SELECT ok(EXISTS (SELECT FROM tenant.stats WHERE kind = 'none'), 'pg_read_all_stats: the none row');
SELECT is((SELECT string_agg(kind, ',' ORDER BY kind) FROM tenant.stats_for_export(0)), 'none,other',
          'stats_for_export(0): always one none and one other row');
SELECT ok((SELECT (SELECT sum(calls) FROM tenant.stats_for_export(1)) = (SELECT sum(calls) FROM tenant.stats)),
          'stats_for_export: the bounded rows add up to tenant.stats');
SELECT ok((SELECT tenants <= max_tenants + greatest(max_tenants / 4, 8) FROM tenant.stats_info()),
          'stats_info: the tenant rows within their bound');
SELECT throws_ok($$SELECT tenant.stats_reset()$$, '42501', NULL, 'a monitoring role cannot reset');
RESET ROLE;

-- The SQL API's checks.
SELECT throws_ok($$SELECT * FROM tenant.top_tenants(5, 'cpu')$$, '22023', NULL, 'top_tenants: an unknown measure is 22023');
SELECT throws_ok($$SELECT * FROM tenant.top_tenants(-1)$$, '22023', NULL, 'top_tenants: a negative n is 22023');
SELECT throws_ok($$SELECT * FROM tenant.top_tenants(NULL)$$, '22004', NULL, 'top_tenants: NULL n is 22004');
SELECT throws_ok($$SELECT * FROM tenant.stats_for_export(-1)$$, '22023', NULL, 'stats_for_export: a negative n is 22023');
SELECT is(tenant.stats_reset(:'sb'), 1::bigint, 'stats_reset(tenant) removes its row');
SELECT is(tenant.stats_reset(:'sb'), 0::bigint, 'twice: nothing left to remove');

SELECT * FROM finish();
ROLLBACK;
