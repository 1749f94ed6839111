-- Limits (plan_limits, tenant_limits, effective_limit, TN006), exact row quotas (limit_rows)
-- and the usage report (0.4.0), with a non-superuser table owner and application role.
-- The migration of tenants.limit_overrides is covered by test/scripts/upgrade.sh; concurrent
-- writers by test/scripts/quota_concurrency.sh.
--
-- Tenants: A (plan pro: items 5, api_calls 100/hour, upgrade URL), B (plan free, no limits:
-- unlimited), C (plan pro, own override items 0), M (meter rows, when the meters are stubbed).
BEGIN;
SELECT plan(140);

-------------------------------------------------------------------------------------------------
-- Setup (superuser)
-------------------------------------------------------------------------------------------------
CREATE ROLE pt_lim_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE pt_lim_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE pt_lim_admin NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset() TO pt_lim_owner, pt_lim_app;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name), tenant.limit_rows(regclass, text),
                          tenant.unlimit_rows(regclass) TO pt_lim_owner;
-- Granted to the application role too, to show the ownership check (not the grant) refusing it.
GRANT EXECUTE ON FUNCTION tenant.limit_rows(regclass, text), tenant.unlimit_rows(regclass) TO pt_lim_app;
GRANT EXECUTE ON FUNCTION tenant.usage(uuid) TO pt_lim_app, pt_lim_admin;
GRANT SELECT ON tenant.row_counts TO pt_lim_admin;

INSERT INTO tenant.plans (name, upgrade_url) VALUES ('pt-pro', 'https://example.com/upgrade'),
                                                    ('pt-spare', NULL);
SELECT tenant.create('Limits A', 'pt-lim-a', 'pt-pro') AS ta \gset
SELECT tenant.create('Limits B', 'pt-lim-b') AS tb \gset
SELECT tenant.create('Limits C', 'pt-lim-c', 'pt-pro') AS tc \gset
SELECT tenant.create('Limits M', 'pt-lim-m') AS tm \gset

CREATE SCHEMA pt_lim AUTHORIZATION pt_lim_owner;
GRANT USAGE ON SCHEMA pt_lim TO pt_lim_app;
CREATE SCHEMA pt_lim_t;
GRANT USAGE ON SCHEMA pt_lim_t TO pt_lim_owner, pt_lim_app, pt_lim_admin;
SELECT format('CREATE FUNCTION pt_lim_t.%s() RETURNS uuid LANGUAGE sql IMMUTABLE AS %L', n, format('SELECT %L::uuid', v))
  FROM (VALUES ('ta', :'ta'), ('tb', :'tb'), ('tc', :'tc'), ('tm', :'tm')) AS x(n, v) \gexec

-- SQLSTATE | message | detail | hint of a statement run as the calling role ('ok' if none).
CREATE FUNCTION pt_lim_t.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN concat_ws(' | ', s, m, nullif(d, ''), nullif(h, ''));
END $$;

-- The counts, as the superuser sees them.
CREATE FUNCTION pt_lim_t.cnt(t uuid, r text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT rows FROM tenant.row_counts WHERE tenant_id = t AND resource = r $$;
CREATE FUNCTION pt_lim_t.real(rel regclass, t uuid) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE tenant_id = $1', rel) INTO n USING t;
    RETURN n;
END $$;

-- Meter rows: tenant._meter_usage() is the meters' C function. Where it is not installed yet,
-- a stand-in reading a table serves here (inside this transaction only).
CREATE TABLE pt_lim_t.meter_stub (tenant_id uuid, resource text, window_start timestamptz, used bigint);
INSERT INTO pt_lim_t.meter_stub VALUES (:'tm', 'api_calls', '2030-01-01 10:00:00+00', 42),
                                       (:'tm', 'exports', NULL, 3);
SELECT to_regprocedure('tenant._meter_usage(uuid)') IS NULL AS stub_meters \gset
\if :stub_meters
CREATE FUNCTION tenant._meter_usage(tenant uuid)
    RETURNS TABLE (resource text, window_start timestamptz, used bigint) LANGUAGE sql STABLE
    AS $$ SELECT s.resource, s.window_start, s.used FROM pt_lim_t.meter_stub s WHERE s.tenant_id = $1 $$;
\endif

-------------------------------------------------------------------------------------------------
-- 1. Objects and privileges
-------------------------------------------------------------------------------------------------
SELECT has_table('tenant', 'plan_limits', 'tenant.plan_limits exists');
SELECT has_table('tenant', 'tenant_limits', 'tenant.tenant_limits exists');
SELECT has_table('tenant', 'row_quotas', 'tenant.row_quotas exists');
SELECT has_table('tenant', 'row_counts', 'tenant.row_counts exists');
SELECT hasnt_column('tenant', 'tenants', 'limit_overrides', 'tenants.limit_overrides is gone (now tenant_limits)');
SELECT ok((SELECT extconfig @> ARRAY['tenant.plan_limits'::regclass::oid, 'tenant.tenant_limits'::regclass::oid,
                                     'tenant.row_quotas'::regclass::oid, 'tenant.row_counts'::regclass::oid]
             FROM pg_extension WHERE extname = 'pg_tenant'),
          'limits, the quota catalog and the counts are dumped by pg_dump');
SELECT is((SELECT count(*)::int FROM pg_trigger
            WHERE tgfoid = 'tenant._registry_changed()'::regprocedure
              AND tgrelid IN ('tenant.plan_limits'::regclass, 'tenant.tenant_limits'::regclass)),
          2, 'a change of a limit invalidates every backend''s caches');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text
                  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                 WHERE p.pronamespace = 'tenant'::regnamespace AND a.grantee = 0
                   AND p.proname IN ('set_limit', 'clear_limit', 'set_tenant_limit', 'clear_tenant_limit',
                                     'effective_limit', 'limit_rows', 'unlimit_rows', 'usage',
                                     '_raise_limit_reached', '_row_quota_inserted', '_row_quota_apply')),
          '{}'::text[], 'PUBLIC may execute none of the new functions');

SET LOCAL ROLE pt_lim_app;
SELECT throws_ok($$SELECT tenant.set_limit('free', 'users', 1)$$, '42501', NULL, 'app: cannot set a limit');
SELECT throws_ok($$SELECT * FROM tenant.plan_limits$$, '42501', NULL, 'app: cannot read plan_limits');
SELECT throws_ok($$SELECT * FROM tenant.row_counts$$, '42501', NULL, 'app: cannot read row_counts');
SELECT throws_ok(format('SELECT * FROM tenant.effective_limit(%L, %L)', :'ta', 'users'), '42501', NULL,
                 'app: cannot call effective_limit');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 2. Admin functions and bad input
-------------------------------------------------------------------------------------------------
SELECT lives_ok($$SELECT tenant.set_limit('pt-pro', 'items', 4)$$, 'set_limit: a plan limit');
SELECT lives_ok($$SELECT tenant.set_limit('pt-pro', 'items', 5)$$, 'set_limit again replaces it');
SELECT lives_ok($$SELECT tenant.set_limit('pt-pro', 'api_calls', 100, 'hour')$$, 'set_limit with a period');
SELECT results_eq($$SELECT resource, "limit", period FROM tenant.plan_limits WHERE plan = 'pt-pro' ORDER BY 1$$,
                  $$VALUES ('api_calls', 100::bigint, 'hour'), ('items', 5::bigint, 'none')$$,
                  'plan_limits holds one row per resource, period none by default');
SELECT lives_ok($$SELECT tenant.set_limit('pt-spare', 'x.y-z_1', 0)$$, 'resource names may use . - _ and digits');
SELECT is(tenant.clear_limit('pt-spare', 'x.y-z_1'), true, 'clear_limit says true when it removed a limit');
SELECT is(tenant.clear_limit('pt-spare', 'x.y-z_1'), false, '... and false when there was none');
SELECT lives_ok(format('SELECT tenant.set_tenant_limit(%L, %L, 0)', :'tc', 'items'), 'set_tenant_limit: an override');
SELECT lives_ok(format('SELECT tenant.set_tenant_limit(%L, %L, 7)', :'tb', 'seats'), 'set_tenant_limit for another resource');
SELECT is(tenant.clear_tenant_limit(:'tb', 'seats'), true, 'clear_tenant_limit says true when it removed one');
SELECT is(tenant.clear_tenant_limit(:'tb', 'seats'), false, '... and false when there was none');

SELECT throws_ok($$SELECT tenant.set_limit(NULL, 'items', 1)$$, '22004', NULL, 'set_limit: NULL plan');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', NULL, 1)$$, '22004', NULL, 'set_limit: NULL resource');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'items', NULL)$$, '22004', NULL, 'set_limit: NULL limit');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'items', 1, NULL)$$, '22004', NULL, 'set_limit: NULL period');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'items', -1)$$, '22023', 'a limit must not be negative, not -1',
                 'set_limit: a negative limit');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'items', 1, 'week')$$, '22023', 'unknown period: "week"',
                 'set_limit: an unknown period');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'Items', 1)$$, '22023', 'invalid resource name: "Items"',
                 'set_limit: upper case in a resource name');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', '', 1)$$, '22023', NULL, 'set_limit: an empty resource name');
SELECT throws_ok(format('SELECT tenant.set_limit(%L, %L, 1)', 'pt-pro', repeat('r', 64)), '22023', NULL,
                 'set_limit: a resource name of 64 characters');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'a b', 1)$$, '22023', NULL, 'set_limit: a space in a resource name');
SELECT throws_ok($$SELECT tenant.set_limit('gold', 'items', 1)$$, 'TN003', 'plan "gold" does not exist',
                 'set_limit: an unknown plan');
SELECT throws_ok($$SELECT tenant.clear_limit(NULL, 'items')$$, '22004', NULL, 'clear_limit: NULL plan');
SELECT throws_ok($$SELECT tenant.clear_limit('gold', 'items')$$, 'TN003', NULL, 'clear_limit: an unknown plan');
SELECT throws_ok($$SELECT tenant.clear_limit('pt-pro', 'Bad!')$$, '22023', NULL, 'clear_limit: an invalid resource name');
SELECT throws_ok($$SELECT tenant.set_tenant_limit(NULL, 'items', 1)$$, '22004', NULL, 'set_tenant_limit: NULL tenant');
SELECT throws_ok(format('SELECT tenant.set_tenant_limit(%L, %L, -5)', :'ta', 'items'), '22023', NULL,
                 'set_tenant_limit: a negative limit');
SELECT throws_ok(format('SELECT tenant.set_tenant_limit(%L, %L, 1, %L)', :'ta', 'items', 'year'), '22023', NULL,
                 'set_tenant_limit: an unknown period');
SELECT throws_ok(format('SELECT tenant.set_tenant_limit(%L, %L, 1)', gen_random_uuid(), 'items'), 'TN001', NULL,
                 'set_tenant_limit: an unknown tenant');
SELECT throws_ok(format('SELECT tenant.clear_tenant_limit(%L, NULL)', :'ta'), '22004', NULL,
                 'clear_tenant_limit: NULL resource');
SELECT throws_ok(format('SELECT tenant.clear_tenant_limit(%L, %L)', gen_random_uuid(), 'items'), 'TN001', NULL,
                 'clear_tenant_limit: an unknown tenant');
SELECT throws_ok($$INSERT INTO tenant.plan_limits VALUES ('pt-pro', 'neg', -1)$$, '23514', NULL,
                 'the table refuses a negative limit written directly');
SELECT throws_ok($$INSERT INTO tenant.plan_limits VALUES ('pt-pro', 'per', 1, 'fortnight')$$, '23514', NULL,
                 'the table refuses an unknown period written directly');

-- Plans: renamed (ON UPDATE CASCADE) and deleted (ON DELETE CASCADE) with their limits.
SELECT tenant.set_limit('pt-spare', 'items', 9);
UPDATE tenant.plans SET name = 'pt-spare2' WHERE name = 'pt-spare';
SELECT is((SELECT plan FROM tenant.plan_limits WHERE resource = 'items' AND "limit" = 9), 'pt-spare2',
          'a renamed plan keeps its limits');
DELETE FROM tenant.plans WHERE name = 'pt-spare2';
SELECT is((SELECT count(*)::int FROM tenant.plan_limits WHERE "limit" = 9), 0, 'a deleted plan takes its limits along');

-------------------------------------------------------------------------------------------------
-- 3. effective_limit: tenant override, else plan, else unlimited
-------------------------------------------------------------------------------------------------
SELECT results_eq(format('SELECT * FROM tenant.effective_limit(%L, %L)', :'ta', 'items'),
                  $$VALUES (5::bigint, 'none', 'plan', 'https://example.com/upgrade', 'hard', '{}'::integer[])$$,
                  'effective_limit: the plan''s limit with its upgrade URL');
SELECT results_eq(format('SELECT * FROM tenant.effective_limit(%L, %L)', :'ta', 'api_calls'),
                  $$VALUES (100::bigint, 'hour', 'plan', 'https://example.com/upgrade', 'hard', '{}'::integer[])$$,
                  'effective_limit: the plan''s period');
SELECT results_eq(format('SELECT * FROM tenant.effective_limit(%L, %L)', :'tc', 'items'),
                  $$VALUES (0::bigint, 'none', 'tenant', 'https://example.com/upgrade', 'hard', '{}'::integer[])$$,
                  'effective_limit: the tenant''s override wins (0: not allowed)');
SELECT results_eq(format('SELECT * FROM tenant.effective_limit(%L, %L)', :'tb', 'items'),
                  $$VALUES (NULL::bigint, 'none', 'none', NULL::text, 'hard', '{}'::integer[])$$,
                  'effective_limit: no limit anywhere is unlimited (NULL)');
SELECT tenant.set_tenant_limit(:'tc', 'api_calls', 3, 'minute');
SELECT results_eq(format('SELECT "limit", period, source FROM tenant.effective_limit(%L, %L)', :'tc', 'api_calls'),
                  $$VALUES (3::bigint, 'minute', 'tenant')$$, 'an override brings its own period');
SELECT tenant.clear_tenant_limit(:'tc', 'api_calls');
SELECT results_eq(format('SELECT "limit", period, source FROM tenant.effective_limit(%L, %L)', :'tc', 'api_calls'),
                  $$VALUES (100::bigint, 'hour', 'plan')$$, 'a cleared override gives the plan''s limit back');
SELECT throws_ok(format('SELECT * FROM tenant.effective_limit(%L, %L)', gen_random_uuid(), 'items'), 'TN001', NULL,
                 'effective_limit: an unknown tenant');
SELECT throws_ok($$SELECT * FROM tenant.effective_limit(NULL, 'items')$$, '22004', NULL, 'effective_limit: NULL tenant');

-------------------------------------------------------------------------------------------------
-- 4. TN006, the one limit error
-------------------------------------------------------------------------------------------------
SELECT is(pt_lim_t.err($$SELECT tenant._raise_limit_reached('items', 5, 6, 'https://example.com/up')$$),
          'TN006 | limit of "items" reached | resource items: limit 5, current 6 | Upgrade your plan: https://example.com/up',
          'TN006: message, DETAIL with the numbers, HINT with the upgrade URL');
SELECT is(pt_lim_t.err($$SELECT tenant._raise_limit_reached('items', 0, 1, NULL)$$),
          'TN006 | limit of "items" reached | resource items: limit 0, current 1',
          'TN006 without an upgrade URL has no HINT');
SELECT is(pt_lim_t.err($$SELECT tenant._raise_limit_reached('api_calls', 100, 100, '', 'hour')$$),
          'TN006 | limit of "api_calls" reached | resource api_calls: limit 100, current 100, period hour',
          'TN006 names the period when there is one (a blank URL is no URL)');

-------------------------------------------------------------------------------------------------
-- 5. Row quotas: limit_rows
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_lim_owner;
CREATE TABLE pt_lim.items (tenant_id uuid, id int GENERATED ALWAYS AS IDENTITY, v text NOT NULL DEFAULT 'x',
                           PRIMARY KEY (tenant_id, id));
CREATE TABLE pt_lim.plain (tenant_id uuid NOT NULL, v text);
CREATE TABLE pt_lim.events (tenant_id uuid NOT NULL, k int NOT NULL, v text) PARTITION BY LIST (k);
CREATE TABLE pt_lim.events_1 PARTITION OF pt_lim.events FOR VALUES IN (1);
CREATE TABLE pt_lim.events_2 PARTITION OF pt_lim.events FOR VALUES IN (2);
CREATE TABLE pt_lim.orgs_docs (org uuid NOT NULL, v text);
SELECT tenant.protect('pt_lim.items') IS NOT NULL AS protected \gset
SELECT count(*) AS protected FROM tenant.protect('pt_lim.events') \gset
SELECT tenant.protect('pt_lim.orgs_docs', 'org') IS NOT NULL AS protected \gset
RESET ROLE;
GRANT SELECT, INSERT, UPDATE, DELETE ON pt_lim.items, pt_lim.events, pt_lim.events_1, pt_lim.events_2, pt_lim.orgs_docs
   TO pt_lim_app;

-- Rows that exist before the quota: counted by limit_rows (as the extension owner, every tenant).
INSERT INTO pt_lim.items (tenant_id) VALUES (:'ta'), (:'ta'), (:'tb');

SET LOCAL ROLE pt_lim_owner;
SELECT throws_ok($$SELECT tenant.limit_rows(NULL, 'items')$$, '22004', NULL, 'limit_rows: NULL table');
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.items', NULL)$$, '22004', NULL, 'limit_rows: NULL resource');
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.items', 'Items!')$$, '22023', NULL, 'limit_rows: an invalid resource name');
SELECT is(pt_lim_t.err($$SELECT tenant.limit_rows('pt_lim.plain', 'plain')$$),
          '55000 | table pt_lim.plain is not tenant-scoped | A row quota counts rows per tenant, and only a protected table has a trusted tenant column. | Protect it first: SELECT tenant.protect(''pt_lim.plain'');',
          'limit_rows: a table that is not protected is refused, with the way out');
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.events_1', 'events')$$, '55000', NULL,
                 'limit_rows: a partition alone is refused');
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.items', 'api_calls')$$, '22023', 'resource "api_calls" has a limit with a period',
                 'limit_rows: a resource with a periodic limit (a meter) is refused');
SELECT is(tenant.limit_rows('pt_lim.items', 'items'), 3::bigint, 'limit_rows counts the rows already there');
SELECT is(tenant.limit_rows('pt_lim.items', 'items'), 3::bigint, 'limit_rows again recounts (idempotent)');
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.items', 'other')$$, '55000', NULL,
                 'limit_rows: a table counts for one resource');
RESET ROLE;
SET LOCAL ROLE pt_lim_app;
SELECT throws_ok($$SELECT tenant.limit_rows('pt_lim.items', 'items')$$, '42501', 'must be owner of table pt_lim.items',
                 'limit_rows: granted EXECUTE, a role that does not own the table is refused');
RESET ROLE;

SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'items' ORDER BY rows$$,
                  format('VALUES (%L::uuid, 1::bigint), (%L::uuid, 2::bigint)', :'tb', :'ta'),
                  'the existing rows are counted per tenant');
SELECT results_eq($$SELECT tgname::text COLLATE "default", tgenabled::text FROM pg_trigger WHERE tgrelid = 'pt_lim.items'::regclass
                     AND tgname LIKE 'pg_tenant_row_quota%' ORDER BY 1$$,
                  $$VALUES ('pg_tenant_row_quota_delete', 'A'), ('pg_tenant_row_quota_insert', 'A'),
                           ('pg_tenant_row_quota_truncate', 'A'), ('pg_tenant_row_quota_update', 'A')$$,
                  'four statement triggers, ENABLE ALWAYS (replica mode does not skip them)');
SELECT throws_ok($$SELECT tenant.set_limit('pt-pro', 'items', 5, 'day')$$, '22023', NULL,
                 'set_limit: a period for a resource that counts rows is refused');

-------------------------------------------------------------------------------------------------
-- 6. Row quotas as the application role (tenant A: limit 5, 2 rows so far)
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_lim_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.items DEFAULT VALUES$$, 'A inserts a row (3 of 5)');
SELECT is(pt_lim_t.err($$INSERT INTO pt_lim.items (v) VALUES ('m1'), ('m2'), ('m3')$$),
          'TN006 | limit of "items" reached | resource items: limit 5, current 6 | Upgrade your plan: https://example.com/upgrade',
          'a multi-row INSERT crossing the limit fails whole, with A''s numbers and the upgrade URL');
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), 3::bigint, '... and leaves the count unchanged');
SELECT is(pt_lim_t.real('pt_lim.items', :'ta'), 3::bigint, '... and inserts none of its rows');
SET LOCAL ROLE pt_lim_app;
SELECT lives_ok($$INSERT INTO pt_lim.items (v) SELECT 's' || i FROM generate_series(1, 2) AS i$$,
                'INSERT ... SELECT of 2 rows reaches the limit exactly (5 of 5)');
SELECT throws_ok($$INSERT INTO pt_lim.items DEFAULT VALUES$$, 'TN006', 'limit of "items" reached', 'the sixth row is refused');
SELECT lives_ok($$INSERT INTO pt_lim.items (id, v) OVERRIDING SYSTEM VALUE
                  SELECT id, v FROM pt_lim.items LIMIT 1 ON CONFLICT DO NOTHING$$,
                'at the limit, an INSERT ... ON CONFLICT DO NOTHING that inserts nothing passes');
SELECT lives_ok($$UPDATE pt_lim.items SET v = v || '!'$$, 'an UPDATE that keeps the tenant passes at the limit');
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), 5::bigint, 'A''s count is 5');
SET LOCAL ROLE pt_lim_app;
WITH d AS (DELETE FROM pt_lim.items WHERE v LIKE 's%' RETURNING 1) SELECT is(count(*)::int, 2, 'A deletes 2 rows') FROM d;
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), 3::bigint, 'a DELETE gives the rows back (3)');
SET LOCAL ROLE pt_lim_app;
SAVEPOINT before_two;
SELECT lives_ok($$INSERT INTO pt_lim.items (v) VALUES ('sp1'), ('sp2')$$, 'inside a savepoint, 2 more (5)');
ROLLBACK TO SAVEPOINT before_two;
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), 3::bigint, 'ROLLBACK TO SAVEPOINT refunds them');
SET LOCAL ROLE pt_lim_app;
-- Another tenant's writes: B is unlimited; its rows never show in A's numbers.
SELECT tenant.set(:'tb') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.items (v) SELECT 'b' FROM generate_series(1, 20)$$, 'B (no limit) inserts 20 rows');
WITH d AS (DELETE FROM pt_lim.items RETURNING 1) SELECT is(count(*)::int, 21, 'B deletes all it sees: its own 21') FROM d;
SELECT lives_ok($$INSERT INTO pt_lim.items (v) SELECT 'b' FROM generate_series(1, 10)$$, 'B inserts 10 again');
SELECT tenant.set(:'ta') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.items (v) VALUES ('a4'), ('a5')$$, 'A fills up to 5');
SELECT is(pt_lim_t.err($$INSERT INTO pt_lim.items DEFAULT VALUES$$),
          'TN006 | limit of "items" reached | resource items: limit 5, current 6 | Upgrade your plan: https://example.com/upgrade',
          'the DETAIL holds A''s own numbers only (15 rows in the table)');
-- C: an override of 0 refuses the first row.
SELECT tenant.set(:'tc') AS entered \gset
SELECT is(pt_lim_t.err($$INSERT INTO pt_lim.items DEFAULT VALUES$$),
          'TN006 | limit of "items" reached | resource items: limit 0, current 1 | Upgrade your plan: https://example.com/upgrade',
          'limit 0: the first row is refused');
RESET ROLE;
SELECT is(COALESCE(pt_lim_t.cnt(:'tc', 'items'), 0), 0::bigint, '... and nothing is counted for C');
SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'items' ORDER BY rows$$,
                  format('VALUES (%L::uuid, 5::bigint), (%L::uuid, 10::bigint)', :'ta', :'tb'),
                  'the counts match: A 5, B 10');

-- An UPDATE moving rows between tenants (the superuser: row level security does not bind it).
SELECT lives_ok(format('UPDATE pt_lim.items SET tenant_id = %L WHERE id IN (SELECT id FROM pt_lim.items WHERE tenant_id = %L LIMIT 2)',
                       :'tb', :'ta'), 'two of A''s rows move to B');
SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'items' ORDER BY rows$$,
                  format('VALUES (%L::uuid, 3::bigint), (%L::uuid, 12::bigint)', :'ta', :'tb'),
                  'a move adjusts both tenants: A 3, B 12');
SELECT is(pt_lim_t.err(format('UPDATE pt_lim.items SET tenant_id = %L WHERE id IN (SELECT id FROM pt_lim.items WHERE tenant_id = %L LIMIT 3)',
                              :'ta', :'tb')),
          'TN006 | limit of "items" reached | resource items: limit 5, current 6 | Upgrade your plan: https://example.com/upgrade',
          'moving 3 of B''s rows to A passes A''s limit: refused');
SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'items' ORDER BY rows$$,
                  format('VALUES (%L::uuid, 3::bigint), (%L::uuid, 12::bigint)', :'ta', :'tb'),
                  '... and both counts are unchanged');
-- Replica mode (logical replication apply, some restore tools) still counts.
SET LOCAL session_replication_role = replica;
INSERT INTO pt_lim.items (tenant_id) VALUES (:'ta');
RESET session_replication_role;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), 4::bigint, 'session_replication_role = replica does not skip the count');
-- TRUNCATE by the owner zeroes the counts.
SET LOCAL ROLE pt_lim_owner;
TRUNCATE pt_lim.items;
RESET ROLE;
SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'items' ORDER BY tenant_id = pt_lim_t.tb()$$,
                  format('VALUES (%L::uuid, 0::bigint), (%L::uuid, 0::bigint)', :'ta', :'tb'),
                  'TRUNCATE zeroes every tenant''s count');
SET LOCAL ROLE pt_lim_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.items (v) SELECT 't' FROM generate_series(1, 5)$$, 'after TRUNCATE, A has all 5 again');
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'items'), pt_lim_t.real('pt_lim.items', :'ta'), 'count = rows of A (5)');

-------------------------------------------------------------------------------------------------
-- 7. usage()
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_lim_app;
SELECT results_eq($$SELECT resource, used, "limit", period, window_start, kind FROM tenant.usage()$$,
                  $$VALUES ('api_calls', 0::bigint, 100::bigint, 'hour', NULL::timestamptz, 'meter'),
                           ('items', 5::bigint, 5::bigint, 'none', NULL::timestamptz, 'rows')$$,
                  'usage(): the current tenant''s resources: a row quota and a metered limit');
SELECT throws_ok(format('SELECT * FROM tenant.usage(%L)', :'tb'), '42501', NULL,
                 'usage(): the application role cannot read another tenant''s usage');
SELECT lives_ok(format('SELECT * FROM tenant.usage(%L)', :'ta'), '... but may name the current one');
SELECT tenant.reset();
SELECT throws_ok($$SELECT * FROM tenant.usage()$$, '22004', NULL, 'usage(): no tenant set and none given');
RESET ROLE;
SELECT results_eq(format('SELECT resource, used, "limit", kind FROM tenant.usage(%L)', :'tb'),
                  $$VALUES ('items', 0::bigint, NULL::bigint, 'rows')$$,
                  'usage(B) for the superuser: a counted resource (0 since TRUNCATE), no limit (NULL)');
SELECT throws_ok(format('SELECT * FROM tenant.usage(%L)', gen_random_uuid()), 'TN001', NULL, 'usage(): an unknown tenant');
SET LOCAL ROLE pt_lim_admin;
SELECT results_eq(format('SELECT resource, used FROM tenant.usage(%L)', :'tc'),
                  $$VALUES ('api_calls', 0::bigint), ('items', 0::bigint)$$,
                  'usage(): a role with SELECT on tenant.row_counts reads any tenant''s');
RESET ROLE;
\if :stub_meters
SELECT results_eq(format('SELECT resource, used, "limit", period, window_start, kind FROM tenant.usage(%L)', :'tm'),
                  $$VALUES ('api_calls', 42::bigint, NULL::bigint, 'none', '2030-01-01 10:00:00+00'::timestamptz, 'meter'),
                           ('exports', 3::bigint, NULL::bigint, 'none', NULL::timestamptz, 'meter'),
                           ('items', 0::bigint, NULL::bigint, 'none', NULL::timestamptz, 'rows')$$,
                  'usage(): open meter windows from tenant._meter_usage() with their start (stand-in)');
SELECT tenant.set_tenant_limit(:'tm', 'api_calls', 50, 'hour');
SELECT results_eq(format('SELECT used, "limit", period FROM tenant.usage(%L) WHERE resource = %L', :'tm', 'api_calls'),
                  $$VALUES (42::bigint, 50::bigint, 'hour')$$, 'usage(): a meter with its limit');
\else
-- The real meters (shared memory): count 42 in the current hour for tenant M, then read usage().
SELECT tenant.set_tenant_limit(:'tm', 'usage_calls', 50, 'hour');
SELECT tenant.set(:'tm') IS NOT NULL AS entered_m;
SELECT tenant.meter('usage_calls', 42) AS left_after_42;
SELECT tenant.reset();
SELECT results_eq(format('SELECT used, "limit", period, kind FROM tenant.usage(%L) WHERE resource = %L', :'tm', 'usage_calls'),
                  $$VALUES (42::bigint, 50::bigint, 'hour', 'meter')$$, 'usage(): a meter with its limit and period');
SELECT is((SELECT window_start FROM tenant.usage(:'tm') WHERE resource = 'usage_calls'),
          date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
          'usage(): the meter''s window starts at the UTC hour');
\endif

-------------------------------------------------------------------------------------------------
-- 8. Partitioned tables
-------------------------------------------------------------------------------------------------
INSERT INTO pt_lim.events VALUES (:'ta', 1, 'before');
SET LOCAL ROLE pt_lim_owner;
SELECT is(tenant.limit_rows('pt_lim.events', 'events'), 1::bigint, 'limit_rows on a partitioned table counts its partitions');
RESET ROLE;
SELECT tenant.set_limit('pt-pro', 'events', 6);
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE 'pg_tenant_row_quota%' AND tgenabled = 'A'
             AND tgrelid IN ('pt_lim.events'::regclass, 'pt_lim.events_1'::regclass, 'pt_lim.events_2'::regclass)),
          12, 'the parent and every partition carry the four triggers');
SET LOCAL ROLE pt_lim_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.events (k) VALUES (1), (2)$$, 'rows through the parent, routed to two partitions');
SELECT lives_ok($$INSERT INTO pt_lim.events_2 (k) VALUES (2)$$, 'a row straight into a partition');
SELECT lives_ok($$UPDATE pt_lim.events SET k = 2 WHERE k = 1$$, 'rows moved to another partition (same tenant)');
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'events'), 4::bigint, 'parent and partition writes count once each: 4');
SET LOCAL ROLE pt_lim_owner;
CREATE TABLE pt_lim.events_3 PARTITION OF pt_lim.events FOR VALUES IN (3);
GRANT INSERT ON pt_lim.events_3 TO pt_lim_app;
CREATE TABLE pt_lim.events_4 (tenant_id uuid NOT NULL, k int NOT NULL, v text);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'pt_lim.events_3'::regclass
             AND tgname LIKE 'pg_tenant_row_quota%' AND tgenabled = 'A'), 4, 'a new partition gets the triggers');
INSERT INTO pt_lim.events_4 VALUES (:'ta', 4), (:'ta', 4);
SET LOCAL ROLE pt_lim_owner;
ALTER TABLE pt_lim.events ATTACH PARTITION pt_lim.events_4 FOR VALUES IN (4);
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'events'), 6::bigint, 'an attached table''s rows are added (6)');
SET LOCAL ROLE pt_lim_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT throws_ok($$INSERT INTO pt_lim.events_3 (k) VALUES (3)$$, 'TN006', NULL, 'the new partition enforces the limit');
RESET ROLE;
SET LOCAL ROLE pt_lim_owner;
ALTER TABLE pt_lim.events DETACH PARTITION pt_lim.events_4;
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'events'), 4::bigint, 'a detached partition''s rows are subtracted (4)');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'pt_lim.events_4'::regclass AND tgname LIKE 'pg_tenant_row_quota%'),
          0, '... and it loses the triggers');
INSERT INTO pt_lim.events VALUES (:'ta', 1, 'dropped with its partition');
SET LOCAL ROLE pt_lim_owner;
DROP TABLE pt_lim.events_1;
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'events'), 4::bigint, 'a dropped partition''s rows leave the count (recounted: 4)');
SET LOCAL ROLE pt_lim_owner;
TRUNCATE pt_lim.events_2;
RESET ROLE;
SELECT is(pt_lim_t.cnt(:'ta', 'events'), 0::bigint, 'TRUNCATE of one partition: recounted');
SET LOCAL ROLE pt_lim_owner;
-- (DISABLE TRIGGER USER would also disable the tenant key, which the DDL guard refuses first.)
SELECT throws_ok($$ALTER TABLE pt_lim.events_3 DISABLE TRIGGER pg_tenant_row_quota_insert$$, '55000', NULL,
                 'the owner cannot disable the quota triggers');
SELECT throws_ok($$DROP TRIGGER pg_tenant_row_quota_insert ON pt_lim.events_3$$, '55000', NULL,
                 'the owner cannot drop a quota trigger');
SELECT throws_ok($$ALTER TABLE pt_lim.events_3 ENABLE TRIGGER pg_tenant_row_quota_insert$$, '55000', NULL,
                 '... nor make it fire in origin mode only');
RESET ROLE;
SET LOCAL ROLE pt_lim_owner;
CREATE TABLE pt_lim.events_all (tenant_id uuid NOT NULL, k int NOT NULL, v text) PARTITION BY RANGE (k);
-- Protected, so that the DDL guard (0.6.0: no protected table under an unprotected parent) lets
-- the attach reach the quota rule.
SELECT count(*) FROM tenant.protect('pt_lim.events_all');
SELECT throws_ok($$ALTER TABLE pt_lim.events_all ATTACH PARTITION pt_lim.events FOR VALUES FROM (0) TO (100)$$, '55000', NULL,
                 'a counted table cannot become a partition of another table');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 9. Another tenant column name; tenants deleted; unlimit_rows
-------------------------------------------------------------------------------------------------
INSERT INTO pt_lim.orgs_docs VALUES (:'ta', 'd1'), (:'tb', 'd2'), (:'tb', 'd3');
SET LOCAL ROLE pt_lim_owner;
SELECT is(tenant.limit_rows('pt_lim.orgs_docs', 'docs'), 3::bigint, 'limit_rows with tenant column "org"');
RESET ROLE;
DELETE FROM pt_lim.orgs_docs WHERE v = 'd3';
INSERT INTO pt_lim.orgs_docs VALUES (:'ta', 'd4');
SELECT results_eq($$SELECT tenant_id, rows FROM tenant.row_counts WHERE resource = 'docs' ORDER BY tenant_id = pt_lim_t.tb()$$,
                  format('VALUES (%L::uuid, 2::bigint), (%L::uuid, 1::bigint)', :'ta', :'tb'),
                  'counts kept through the column "org"');
SELECT lives_ok(format('DELETE FROM tenant.tenants WHERE id = %L', :'tb'),
                'deleting a tenant deletes its rows (cascade) without tripping over its counters');
SELECT is((SELECT count(*)::int FROM tenant.row_counts WHERE tenant_id = :'tb'), 0, '... and its counters are gone');
SET LOCAL ROLE pt_lim_app;
SELECT throws_ok($$SELECT tenant.unlimit_rows('pt_lim.items')$$, '42501', NULL, 'unlimit_rows: not the owner');
RESET ROLE;
SET LOCAL ROLE pt_lim_owner;
SELECT throws_ok($$SELECT tenant.unlimit_rows('pt_lim.events_3')$$, '55000', NULL, 'unlimit_rows: a partition alone');
SELECT is(tenant.unlimit_rows('pt_lim.events'), true, 'unlimit_rows says true when the table was counted');
SELECT is(tenant.unlimit_rows('pt_lim.events'), false, '... and false when it was not');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE 'pg_tenant_row_quota%'
             AND tgrelid IN (SELECT relid FROM tenant.scoped_tables WHERE relid::text LIKE 'pt_lim.events%')),
          0, 'unlimit_rows drops the triggers of the table and its partitions');
SELECT is((SELECT count(*)::int FROM tenant.row_counts WHERE resource = 'events'), 0, '... and the counts of the resource');
SELECT is((SELECT count(*)::int FROM tenant.row_quotas WHERE resource = 'events'), 0, '... and the catalog rows');
SET LOCAL ROLE pt_lim_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT lives_ok($$INSERT INTO pt_lim.events (k) SELECT 3 FROM generate_series(1, 10)$$, 'an uncounted table takes any number of rows');
RESET ROLE;
DROP TABLE pt_lim.items;
SELECT is((SELECT count(*)::int FROM tenant.row_quotas WHERE resource = 'items'), 0, 'a dropped table leaves the catalog');
SELECT is((SELECT count(*)::int FROM tenant.row_counts WHERE resource = 'items'), 0, '... with its counts');

SELECT * FROM finish();
ROLLBACK;
