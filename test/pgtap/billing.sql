-- Usage that billing can trust (0.9.0, issue 15): soft limits for meters and row quotas, alert
-- levels (their rules; the alerts themselves need the flusher's database and concurrent clients:
-- test/scripts/usage_alerts.sh), tenant.window_end() and the export of closed windows.
-- Meter counts live in shared memory and are not transactional: every run uses new tenants.
BEGIN;
SELECT plan(61);
\ir include/err.sql

CREATE ROLE pt_bill_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE pt_bill_sync NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.reset(), tenant.meter(text, bigint), tenant.try_meter(text, bigint),
    tenant.usage(uuid) TO pt_bill_app;
GRANT EXECUTE ON FUNCTION tenant.closed_windows(timestamptz) TO pt_bill_sync;
INSERT INTO tenant.plans (name) VALUES ('pt-bill');
SELECT tenant.create('Bill A', 'pt-bill-a-' || substr(md5(random()::text), 1, 8), 'pt-bill') AS ta \gset
SELECT tenant.create('Bill B', 'pt-bill-b-' || substr(md5(random()::text), 1, 8), 'pt-bill') AS tb \gset

-------------------------------------------------------------------------------------------------
-- 1. Setting enforcement and alert levels
-------------------------------------------------------------------------------------------------
SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', 'soft', '{100,80,80,150}');
SELECT results_eq($$SELECT "limit", period, enforcement, alert_levels FROM tenant.plan_limits
                     WHERE plan = 'pt-bill' AND resource = 'calls'$$,
                  $$VALUES (3::bigint, 'day', 'soft', '{80,100,150}'::integer[])$$,
                  'set_limit stores enforcement and the levels ascending, each once');
SELECT tenant.set_limit('pt-bill', 'calls', 4, 'day');
SELECT results_eq($$SELECT "limit", enforcement, alert_levels FROM tenant.plan_limits
                     WHERE plan = 'pt-bill' AND resource = 'calls'$$,
                  $$VALUES (4::bigint, 'soft', '{80,100,150}'::integer[])$$,
                  'set_limit without them keeps the limit''s enforcement and levels');
SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', NULL, '{}');
SELECT is((SELECT alert_levels FROM tenant.plan_limits WHERE plan = 'pt-bill' AND resource = 'calls'),
          '{}'::integer[], 'an empty array clears the levels');
SELECT tenant.set_limit('pt-bill', 'plain', 3);
SELECT results_eq($$SELECT enforcement, alert_levels FROM tenant.plan_limits WHERE plan = 'pt-bill' AND resource = 'plain'$$,
                  $$VALUES ('hard', '{}'::integer[])$$, 'a new limit is hard with no levels');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', 'lenient')$$),
          '22023 | unknown enforcement: "lenient"', 'an unknown enforcement: 22023');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', NULL, '{0}')$$),
          '22023 | invalid alert levels: {0}', 'a level of 0%: 22023');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', NULL, '{1001}')$$),
          '22023 | invalid alert levels: {1001}', 'a level over 1000%: 22023');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', NULL, '{10,20,30,40,50,60,70,80,90}')$$),
          '22023 | invalid alert levels: {10,20,30,40,50,60,70,80,90}', 'nine levels: 22023');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', NULL, '{80,NULL}')$$),
          '22023 | invalid alert levels: {80,NULL}', 'a NULL level: 22023');
SELECT is(pg_temp.err(format($$SELECT tenant.set_tenant_limit(%L, 'calls', 3, 'day', 'SOFT')$$, :'ta')),
          '22023 | unknown enforcement: "SOFT"', 'set_tenant_limit checks enforcement too');
SELECT is(pg_temp.err($$INSERT INTO tenant.plan_limits (plan, resource, "limit", enforcement) VALUES ('pt-bill', 'x', 1, 'maybe')$$),
          '23514 | new row for relation "plan_limits" violates check constraint "plan_limits_enforcement_known"',
          'the table refuses an unknown enforcement');
SELECT is(pg_temp.err(format($$INSERT INTO tenant.tenant_limits (tenant_id, resource, "limit", alert_levels) VALUES (%L, 'x', 1, '{-5}')$$, :'ta')),
          '23514 | new row for relation "tenant_limits" violates check constraint "tenant_limits_alert_levels_valid"',
          'the table refuses a bad level');
SELECT is(pg_temp.err($$SELECT tenant.set_limit('pt-bill', 'calls', 3, 'day', 'soft', '{}')$$), 'ok',
          'back to soft, no levels');

-- The tenant's override wins with its own enforcement and levels.
SELECT tenant.set_tenant_limit(:'tb', 'calls', 2, 'day', 'hard', '{50}');
SELECT results_eq(format('SELECT "limit", source, enforcement, alert_levels FROM tenant.effective_limit(%L, %L)', :'tb', 'calls'),
                  $$VALUES (2::bigint, 'tenant', 'hard', '{50}'::integer[])$$,
                  'effective_limit: the override''s enforcement and levels');
SELECT results_eq(format('SELECT "limit", source, enforcement, alert_levels FROM tenant.effective_limit(%L, %L)', :'ta', 'calls'),
                  $$VALUES (3::bigint, 'plan', 'soft', '{}'::integer[])$$,
                  'effective_limit: the plan''s soft limit');

-------------------------------------------------------------------------------------------------
-- 2. A soft meter limit lets calls through and reports the overage
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_bill_app;
SELECT tenant.set(:'ta'::uuid) IS NOT NULL AS entered \gset
SELECT is(tenant.meter('calls', 2), 1::bigint, 'soft: within the limit, what it leaves');
SELECT is(tenant.meter('calls'), 0::bigint, 'soft: at the limit, 0 left');
SELECT is(tenant.meter('calls'), -1::bigint, 'soft: past the limit the call passes; negative = the overage');
SELECT is(tenant.try_meter('calls', 2), true, 'soft: try_meter passes too');
SELECT results_eq($$SELECT used, "limit", enforcement, overage, kind FROM tenant.usage() WHERE resource = 'calls'$$,
                  $$VALUES (6::bigint, 3::bigint, 'soft', 3::bigint, 'meter')$$,
                  'usage(): the soft limit''s overage');
SELECT is(tenant.meter('plain', 3), 0::bigint, 'hard: up to the limit');
SELECT throws_ok($$SELECT tenant.meter('plain')$$, 'TN006', NULL, 'hard: past it, TN006 as before');
SELECT is(tenant.try_meter('plain'), false, 'hard: try_meter false');
SELECT results_eq($$SELECT used, enforcement, overage FROM tenant.usage() WHERE resource = 'plain'$$,
                  $$VALUES (3::bigint, 'hard', 0::bigint)$$, 'usage(): a hard limit has no overage');
SELECT is(tenant.meter('free_thing', 7), NULL::bigint, 'no limit: NULL left, as before');
SELECT results_eq($$SELECT used, enforcement, overage FROM tenant.usage() WHERE resource = 'free_thing'$$,
                  $$VALUES (7::bigint, NULL::text, 0::bigint)$$, 'usage(): unlimited has no enforcement and no overage');
SELECT throws_ok(format('SELECT * FROM tenant.usage(%L)', :'tb'), '42501', NULL,
                 'usage(): still not another tenant''s');
SELECT tenant.set(:'tb'::uuid) IS NOT NULL AS entered \gset
SELECT is(tenant.meter('calls', 2), 0::bigint, 'B''s own hard override: up to 2');
SELECT throws_ok($$SELECT tenant.meter('calls')$$, 'TN006', NULL, 'B''s hard override refuses the third');
SELECT tenant.reset() \gset
RESET ROLE;
-- A limit made soft applies at once (the registry's invalidation reaches the limit cache).
SELECT tenant.set_tenant_limit(:'tb', 'calls', 2, 'day', 'soft');
SET LOCAL ROLE pt_bill_app;
SELECT tenant.set(:'tb'::uuid) IS NOT NULL AS entered \gset
SELECT is(tenant.meter('calls'), -1::bigint, 'made soft: the call passes');
SELECT tenant.reset() \gset
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 3. A soft row quota
-------------------------------------------------------------------------------------------------
CREATE TABLE public.pt_bill_items (tenant_id uuid NOT NULL, v int);
SELECT tenant.protect('public.pt_bill_items') \gset
SELECT tenant.limit_rows('public.pt_bill_items', 'bill_items') AS counted \gset
GRANT SELECT, INSERT ON public.pt_bill_items TO pt_bill_app;
SELECT tenant.set_limit('pt-bill', 'bill_items', 2, 'none', 'soft');
SET LOCAL ROLE pt_bill_app;
SELECT tenant.set(:'ta'::uuid) IS NOT NULL AS entered \gset
SELECT lives_ok($$INSERT INTO public.pt_bill_items (v) SELECT g FROM generate_series(1, 3) g$$,
                'soft row quota: three rows pass a limit of 2');
SELECT results_eq($$SELECT used, "limit", enforcement, overage, kind FROM tenant.usage() WHERE resource = 'bill_items'$$,
                  $$VALUES (3::bigint, 2::bigint, 'soft', 1::bigint, 'rows')$$, 'usage(): the rows'' overage');
RESET ROLE;
SELECT tenant.set_limit('pt-bill', 'bill_items', 2, 'none', 'hard');
SET LOCAL ROLE pt_bill_app;
SELECT tenant.set(:'ta'::uuid) IS NOT NULL AS entered \gset
SELECT throws_ok($$INSERT INTO public.pt_bill_items (v) VALUES (4)$$, 'TN006', NULL, 'made hard: the next row is refused');
SELECT is((SELECT count(*)::int FROM public.pt_bill_items), 3, '... and nothing was written');
SELECT tenant.reset() \gset
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 4. Windows and the export of closed ones
-------------------------------------------------------------------------------------------------
SELECT is(tenant.window_end('day', '2030-01-05 00:00+00'), '2030-01-06 00:00+00'::timestamptz, 'window_end: a day');
SELECT is(tenant.window_end('month', '2030-01-01 00:00+00'), '2030-02-01 00:00+00'::timestamptz, 'window_end: a month');
SELECT is(tenant.window_end('none', '2000-01-01 00:00+00'), NULL::timestamptz, 'window_end: none never ends');
SELECT is(pg_temp.err($$SELECT tenant.window_end('week', now())$$), '22023 | unknown period: "week"',
          'window_end: an unknown period is 22023');

-- Rows as the flusher writes them: a closed day, the open day, a window of period none.
INSERT INTO tenant.meter_counts (tenant_id, resource, window_start, period, used) VALUES
    (:'ta', 'exported', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days', 'day', 11),
    (:'ta', 'exported', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day', 'day', 12),
    (:'ta', 'exported', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 'day', 13),
    (:'ta', 'forever', '2000-01-01 00:00+00', 'none', 14);
SELECT ok(tenant._meters_flushed_until() IS NOT NULL, 'the flusher has flushed (it says until when)');
SELECT results_eq(format($$SELECT used, window_end - window_start FROM tenant.closed_windows() WHERE tenant_id = %L$$, :'ta'),
                  $$VALUES (11::bigint, interval '1 day'), (12::bigint, interval '1 day')$$,
                  'closed_windows(): the ended days, oldest first; not the open day, not period none');
SELECT results_eq(format($$SELECT used FROM tenant.closed_windows(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day')
                           WHERE tenant_id = %L$$, :'ta'),
                  $$VALUES (12::bigint)$$, 'closed_windows(since): only windows that ended after since');
SET LOCAL ROLE pt_bill_sync;
SELECT is((SELECT count(*)::int FROM tenant.closed_windows() WHERE tenant_id = :'ta'), 2,
          'a billing role granted EXECUTE reads the export (no grant on meter_counts needed)');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 5. Idempotency keys (shared memory; 16 clients and Redis: test/scripts/billing.sh)
-------------------------------------------------------------------------------------------------
SELECT tenant.set_limit('pt-bill', 'events', 10, 'day');
GRANT EXECUTE ON FUNCTION tenant.meter(text, bigint, text), tenant.try_meter(text, bigint, text) TO pt_bill_app;
CREATE FUNCTION pg_temp.used(t uuid, r text) RETURNS bigint LANGUAGE sql SECURITY DEFINER AS
    $$ SELECT coalesce(sum(used), 0)::bigint FROM tenant._meter_usage(t) WHERE resource = r $$;
GRANT EXECUTE ON FUNCTION pg_temp.used(uuid, text) TO pt_bill_app;
SET LOCAL ROLE pt_bill_app;
SELECT tenant.set(:'ta'::uuid) IS NOT NULL AS entered \gset
SELECT is(tenant.meter('events', 4, 'evt-1'), 6::bigint, 'a keyed call counts');
SELECT is(tenant.meter('events', 4, 'evt-1'), 6::bigint, 'its repeat gets the same answer');
SELECT is(pg_temp.used(:'ta', 'events'), 4::bigint, '... and counted nothing');
SELECT is(tenant.meter('events', 4, 'evt-2'), 2::bigint, 'another key counts');
SELECT throws_ok($$SELECT tenant.meter('events', 4, 'evt-3')$$, 'TN006', NULL, 'a keyed call at the limit: TN006');
SELECT throws_ok($$SELECT tenant.meter('events', 4, 'evt-3')$$, 'TN006', NULL, 'its repeat: TN006 again');
SELECT is(tenant.try_meter('events', 4, 'evt-3'), false, 'try_meter with the refused key: false');
SELECT is(tenant.try_meter('events', 4, 'evt-1'), true, 'try_meter with the counted key: true, nothing counted');
SELECT is(tenant.meter('events', 1), 1::bigint, 'a call without a key counts as before');
SELECT is(pg_temp.err($$SELECT tenant.meter('events', 5, 'evt-1')$$), '22023 | the idempotency key was used with another amount',
          'a key repeated with another amount: 22023');
SELECT is(pg_temp.err($$SELECT tenant.meter('events', 1, NULL)$$), '22004 | the idempotency key must not be NULL',
          'a NULL key: 22004');
SELECT is(pg_temp.err($$SELECT tenant.meter('events', 1, '')$$), '22023 | an idempotency key has 1 to 64 bytes, not 0',
          'an empty key: 22023');
SELECT is(pg_temp.err(format('SELECT tenant.meter(%L, 1, %L)', 'events', repeat('k', 65))),
          '22023 | an idempotency key has 1 to 64 bytes, not 65', 'a key of 65 bytes: 22023');
SELECT is(pg_temp.used(:'ta', 'events'), 9::bigint, 'refused and repeated calls counted nothing (4 + 4 + 1)');
SELECT tenant.set(:'tb'::uuid) IS NOT NULL AS entered \gset
SELECT is(tenant.meter('events', 4, 'evt-1'), 6::bigint, 'the same key of another tenant is another event');
SELECT tenant.reset() \gset
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 6. Privileges
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_bill_app;
SELECT throws_ok($$SELECT * FROM tenant.closed_windows()$$, '42501', NULL, 'the application role cannot export');
SELECT throws_ok($$SELECT * FROM tenant.usage_alerts$$, '42501', NULL, 'the application role cannot read the outbox');
SELECT throws_ok(format($$SELECT tenant._usage_alert(%L, 'x', now(), 'day', 80, 1, 1, 'hard')$$, :'ta'), '42501', NULL,
                 'the application role cannot write an alert');
SELECT throws_ok($$SELECT tenant.set_limit('pt-bill', 'calls', 1000, 'day', 'soft')$$, '42501', NULL,
                 'the application role cannot change a limit');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
