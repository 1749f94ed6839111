-- Adversarial tenant isolation (tenant.protect, 0.2.0): with tenant A entered, neither the
-- application role nor the table owner (both non-superuser, no BYPASSRLS; superusers always
-- bypass RLS) can read, count, change, delete or infer tenant B's rows, through any path:
-- plain and filtered SELECT, joins, subqueries, CTEs (data-modifying too), aggregates, window
-- functions, leaky functions, errors only B's rows would raise, TID scans, pg_stats and
-- pg_stats_ext, parallel workers, cursors, prepared statements (generic plans) across tenant
-- switches, INSERT ... SELECT, ON CONFLICT, MERGE, RETURNING, partitions (two levels) and
-- inheritance children queried directly, views with and without security_invoker, SECURITY
-- DEFINER functions, row_security = off, a later permissive USING (true) policy, partitions and
-- children created, attached, inherited or detached after protect, look-alike policies replaced
-- by protect, quoted names (protect_all), and with no tenant at all. After every batch of writes
-- the superuser compares every row of both tenants with a snapshot taken before.
-- Sections: setup and what protect left; 1 app role in A; 2 owner in A; 3 app in B; 4 no tenant;
-- 5 a USING (true) policy; 6 later partitions and children; 7 protect_all with quoted names.
--
-- Data (A / B): items A 1 a1 10, 2 a2 20, 3 shared 30 / B 101 b1 1000, 102 b2 2000, 103 shared 3000
--               orders A 1->item 1, 2->item 2, 3->item 101 (B's) / B 101->item 101, 102->item 1 (A's)
--               skus (sku unique across tenants) A SKU-A / B SKU-B
--               events (range partitioned) 2023: A 1, B 101; 2024: A 2, 3, B 102
--               docs (inheritance) parent: A 1, B 101; child docs_archived: A 2, B 102
BEGIN;
SELECT plan(441);

SET LOCAL search_path = pt_iso, pt_iso_t, public;
SET LOCAL datestyle = 'ISO, YMD';

-------------------------------------------------------------------------------------------------
-- Setup (superuser)
-------------------------------------------------------------------------------------------------
CREATE ROLE pt_iso_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE pt_iso_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid),
                          tenant.set_session(text), tenant.reset() TO pt_iso_owner, pt_iso_app;

SELECT tenant.create('Isolation A', 'pt-iso-a') AS ta \gset
SELECT tenant.create('Isolation B', 'pt-iso-b') AS tb \gset

-- The owner's schema: tables, views, SECURITY DEFINER functions.
CREATE SCHEMA pt_iso AUTHORIZATION pt_iso_owner;
GRANT USAGE ON SCHEMA pt_iso TO pt_iso_app;
-- Test helpers, usable by both roles (owned by the superuser, SECURITY INVOKER).
CREATE SCHEMA pt_iso_t;
GRANT USAGE ON SCHEMA pt_iso_t TO pt_iso_owner, pt_iso_app;
-- Superuser-only checks.
CREATE SCHEMA pt_iso_chk;
REVOKE ALL ON SCHEMA pt_iso_chk FROM PUBLIC;

-- ta() and tb(): the two tenant ids as constants usable inside quoted test SQL.
SELECT format('CREATE FUNCTION pt_iso_t.ta() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
              format('SELECT %L::uuid', :'ta')) \gexec
SELECT format('CREATE FUNCTION pt_iso_t.tb() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
              format('SELECT %L::uuid', :'tb')) \gexec

-- Rows affected by a statement (run as the calling role).
CREATE FUNCTION pt_iso_t.affected(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- A leaky function: records every value it is shown. Cheap, so the planner would call it first
-- if row level security did not keep it behind the policy.
CREATE TABLE pt_iso_t.spied (seen text);
GRANT SELECT, INSERT, DELETE ON pt_iso_t.spied TO pt_iso_owner, pt_iso_app;
CREATE FUNCTION pt_iso_t.spy(v text) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 0.0001 AS $$
BEGIN
    INSERT INTO pt_iso_t.spied VALUES (v);
    RETURN true;
END $$;

-- Runs sql under EXPLAIN ANALYZE with a parallel plan forced and the leader kept out of the
-- scan, so parallel workers read every row; returns whether workers ran and the rows returned.
CREATE FUNCTION pt_iso_t.parallel_run(sql text, OUT workers_ran boolean, OUT rows_returned bigint)
    LANGUAGE plpgsql
    SET force_parallel_mode = on SET parallel_leader_participation = off
    SET parallel_setup_cost = 0 SET parallel_tuple_cost = 0 SET min_parallel_table_scan_size = 0
    SET max_parallel_workers_per_gather = 2 SET enable_indexscan = off SET enable_bitmapscan = off
    AS $$
DECLARE plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || sql INTO plan;
    workers_ran := coalesce((SELECT max((n->>'Workers Launched')::int) FROM jsonb_path_query(plan, 'strict $.**') n
                              WHERE jsonb_typeof(n) = 'object' AND n ? 'Workers Launched'), 0) > 0;
    rows_returned := (plan->0->'Plan'->>'Actual Rows')::bigint;
END $$;

-- The tables, created and owned by the (non-superuser) owner.
SET LOCAL ROLE pt_iso_owner;
CREATE TABLE pt_iso.items (tenant_id uuid, id int NOT NULL, code text NOT NULL, qty int NOT NULL,
                           PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, code));
CREATE TABLE pt_iso.orders (tenant_id uuid, id int NOT NULL, item_id int NOT NULL, amount int NOT NULL,
                            PRIMARY KEY (tenant_id, id));
CREATE TABLE pt_iso.skus (tenant_id uuid, sku text NOT NULL UNIQUE, price int NOT NULL);
CREATE TABLE pt_iso.events (tenant_id uuid, id int NOT NULL, created date NOT NULL, kind text NOT NULL)
    PARTITION BY RANGE (created);
CREATE TABLE pt_iso.events_2023 PARTITION OF pt_iso.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE pt_iso.events_2024 PARTITION OF pt_iso.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE pt_iso.docs (tenant_id uuid, id int NOT NULL, title text NOT NULL);
CREATE TABLE pt_iso.docs_archived (archived_on date NOT NULL DEFAULT '2020-01-01') INHERITS (pt_iso.docs);
RESET ROLE;

INSERT INTO items (tenant_id, id, code, qty) VALUES
    (ta(), 1, 'a1', 10), (ta(), 2, 'a2', 20), (ta(), 3, 'shared', 30),
    (tb(), 101, 'b1', 1000), (tb(), 102, 'b2', 2000), (tb(), 103, 'shared', 3000);
INSERT INTO orders (tenant_id, id, item_id, amount) VALUES
    (ta(), 1, 1, 5), (ta(), 2, 2, 7), (ta(), 3, 101, 9),
    (tb(), 101, 101, 500), (tb(), 102, 1, 600);
INSERT INTO skus (tenant_id, sku, price) VALUES (ta(), 'SKU-A', 1), (tb(), 'SKU-B', 2);
INSERT INTO events (tenant_id, id, created, kind) VALUES
    (ta(), 1, '2023-05-01', 'login'), (ta(), 2, '2024-05-01', 'login'), (ta(), 3, '2024-06-01', 'logout'),
    (tb(), 101, '2023-05-01', 'login'), (tb(), 102, '2024-05-01', 'login');
INSERT INTO docs (tenant_id, id, title) VALUES (ta(), 1, 'a-doc'), (tb(), 101, 'b-doc');
INSERT INTO docs_archived (tenant_id, id, title) VALUES (ta(), 2, 'a-old'), (tb(), 102, 'b-old');

-- The physical addresses of B's items, for a TID scan attempt.
SELECT format('CREATE FUNCTION pt_iso_t.b_item_ctids() RETURNS tid[] LANGUAGE sql IMMUTABLE AS %L',
              format('SELECT %L::tid[]', array_agg(ctid)))
  FROM items WHERE tenant_id = tb() \gexec

-- Protect (as superuser; EXECUTE is revoked from PUBLIC).
SELECT lives_ok($$SELECT tenant.protect('pt_iso.items')$$, 'protect items');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.orders')$$, 'protect orders');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.skus', 'tenant_id')$$, 'protect skus');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.events')$$, 'protect the partitioned table events');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.docs')$$, 'protect the inheritance parent docs');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.items')$$, 'protect items again (idempotent)');
SELECT lives_ok($$SELECT tenant.protect('pt_iso.events')$$, 'protect events again (idempotent)');

-- What protect left behind, on all eight relations (partitions and child included).
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
           WHERE c.relnamespace = 'pt_iso'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT (c.relrowsecurity AND c.relforcerowsecurity) ORDER BY 1),
    '{}'::text[], 'every table, partition and child has row level security enabled and forced');
SELECT results_eq(
    $$SELECT c.relname::text COLLATE "default", p.polname::text COLLATE "default", p.polpermissive, p.polcmd::text, p.polroles = '{0}',
             pg_get_expr(p.polqual, p.polrelid) COLLATE "default",
             pg_get_expr(p.polwithcheck, p.polrelid) COLLATE "default"
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
       WHERE c.relnamespace = 'pt_iso'::regnamespace
       ORDER BY c.relname COLLATE "C", p.polname COLLATE "C"$$,
    $$SELECT r.rel, p.pol, p.pol = 'tenant_isolation', '*', true,
             '(tenant_id = tenant.current_id())', '(tenant_id = tenant.current_id())'
        FROM unnest(ARRAY['docs', 'docs_archived', 'events', 'events_2023', 'events_2024',
                          'items', 'orders', 'skus']) AS r(rel),
             unnest(ARRAY['tenant_isolation', 'tenant_isolation_guard']) AS p(pol)
       ORDER BY r.rel COLLATE "C", p.pol COLLATE "C"$$,
    'each relation has exactly the permissive tenant_isolation and the restrictive tenant_isolation_guard, FOR ALL, USING and WITH CHECK tenant_id = current_id()');
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
           WHERE c.relnamespace = 'pt_iso'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT (a.attnotnull AND pg_get_expr(d.adbin, d.adrelid) IS NOT DISTINCT FROM 'tenant.current_id()')
           ORDER BY 1),
    '{}'::text[], 'every tenant_id column is NOT NULL DEFAULT tenant.current_id()');
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
           WHERE c.relnamespace = 'pt_iso'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                              WHERE t.tgrelid = c.oid AND t.tgenabled = 'O'
                                AND t.tgfoid = 'tenant._tenant_key_check'::regproc)
           ORDER BY 1),
    '{}'::text[], 'every table has the tenant key (trigger tenant_key[_<table>]), partitions by clone');
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
           WHERE c.relnamespace = 'pt_iso'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                                 ON a.attrelid = c.oid AND a.attnum = i.indkey[0] AND a.attname = 'tenant_id'
                              WHERE i.indrelid = c.oid)
           ORDER BY 1),
    '{}'::text[], 'every table has an index leading with tenant_id');

-- Views and SECURITY DEFINER functions, created by the owner after protect.
SET LOCAL ROLE pt_iso_owner;
CREATE VIEW pt_iso.items_definer_view AS SELECT tenant_id, id, code, qty FROM pt_iso.items;
CREATE VIEW pt_iso.items_invoker_view WITH (security_invoker = true)
    AS SELECT tenant_id, id, code, qty FROM pt_iso.items;
CREATE FUNCTION pt_iso.definer_count() RETURNS int LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT count(*)::int FROM pt_iso.items';
CREATE FUNCTION pt_iso.definer_codes() RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT code FROM pt_iso.items ORDER BY code';
CREATE FUNCTION pt_iso.definer_count_for(t uuid) RETURNS int LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT count(*)::int FROM pt_iso.items WHERE tenant_id = t';
CREATE FUNCTION pt_iso.definer_touch(t uuid) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE n bigint;
BEGIN
    UPDATE pt_iso.items SET qty = qty WHERE tenant_id = t;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
CREATE STATISTICS pt_iso.items_code_qty (mcv, ndistinct) ON code, qty FROM pt_iso.items;
RESET ROLE;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pt_iso TO pt_iso_app;

-- Statistics exist (the superuser sees them), so the pg_stats check below is not vacuous.
ANALYZE items, orders, skus, events, docs, docs_archived;
SELECT cmp_ok((SELECT count(*)::int FROM pg_stats WHERE schemaname = 'pt_iso'), '>', 0,
              'the superuser sees statistics of the protected tables');
SELECT cmp_ok((SELECT count(*)::int FROM pg_stats_ext WHERE schemaname = 'pt_iso' AND most_common_vals IS NOT NULL), '>', 0,
              'the superuser sees the extended statistics (most common values) of items');

-- Every row of both tenants, as the superuser sees it; the snapshot is compared after writes.
CREATE FUNCTION pt_iso_chk.all_rows(OUT rel text, OUT tenant text, OUT val text) RETURNS SETOF record
    LANGUAGE sql AS $$
    SELECT r.rel, CASE r.tenant_id WHEN pt_iso_t.ta() THEN 'A' WHEN pt_iso_t.tb() THEN 'B'
                                   ELSE coalesce(r.tenant_id::text, 'NULL') END, r.val
      FROM (SELECT 'items' AS rel, tenant_id, concat_ws('|', id, code, qty) AS val FROM pt_iso.items
            UNION ALL SELECT 'orders', tenant_id, concat_ws('|', id, item_id, amount) FROM pt_iso.orders
            UNION ALL SELECT 'skus', tenant_id, concat_ws('|', sku, price) FROM pt_iso.skus
            UNION ALL SELECT tableoid::regclass::text, tenant_id, concat_ws('|', id, created, kind) FROM pt_iso.events
            UNION ALL SELECT tableoid::regclass::text, tenant_id, concat_ws('|', id, title) FROM pt_iso.docs) r
$$;
CREATE TABLE pt_iso_chk.snapshot AS SELECT * FROM pt_iso_chk.all_rows();
SELECT is((SELECT count(*)::int FROM pt_iso_chk.snapshot WHERE tenant = 'B'), 10,
          'snapshot: B has 10 rows across the tables');
SELECT is((SELECT count(*)::int FROM pt_iso_chk.snapshot WHERE tenant = 'A'), 12,
          'snapshot: A has 12 rows across the tables');

-------------------------------------------------------------------------------------------------
-- The read suite: run as the caller with tenant A entered.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION pt_iso_t.read_suite(who text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    w text := who || ': ';
BEGIN
    RETURN NEXT is(current_user::text, 'pt_iso_' || who, w || 'running as the expected role');
    RETURN NEXT is(tenant.current_id(), ta(), w || 'tenant A is entered');

    -- Plain and filtered SELECT
    RETURN NEXT results_eq('SELECT id, code, qty FROM items ORDER BY id',
        $$VALUES (1, 'a1', 10), (2, 'a2', 20), (3, 'shared', 30)$$,
        w || 'SELECT without WHERE returns exactly A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM items), 3, w || 'count(*) counts only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE tenant_id = tb()), 0,
        w || 'WHERE tenant_id = B finds nothing');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE tenant_id IS DISTINCT FROM ta()), 0,
        w || 'WHERE tenant_id <> A finds nothing');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE id > 100 OR code IN ('b1', 'b2')), 0,
        w || 'B''s ids and codes find nothing');
    RETURN NEXT is((SELECT array_agg(qty) FROM items WHERE code = 'shared'), ARRAY[30],
        w || 'a code both tenants use returns A''s row only');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE ctid = ANY (b_item_ctids())), 0,
        w || 'a TID scan of B''s physical row addresses finds nothing');
    RETURN NEXT is((SELECT count(*)::int FROM items TABLESAMPLE SYSTEM (100)), 3,
        w || 'TABLESAMPLE sees only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM (SELECT 1 FROM items WHERE tenant_id = tb() FOR UPDATE) s), 0,
        w || 'SELECT ... FOR UPDATE reaches none of B''s rows');
    RETURN NEXT results_eq('SELECT sku FROM skus', ARRAY['SKU-A'], w || 'skus: only A''s row');

    -- Aggregates, GROUP BY, window functions
    RETURN NEXT results_eq(
        'SELECT count(*)::int, sum(qty)::int, min(qty), max(qty), count(DISTINCT tenant_id)::int FROM items',
        'VALUES (3, 60, 10, 30, 1)', w || 'aggregates see only A''s rows');
    RETURN NEXT results_eq('SELECT tenant_id, count(*)::int FROM items GROUP BY tenant_id',
        'SELECT ta(), 3', w || 'GROUP BY tenant_id yields A''s group only');
    RETURN NEXT results_eq(
        'SELECT code, count(*) OVER ()::int, sum(qty) OVER (PARTITION BY code)::int,
                rank() OVER (ORDER BY qty DESC)::int FROM items ORDER BY code',
        $$VALUES ('a1', 3, 10, 3), ('a2', 3, 20, 2), ('shared', 3, 30, 1)$$,
        w || 'window functions see only A''s rows');

    -- Joins
    RETURN NEXT results_eq(
        'SELECT o.id, i.code FROM orders o JOIN items i ON i.id = o.item_id ORDER BY o.id',
        $$VALUES (1, 'a1'), (2, 'a2')$$,
        w || 'join: A''s order on B''s item finds no item; B''s order on A''s item is invisible');
    RETURN NEXT results_eq(
        'SELECT o.id, i.id FROM orders o FULL JOIN items i ON i.id = o.item_id ORDER BY 1, 2',
        'VALUES (1, 1), (2, 2), (3, NULL::int), (NULL::int, 3)',
        w || 'full join shows only A''s orders and items');
    RETURN NEXT results_eq(
        'SELECT i.code, l.n FROM items i CROSS JOIN LATERAL
                (SELECT count(*)::int FROM orders o WHERE o.item_id = i.id) l(n) ORDER BY 1',
        $$VALUES ('a1', 1), ('a2', 1), ('shared', 0)$$,
        w || 'LATERAL subquery does not count B''s order on A''s item');

    -- Subqueries and CTEs
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE id IN (SELECT item_id FROM orders)), 2,
        w || 'IN (subquery) sees only A''s orders');
    RETURN NEXT is((SELECT count(*)::int FROM items i
                     WHERE EXISTS (SELECT 1 FROM orders o WHERE o.item_id = i.id AND o.amount >= 500)), 0,
        w || 'EXISTS cannot detect B''s order on A''s item');
    RETURN NEXT is((SELECT (SELECT max(amount) FROM orders)), 9, w || 'scalar subquery sees only A''s orders');
    RETURN NEXT is((WITH x AS MATERIALIZED (SELECT * FROM items) SELECT count(*)::int FROM x), 3,
        w || 'materialized CTE sees only A''s rows');
    RETURN NEXT is((WITH x AS (SELECT * FROM items WHERE tenant_id = tb()) SELECT count(*)::int FROM x), 0,
        w || 'CTE filtering on B finds nothing');
    RETURN NEXT is((WITH RECURSIVE r(id) AS (SELECT 1 UNION SELECT i.id FROM items i JOIN r ON i.id IN (r.id + 1, r.id + 100))
                    SELECT array_agg(id ORDER BY id) FROM r), ARRAY[1, 2, 3],
        w || 'recursive CTE walks only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM (SELECT tenant_id FROM items UNION ALL SELECT tenant_id FROM orders
                    UNION ALL SELECT tenant_id FROM skus UNION ALL SELECT tenant_id FROM events
                    UNION ALL SELECT tenant_id FROM docs) u WHERE tenant_id IS DISTINCT FROM ta()), 0,
        w || 'no protected table yields a row that is not A''s');

    -- Inference through side effects, errors and statistics
    DELETE FROM spied;
    PERFORM count(*) FROM items WHERE spy(tenant_id::text || ' ' || code);
    PERFORM count(*) FROM events WHERE spy(tenant_id::text || ' ' || id);
    PERFORM count(*) FROM docs WHERE spy(tenant_id::text || ' ' || title);
    RETURN NEXT is((SELECT count(*)::int FROM spied WHERE seen LIKE tb()::text || '%'), 0,
        w || 'a leaky function in WHERE is never shown B''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM spied WHERE seen LIKE ta()::text || '%'), 8,
        w || 'the leaky function did see A''s 8 rows (the check above is not vacuous)');
    RETURN NEXT lives_ok('SELECT count(*) FROM items WHERE 1 / (CASE WHEN tenant_id = tb() THEN 0 ELSE 1 END) = 1',
        w || 'an error only B''s rows would raise never fires (items)');
    RETURN NEXT lives_ok('SELECT count(*) FROM events WHERE 1 / (CASE WHEN tenant_id = tb() THEN 0 ELSE 1 END) = 1',
        w || 'an error only B''s rows would raise never fires (partitioned events)');
    RETURN NEXT lives_ok('SELECT count(*) FROM docs_archived WHERE 1 / (CASE WHEN tenant_id = tb() THEN 0 ELSE 1 END) = 1',
        w || 'an error only B''s rows would raise never fires (child docs_archived)');
    RETURN NEXT is((SELECT count(*)::int FROM pg_stats WHERE schemaname = 'pt_iso'), 0,
        w || 'pg_stats hides the statistics (common values, histograms) of protected tables');
    RETURN NEXT is((SELECT count(*)::int FROM pg_stats_ext WHERE schemaname = 'pt_iso'), 0,
        w || 'pg_stats_ext hides the extended statistics (multi-column common values) of protected tables');

    -- Parallel workers evaluate the policy with the leader's context
    RETURN NEXT is((SELECT row(workers_ran, rows_returned)::text FROM parallel_run('SELECT * FROM items')), '(t,3)',
        w || 'a parallel scan done by workers only returns A''s 3 rows (items)');
    RETURN NEXT is((SELECT row(workers_ran, rows_returned)::text FROM parallel_run('SELECT * FROM events')), '(t,3)',
        w || 'a parallel append done by workers only returns A''s 3 rows (partitioned events)');
    RETURN NEXT is((SELECT row(workers_ran, rows_returned)::text FROM parallel_run('SELECT * FROM docs')), '(t,2)',
        w || 'a parallel append done by workers only returns A''s 2 rows (inheritance tree)');

    -- Partitions
    RETURN NEXT results_eq('SELECT tableoid::regclass::text, id FROM events ORDER BY id',
        $$VALUES ('events_2023', 1), ('events_2024', 2), ('events_2024', 3)$$,
        w || 'partitioned table: only A''s rows, from both partitions');
    RETURN NEXT results_eq('SELECT id FROM events_2023 ORDER BY id', ARRAY[1],
        w || 'partition events_2023 queried directly: only A''s row');
    RETURN NEXT results_eq('SELECT id FROM events_2024 ORDER BY id', ARRAY[2, 3],
        w || 'partition events_2024 queried directly: only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM events_2024 WHERE tenant_id = tb() OR id = 102), 0,
        w || 'partition queried directly for B''s row finds nothing');

    -- Inheritance
    RETURN NEXT results_eq('SELECT id FROM docs ORDER BY id', ARRAY[1, 2],
        w || 'inheritance parent (with child rows): only A''s rows');
    RETURN NEXT results_eq('SELECT id FROM ONLY docs ORDER BY id', ARRAY[1],
        w || 'FROM ONLY parent: only A''s row');
    RETURN NEXT results_eq('SELECT id FROM docs_archived ORDER BY id', ARRAY[2],
        w || 'child table queried directly: only A''s row');
    RETURN NEXT is((SELECT count(*)::int FROM docs_archived WHERE tenant_id = tb() OR id = 102), 0,
        w || 'child queried directly for B''s row finds nothing');

    -- Views and SECURITY DEFINER functions owned by the table owner
    RETURN NEXT results_eq('SELECT code FROM items_definer_view ORDER BY code', ARRAY['a1', 'a2', 'shared'],
        w || 'view without security_invoker (runs as the owner): only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM items_definer_view WHERE tenant_id = tb()), 0,
        w || 'view without security_invoker, WHERE tenant_id = B: nothing');
    RETURN NEXT results_eq('SELECT code FROM items_invoker_view ORDER BY code', ARRAY['a1', 'a2', 'shared'],
        w || 'view with security_invoker: only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM items_invoker_view WHERE tenant_id = tb()), 0,
        w || 'view with security_invoker, WHERE tenant_id = B: nothing');
    RETURN NEXT is(definer_count(), 3, w || 'SECURITY DEFINER function owned by the table owner counts only A''s rows');
    RETURN NEXT results_eq('SELECT * FROM definer_codes()', ARRAY['a1', 'a2', 'shared'],
        w || 'SECURITY DEFINER function returns only A''s rows');
    RETURN NEXT is(definer_count_for(tb()), 0, w || 'SECURITY DEFINER function asked for B''s rows finds none');
END
$f$;

-------------------------------------------------------------------------------------------------
-- The write suite: run as the caller with tenant A entered. Leaves A's rows as they were.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION pt_iso_t.write_suite(who text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    w text := who || ': ';
BEGIN
    RETURN NEXT is(tenant.current_id(), ta(), w || 'tenant A is entered');

    -- INSERT rows of B
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (tb(), 900, ''w-b'', 1)',
        '42501', 'new row violates row-level security policy for table "items"',
        w || 'INSERT with B''s tenant_id is rejected (items)');
    RETURN NEXT throws_ok('INSERT INTO orders (tenant_id, id, item_id, amount) VALUES (tb(), 900, 101, 1)',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (orders)');
    RETURN NEXT throws_ok('INSERT INTO skus (tenant_id, sku, price) VALUES (tb(), ''SKU-W'', 1)',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (skus)');
    RETURN NEXT throws_ok('INSERT INTO events (tenant_id, id, created, kind) VALUES (tb(), 900, ''2024-07-01'', ''x'')',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (partitioned table, routed)');
    RETURN NEXT throws_ok('INSERT INTO events_2023 (tenant_id, id, created, kind) VALUES (tb(), 900, ''2023-07-01'', ''x'')',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (partition directly)');
    RETURN NEXT throws_ok('INSERT INTO docs (tenant_id, id, title) VALUES (tb(), 900, ''x'')',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (inheritance parent)');
    RETURN NEXT throws_ok('INSERT INTO docs_archived (tenant_id, id, title) VALUES (tb(), 900, ''x'')',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected (child directly)');
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (ta(), 901, ''w-a'', 1), (tb(), 902, ''w-b'', 1)',
        '42501', NULL, w || 'a multi-row INSERT with one B row is rejected');
    RETURN NEXT throws_ok('INSERT INTO items_definer_view (tenant_id, id, code, qty) VALUES (tb(), 903, ''w-b'', 1)',
        '42501', NULL, w || 'INSERT of a B row through the owner''s view is rejected');
    RETURN NEXT throws_ok('INSERT INTO items_invoker_view (tenant_id, id, code, qty) VALUES (tb(), 903, ''w-b'', 1)',
        '42501', NULL, w || 'INSERT of a B row through the security_invoker view is rejected');
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (gen_random_uuid(), 904, ''w-x'', 1)',
        '42501', NULL, w || 'INSERT with an unregistered tenant_id is rejected');

    -- UPDATE moving rows to B
    RETURN NEXT throws_ok('UPDATE items SET tenant_id = tb() WHERE id = 1',
        '42501', NULL, w || 'UPDATE moving A''s row to B is rejected (items)');
    RETURN NEXT throws_ok('UPDATE orders SET tenant_id = tb()',
        '42501', NULL, w || 'UPDATE moving A''s rows to B is rejected (orders)');
    RETURN NEXT throws_ok('UPDATE events SET tenant_id = tb(), created = ''2023-09-01'' WHERE id = 2',
        '42501', NULL, w || 'UPDATE moving A''s row to B and to another partition is rejected');
    RETURN NEXT throws_ok('UPDATE events_2024 SET tenant_id = tb() WHERE id = 3',
        '42501', NULL, w || 'UPDATE moving A''s row to B through the partition is rejected');
    RETURN NEXT throws_ok('UPDATE docs SET tenant_id = tb() WHERE id = 2',
        '42501', NULL, w || 'UPDATE through the parent moving a child row to B is rejected');
    RETURN NEXT throws_ok('UPDATE docs_archived SET tenant_id = tb()',
        '42501', NULL, w || 'UPDATE moving A''s child row to B is rejected');
    RETURN NEXT throws_ok('UPDATE items_definer_view SET tenant_id = tb() WHERE id = 1',
        '42501', NULL, w || 'UPDATE moving A''s row to B through the owner''s view is rejected');

    -- UPDATE of B's rows: nothing happens
    RETURN NEXT is(affected('UPDATE items SET qty = -1 WHERE tenant_id = tb()'), 0::bigint,
        w || 'UPDATE ... WHERE tenant_id = B affects 0 rows');
    RETURN NEXT is(affected('UPDATE items SET qty = -1 WHERE id > 100 OR code IN (''b1'', ''b2'')'), 0::bigint,
        w || 'UPDATE of B''s ids and codes affects 0 rows');
    RETURN NEXT is(affected('UPDATE items SET qty = qty'), 3::bigint,
        w || 'an unqualified UPDATE touches only A''s 3 rows');
    RETURN NEXT is(affected('UPDATE items SET qty = qty WHERE code = ''shared'''), 1::bigint,
        w || 'UPDATE of a code both tenants use touches A''s row only');
    RETURN NEXT is(affected('UPDATE events SET kind = kind'), 3::bigint,
        w || 'an unqualified UPDATE of the partitioned table touches only A''s 3 rows');
    RETURN NEXT is(affected('UPDATE events_2023 SET kind = ''x'' WHERE id = 101'), 0::bigint,
        w || 'UPDATE of B''s row through the partition affects 0 rows');
    RETURN NEXT is(affected('UPDATE docs SET title = ''x'' WHERE id IN (101, 102)'), 0::bigint,
        w || 'UPDATE of B''s rows through the inheritance parent affects 0 rows');
    RETURN NEXT is(affected('UPDATE docs_archived SET title = ''x'' WHERE id = 102'), 0::bigint,
        w || 'UPDATE of B''s child row directly affects 0 rows');
    RETURN NEXT is(affected('UPDATE skus SET price = 0 WHERE sku = ''SKU-B'''), 0::bigint,
        w || 'UPDATE of B''s sku affects 0 rows');
    RETURN NEXT is(affected('UPDATE items_definer_view SET qty = -1 WHERE tenant_id = tb()'), 0::bigint,
        w || 'UPDATE of B''s rows through the owner''s view affects 0 rows');
    RETURN NEXT is(affected('UPDATE items_invoker_view SET qty = -1 WHERE tenant_id = tb()'), 0::bigint,
        w || 'UPDATE of B''s rows through the security_invoker view affects 0 rows');
    RETURN NEXT is(affected('UPDATE orders o SET amount = o.amount FROM items i WHERE i.id = o.item_id'), 2::bigint,
        w || 'UPDATE ... FROM a join touches only A''s 2 orders on visible items');
    RETURN NEXT is(affected('UPDATE orders SET amount = -1 WHERE item_id = 1 AND amount = 600'), 0::bigint,
        w || 'UPDATE of B''s order on A''s item affects 0 rows');
    RETURN NEXT is(definer_touch(tb()), 0::bigint,
        w || 'SECURITY DEFINER function updating B''s rows affects 0 rows');

    -- DELETE of B's rows: nothing happens
    RETURN NEXT is(affected('DELETE FROM items WHERE tenant_id = tb()'), 0::bigint,
        w || 'DELETE ... WHERE tenant_id = B affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM items WHERE id > 100 OR code IN (''b1'', ''b2'')'), 0::bigint,
        w || 'DELETE of B''s ids and codes affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM orders WHERE id > 100'), 0::bigint,
        w || 'DELETE of B''s orders affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM orders o USING items i WHERE i.id = o.item_id AND i.tenant_id = tb()'), 0::bigint,
        w || 'DELETE ... USING B''s items affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM events WHERE id > 100'), 0::bigint,
        w || 'DELETE of B''s rows through the partitioned table affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM events_2024 WHERE id = 102'), 0::bigint,
        w || 'DELETE of B''s row through the partition affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM docs WHERE id > 100'), 0::bigint,
        w || 'DELETE of B''s rows through the inheritance parent affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM ONLY docs WHERE id = 101'), 0::bigint,
        w || 'DELETE FROM ONLY parent of B''s row affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM docs_archived WHERE id = 102'), 0::bigint,
        w || 'DELETE of B''s child row directly affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM skus WHERE sku = ''SKU-B'''), 0::bigint,
        w || 'DELETE of B''s sku affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM items_definer_view WHERE tenant_id = tb()'), 0::bigint,
        w || 'DELETE of B''s rows through the owner''s view affects 0 rows');

    -- RETURNING and data-modifying CTEs
    RETURN NEXT results_eq('WITH u AS (UPDATE items SET qty = qty RETURNING id) SELECT id FROM u ORDER BY id',
        ARRAY[1, 2, 3], w || 'UPDATE ... RETURNING returns only A''s rows');
    RETURN NEXT results_eq('DELETE FROM items WHERE tenant_id = tb() OR id > 100 RETURNING id, code',
        'SELECT 1, ''x'' WHERE false', w || 'DELETE ... RETURNING of B''s rows returns nothing');
    RETURN NEXT results_eq(
        'WITH d AS (DELETE FROM items WHERE tenant_id = tb() RETURNING id),
              u AS (UPDATE items SET qty = -1 WHERE code IN (''b1'', ''b2'') RETURNING id),
              o AS (UPDATE orders SET amount = -1 WHERE id > 100 RETURNING id),
              e AS (DELETE FROM events WHERE id > 100 RETURNING id)
         SELECT (SELECT count(*) FROM d)::int, (SELECT count(*) FROM u)::int,
                (SELECT count(*) FROM o)::int, (SELECT count(*) FROM e)::int',
        'VALUES (0, 0, 0, 0)', w || 'data-modifying CTEs aimed at B change 0 rows');
    RETURN NEXT throws_ok(
        'WITH moved AS (DELETE FROM items WHERE id = 1 RETURNING id, code, qty)
         INSERT INTO items (tenant_id, id, code, qty) SELECT tb(), id, code, qty FROM moved',
        '42501', NULL, w || 'a data-modifying CTE moving A''s row to B is rejected');
    RETURN NEXT results_eq('SELECT id, code, qty FROM items WHERE id = 1', $$VALUES (1, 'a1', 10)$$,
        w || '... and A''s row is still there');
    RETURN NEXT results_eq(
        'WITH src AS (SELECT * FROM items WHERE tenant_id = tb()),
              ins AS (INSERT INTO items (id, code, qty) SELECT id + 5000, code, qty FROM src RETURNING 1)
         SELECT count(*)::int FROM ins',
        ARRAY[0], w || 'a CTE copying B''s rows inserts nothing');

    -- INSERT of A's own rows: the default fills A's id
    RETURN NEXT results_eq('INSERT INTO items (id, code, qty) VALUES (500, ''w-default'', 5) RETURNING tenant_id',
        ARRAY[ta()], w || 'INSERT without tenant_id gets A''s id (items)');
    RETURN NEXT results_eq('INSERT INTO events (id, created, kind) VALUES (500, ''2024-08-01'', ''w'') RETURNING tenant_id, tableoid::regclass::text',
        $$SELECT ta(), 'events_2024'$$, w || 'INSERT without tenant_id gets A''s id (partitioned table)');
    RETURN NEXT results_eq('INSERT INTO docs_archived (id, title) VALUES (500, ''w'') RETURNING tenant_id',
        ARRAY[ta()], w || 'INSERT without tenant_id gets A''s id (inheritance child)');

    -- INSERT ... SELECT
    RETURN NEXT results_eq(
        'WITH c AS (INSERT INTO items (id, code, qty) SELECT id + 1000, code || ''-copy'', qty FROM items WHERE id < 100
                    RETURNING tenant_id, id) SELECT tenant_id, id FROM c ORDER BY id',
        'SELECT ta(), i FROM (VALUES (1001), (1002), (1003)) v(i)',
        w || 'INSERT ... SELECT copies only A''s rows, as A''s');
    RETURN NEXT throws_ok('INSERT INTO orders (tenant_id, id, item_id, amount) SELECT tb(), 900, id, 1 FROM items WHERE id = 1',
        '42501', NULL, w || 'INSERT ... SELECT producing B''s tenant_id is rejected');
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) SELECT tenant_id, id + 2000, code, qty FROM (VALUES (tb(), 1, ''x'', 1)) v(tenant_id, id, code, qty)',
        '42501', NULL, w || 'INSERT ... SELECT from VALUES carrying B''s tenant_id is rejected');
    RETURN NEXT is(affected('INSERT INTO orders (id, item_id, amount) SELECT id + 900, id, 1 FROM items WHERE tenant_id = tb()'), 0::bigint,
        w || 'INSERT ... SELECT from B''s rows inserts nothing');

    -- ON CONFLICT
    RETURN NEXT results_eq(
        'INSERT INTO items (id, code, qty) VALUES (600, ''b1'', 77)
         ON CONFLICT (tenant_id, code) DO UPDATE SET qty = EXCLUDED.qty RETURNING tenant_id, id, qty',
        'SELECT ta(), 600, 77', w || 'ON CONFLICT DO UPDATE on B''s code inserts A''s own row');
    RETURN NEXT results_eq(
        'INSERT INTO items (id, code, qty) VALUES (601, ''shared'', 30)
         ON CONFLICT (tenant_id, code) DO UPDATE SET qty = EXCLUDED.qty RETURNING tenant_id, id, qty',
        'SELECT ta(), 3, 30', w || 'ON CONFLICT on a code both tenants use updates A''s row (id 3), not B''s');
    RETURN NEXT throws_ok(
        'INSERT INTO items (tenant_id, id, code, qty) VALUES (tb(), 602, ''b1'', 1)
         ON CONFLICT (tenant_id, code) DO UPDATE SET qty = EXCLUDED.qty',
        '42501', NULL, w || 'ON CONFLICT DO UPDATE naming B''s exact key (tenant_id, code) is rejected');
    RETURN NEXT throws_ok(
        'INSERT INTO items (tenant_id, id, code, qty) VALUES (tb(), 602, ''b1'', 1) ON CONFLICT DO NOTHING',
        '42501', NULL, w || 'ON CONFLICT DO NOTHING naming B''s key is rejected');
    RETURN NEXT throws_ok(
        'INSERT INTO skus (sku, price) VALUES (''SKU-B'', 99) ON CONFLICT (sku) DO UPDATE SET price = EXCLUDED.price',
        '42501', NULL, w || 'ON CONFLICT DO UPDATE whose conflicting row is B''s (key unique across tenants) is rejected, not applied');
    RETURN NEXT throws_ok(
        'INSERT INTO skus (sku, price) VALUES (''SKU-A'', 1) ON CONFLICT (sku) DO UPDATE SET tenant_id = tb()',
        '42501', NULL, w || 'ON CONFLICT DO UPDATE moving A''s row to B is rejected');

    -- MERGE
    RETURN NEXT is(affected(
        'MERGE INTO items t USING (VALUES (''b2'', 55, 700)) s(code, qty, id) ON t.code = s.code
         WHEN MATCHED THEN UPDATE SET qty = s.qty
         WHEN NOT MATCHED THEN INSERT (id, code, qty) VALUES (s.id, s.code, s.qty)'), 1::bigint,
        w || 'MERGE on B''s code merges one row');
    RETURN NEXT results_eq('SELECT tenant_id, id, qty FROM items WHERE code = ''b2''', 'SELECT ta(), 700, 55',
        w || '... a new row of A''s: B''s row was not matched');
    RETURN NEXT is(affected(
        'MERGE INTO items t USING (VALUES (''shared'', 30)) s(code, qty) ON t.code = s.code
         WHEN MATCHED THEN UPDATE SET qty = s.qty'), 1::bigint,
        w || 'MERGE on a code both tenants use matches A''s row only');
    RETURN NEXT is(affected(
        'MERGE INTO items t USING (VALUES (101), (102), (103)) s(id) ON t.id = s.id WHEN MATCHED THEN DELETE'), 0::bigint,
        w || 'MERGE ... WHEN MATCHED THEN DELETE of B''s ids deletes nothing');
    RETURN NEXT throws_ok(
        'MERGE INTO items t USING (VALUES (''w-merge'')) s(code) ON t.code = s.code
         WHEN NOT MATCHED THEN INSERT (tenant_id, id, code, qty) VALUES (tb(), 701, s.code, 1)',
        '42501', NULL, w || 'MERGE inserting a B row is rejected');
    RETURN NEXT throws_ok(
        'MERGE INTO items t USING (VALUES (1)) s(id) ON t.id = s.id WHEN MATCHED THEN UPDATE SET tenant_id = tb()',
        '42501', NULL, w || 'MERGE moving A''s row to B is rejected');
    RETURN NEXT is(affected(
        'MERGE INTO events t USING (VALUES (101), (102)) s(id) ON t.id = s.id WHEN MATCHED THEN UPDATE SET kind = ''merged'''), 0::bigint,
        w || 'MERGE into the partitioned table matches none of B''s rows');
    RETURN NEXT is(affected(
        'MERGE INTO docs_archived t USING (VALUES (102)) s(id) ON t.id = s.id WHEN MATCHED THEN DELETE'), 0::bigint,
        w || 'MERGE into the child table matches none of B''s rows');

    -- Put A back as it was.
    RETURN NEXT results_eq('WITH d AS (DELETE FROM items WHERE id >= 500 RETURNING id) SELECT id FROM d ORDER BY id',
        ARRAY[500, 600, 700, 1001, 1002, 1003], w || 'cleanup deletes exactly the 6 items this suite added');
    RETURN NEXT results_eq('DELETE FROM events WHERE id >= 500 RETURNING id', ARRAY[500],
        w || 'cleanup deletes the event this suite added');
    RETURN NEXT results_eq('DELETE FROM docs WHERE id >= 500 RETURNING id', ARRAY[500],
        w || 'cleanup deletes the child doc this suite added, through the parent');
END
$f$;

-------------------------------------------------------------------------------------------------
-- No tenant entered: nothing visible, nothing writable.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION pt_iso_t.no_tenant_suite(who text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    w text := who || ', no tenant: ';
BEGIN
    RETURN NEXT ok(tenant.current_id() IS NULL, w || 'current_id() is NULL');
    RETURN NEXT results_eq(
        $$SELECT 'items', count(*)::int FROM items UNION ALL SELECT 'orders', count(*)::int FROM orders
          UNION ALL SELECT 'skus', count(*)::int FROM skus UNION ALL SELECT 'events', count(*)::int FROM events
          UNION ALL SELECT 'events_2023', count(*)::int FROM events_2023
          UNION ALL SELECT 'events_2024', count(*)::int FROM events_2024
          UNION ALL SELECT 'docs', count(*)::int FROM docs UNION ALL SELECT 'only docs', count(*)::int FROM ONLY docs
          UNION ALL SELECT 'docs_archived', count(*)::int FROM docs_archived
          UNION ALL SELECT 'items_definer_view', count(*)::int FROM items_definer_view
          UNION ALL SELECT 'items_invoker_view', count(*)::int FROM items_invoker_view
          UNION ALL SELECT 'definer_count()', definer_count()$$,
        $$VALUES ('items', 0), ('orders', 0), ('skus', 0), ('events', 0), ('events_2023', 0), ('events_2024', 0),
                 ('docs', 0), ('only docs', 0), ('docs_archived', 0), ('items_definer_view', 0),
                 ('items_invoker_view', 0), ('definer_count()', 0)$$,
        w || 'no row visible in any table, partition, child, view or definer function');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE tenant_id IS NULL OR tenant_id IN (ta(), tb())), 0,
        w || 'filtering on either tenant or on NULL finds nothing');

    RETURN NEXT throws_ok('INSERT INTO items (id, code, qty) VALUES (800, ''n'', 1)',
        '42501', NULL, w || 'INSERT without tenant_id is rejected');
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (ta(), 800, ''n'', 1)',
        '42501', NULL, w || 'INSERT with A''s tenant_id is rejected');
    RETURN NEXT throws_ok('INSERT INTO orders (tenant_id, id, item_id, amount) VALUES (tb(), 800, 1, 1)',
        '42501', NULL, w || 'INSERT with B''s tenant_id is rejected');
    RETURN NEXT throws_ok('INSERT INTO events (id, created, kind) VALUES (800, ''2024-02-01'', ''n'')',
        '42501', NULL, w || 'INSERT into the partitioned table is rejected');
    RETURN NEXT throws_ok('INSERT INTO events_2024 (tenant_id, id, created, kind) VALUES (ta(), 800, ''2024-02-01'', ''n'')',
        '42501', NULL, w || 'INSERT into a partition directly is rejected');
    RETURN NEXT throws_ok('INSERT INTO docs_archived (id, title) VALUES (800, ''n'')',
        '42501', NULL, w || 'INSERT into the child is rejected');
    RETURN NEXT throws_ok('INSERT INTO skus (sku, price) VALUES (''SKU-N'', 1) ON CONFLICT DO NOTHING',
        '42501', NULL, w || 'INSERT ... ON CONFLICT DO NOTHING is rejected');
    RETURN NEXT throws_ok('INSERT INTO items_definer_view (id, code, qty) VALUES (800, ''n'', 1)',
        '42501', NULL, w || 'INSERT through the owner''s view is rejected');
    RETURN NEXT throws_ok(
        'MERGE INTO items t USING (VALUES (''n'')) s(code) ON t.code = s.code
         WHEN NOT MATCHED THEN INSERT (id, code, qty) VALUES (800, s.code, 1)',
        '42501', NULL, w || 'MERGE ... INSERT is rejected');

    RETURN NEXT is(affected('UPDATE items SET qty = -1'), 0::bigint, w || 'UPDATE items affects 0 rows');
    RETURN NEXT is(affected('UPDATE events SET kind = ''n'''), 0::bigint, w || 'UPDATE of the partitioned table affects 0 rows');
    RETURN NEXT is(affected('UPDATE docs SET title = ''n'''), 0::bigint, w || 'UPDATE of the inheritance tree affects 0 rows');
    RETURN NEXT is(affected('UPDATE items_definer_view SET qty = -1'), 0::bigint, w || 'UPDATE through the owner''s view affects 0 rows');
    RETURN NEXT is(definer_touch(ta()), 0::bigint, w || 'SECURITY DEFINER function updating A''s rows affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM items'), 0::bigint, w || 'DELETE FROM items affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM orders'), 0::bigint, w || 'DELETE FROM orders affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM skus'), 0::bigint, w || 'DELETE FROM skus affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM events_2023'), 0::bigint, w || 'DELETE FROM a partition affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM docs'), 0::bigint, w || 'DELETE FROM the inheritance tree affects 0 rows');
    RETURN NEXT is(affected('MERGE INTO items t USING (VALUES (1), (101)) s(id) ON t.id = s.id WHEN MATCHED THEN DELETE'),
        0::bigint, w || 'MERGE ... DELETE affects 0 rows');
END
$f$;

-------------------------------------------------------------------------------------------------
-- With a permissive USING (true) policy added by the owner: the restrictive guard still holds.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION pt_iso_t.guard_suite(who text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    w text := who || ', with a USING (true) policy: ';
BEGIN
    RETURN NEXT is(tenant.current_id(), ta(), w || 'tenant A is entered');
    RETURN NEXT results_eq('SELECT code FROM items ORDER BY code', ARRAY['a1', 'a2', 'shared'],
        w || 'SELECT still returns only A''s rows');
    RETURN NEXT is((SELECT count(*)::int FROM items WHERE tenant_id = tb()), 0,
        w || 'WHERE tenant_id = B still finds nothing');
    RETURN NEXT results_eq('SELECT code FROM items_definer_view ORDER BY code', ARRAY['a1', 'a2', 'shared'],
        w || 'the owner''s view still returns only A''s rows');
    RETURN NEXT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (tb(), 900, ''g'', 1)',
        '42501', 'new row violates row-level security policy "tenant_isolation_guard" for table "items"',
        w || 'INSERT with B''s tenant_id is rejected by the restrictive guard');
    RETURN NEXT throws_ok('UPDATE items SET tenant_id = tb() WHERE id = 1',
        '42501', NULL, w || 'UPDATE moving A''s row to B is rejected');
    RETURN NEXT is(affected('UPDATE items SET qty = -1 WHERE tenant_id = tb()'), 0::bigint,
        w || 'UPDATE of B''s rows affects 0 rows');
    RETURN NEXT is(affected('DELETE FROM items WHERE tenant_id = tb()'), 0::bigint,
        w || 'DELETE of B''s rows affects 0 rows');
    RETURN NEXT results_eq('SELECT id FROM events ORDER BY id', ARRAY[1, 2, 3],
        w || 'partitioned table (open policy on partition events_2024): only A''s rows');
    RETURN NEXT results_eq('SELECT id FROM events_2024 ORDER BY id', ARRAY[2, 3],
        w || 'partition events_2024 with its own open policy, queried directly: only A''s rows');
    RETURN NEXT throws_ok('INSERT INTO events_2024 (tenant_id, id, created, kind) VALUES (tb(), 900, ''2024-03-01'', ''g'')',
        '42501', NULL, w || 'INSERT of a B row into the opened partition is rejected');
    RETURN NEXT is(affected('DELETE FROM events_2024 WHERE id = 102'), 0::bigint,
        w || 'DELETE of B''s row from the opened partition affects 0 rows');
    RETURN NEXT results_eq('SELECT id FROM docs ORDER BY id', ARRAY[1, 2],
        w || 'inheritance parent with an open policy: only A''s rows');
    RETURN NEXT results_eq('SELECT id FROM docs_archived ORDER BY id', ARRAY[2],
        w || 'child with an open SELECT policy: only A''s row');
    RETURN NEXT is(affected('UPDATE docs_archived SET title = ''g'' WHERE id = 102'), 0::bigint,
        w || 'UPDATE of B''s child row affects 0 rows');
END
$f$;

-------------------------------------------------------------------------------------------------
-- 1. Application role, tenant A
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT * FROM read_suite('app');
SELECT * FROM write_suite('app');

-- Cursors
DECLARE app_cur SCROLL CURSOR FOR SELECT code FROM items ORDER BY code;
SELECT results_eq('app_cur'::refcursor, ARRAY['a1', 'a2', 'shared'], 'app: a cursor fetches only A''s rows');
MOVE ABSOLUTE 0 IN app_cur;
SELECT results_eq('app_cur'::refcursor, ARRAY['a1', 'a2', 'shared'], 'app: the cursor fetched again after rewinding: still only A''s rows');
CLOSE app_cur;
DECLARE app_cur_b CURSOR FOR SELECT code FROM items WHERE tenant_id = tb();
SELECT results_eq('app_cur_b'::refcursor, ARRAY[]::text[], 'app: a cursor over WHERE tenant_id = B fetches nothing');
CLOSE app_cur_b;
DECLARE app_cur_tree CURSOR FOR SELECT id FROM events UNION ALL SELECT id FROM docs ORDER BY 1;
SELECT results_eq('app_cur_tree'::refcursor, ARRAY[1, 1, 2, 2, 3], 'app: a cursor over the partitioned and inheritance trees fetches only A''s rows');
CLOSE app_cur_tree;

-- Prepared statements, generic plans reused across tenant switches.
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE app_codes AS SELECT code FROM items ORDER BY code;
PREPARE app_count_for(uuid) AS SELECT count(*)::int FROM items WHERE tenant_id = $1;
PREPARE app_part AS SELECT id FROM events_2024 ORDER BY id;
PREPARE app_ins(int, text) AS INSERT INTO items (id, code, qty) VALUES ($1, $2, 1) RETURNING tenant_id;
PREPARE app_del(int) AS DELETE FROM items WHERE id >= $1 RETURNING id;
SELECT results_eq('app_codes', ARRAY['a1', 'a2', 'shared'], 'app: prepared SELECT under A returns A''s rows');
SELECT results_eq('app_part', ARRAY[2, 3], 'app: prepared SELECT of a partition under A returns A''s rows');
SELECT results_eq(format('EXECUTE app_count_for(%L)', :'tb'), ARRAY[0], 'app: prepared count of B''s rows under A is 0');
SELECT results_eq('EXECUTE app_ins(800, ''p-a'')', ARRAY[:'ta'::uuid], 'app: prepared INSERT under A inserts an A row');
SELECT tenant.set(:'tb') AS entered \gset
SELECT results_eq('app_codes', ARRAY['b1', 'b2', 'shared'], 'app: the same prepared SELECT after tenant.set(B) returns B''s rows only');
SELECT results_eq('app_part', ARRAY[102], 'app: the same prepared partition SELECT after the switch returns B''s row only');
SELECT results_eq(format('EXECUTE app_count_for(%L)', :'ta'), ARRAY[0], 'app: prepared count of A''s rows under B is 0');
SELECT results_eq('EXECUTE app_ins(801, ''p-b'')', ARRAY[:'tb'::uuid], 'app: the same prepared INSERT under B inserts a B row');
SELECT results_eq('EXECUTE app_del(800)', ARRAY[801], 'app: prepared DELETE under B deletes B''s new row only, not A''s');
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('app_codes', ARRAY['a1', 'a2', 'p-a', 'shared'], 'app: back in A, the prepared SELECT returns A''s rows only');
SELECT results_eq('EXECUTE app_del(800)', ARRAY[800], 'app: prepared DELETE under A deletes A''s new row only');
SELECT cmp_ok((SELECT generic_plans FROM pg_prepared_statements WHERE name = 'app_codes'), '>=', 3::bigint,
              'app: one generic plan served all three tenant contexts');
DEALLOCATE app_codes; DEALLOCATE app_count_for; DEALLOCATE app_part; DEALLOCATE app_ins; DEALLOCATE app_del;
SET LOCAL plan_cache_mode = auto;

-- Turning row security off is refused, not a way around it.
SET LOCAL row_security = off;
SELECT throws_ok('SELECT count(*) FROM items', '42501', NULL, 'app: with row_security = off, reading a protected table is refused');
SELECT throws_ok('SELECT count(*) FROM events_2024', '42501', NULL, 'app: with row_security = off, reading a partition is refused');
SET LOCAL row_security = on;

-- An unknown tenant cannot be entered; a raw SET of one makes queries fail, not return rows.
SELECT throws_ok(format('SELECT tenant.set(%L::uuid)', gen_random_uuid()), 'TN001', NULL, 'app: entering an unknown tenant fails with TN001');
SELECT is(tenant.current_id(), :'ta'::uuid, 'app: ... and the context is still A');
SELECT set_config('pg_tenant.tenant_id', gen_random_uuid()::text, true) AS raw \gset
SELECT throws_ok('SELECT count(*) FROM items', 'TN001', NULL, 'app: with a raw SET of an unregistered tenant id, reading fails with TN001');
SELECT throws_ok('DELETE FROM items', 'TN001', NULL, 'app: with a raw SET of an unregistered tenant id, deleting fails with TN001');
-- A session-wide B under a transaction-local A: A wins.
SELECT tenant.set_session(:'tb') AS entered \gset
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT code FROM items ORDER BY code', ARRAY['a1', 'a2', 'shared'], 'app: tenant.set(A) over set_session(B): only A''s rows');
RESET ROLE;

SELECT bag_eq($$SELECT * FROM pt_iso_chk.all_rows() WHERE tenant = 'B'$$,
              $$SELECT * FROM pt_iso_chk.snapshot WHERE tenant = 'B'$$,
              'superuser: after the app role''s attempts, every B row is unchanged');
SELECT bag_eq($$SELECT * FROM pt_iso_chk.all_rows() WHERE tenant <> 'B'$$,
              $$SELECT * FROM pt_iso_chk.snapshot WHERE tenant <> 'B'$$,
              'superuser: after the app role''s suite, A''s rows are as before and no other row exists');

-------------------------------------------------------------------------------------------------
-- 2. Table owner (non-superuser, no BYPASSRLS; FORCE ROW LEVEL SECURITY), tenant A
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_iso_owner;
SELECT tenant.set(:'ta') AS entered \gset
SELECT * FROM read_suite('owner');
SELECT * FROM write_suite('owner');

DECLARE owner_cur SCROLL CURSOR FOR SELECT code FROM items ORDER BY code;
SELECT results_eq('owner_cur'::refcursor, ARRAY['a1', 'a2', 'shared'], 'owner: a cursor fetches only A''s rows');
MOVE ABSOLUTE 0 IN owner_cur;
SELECT results_eq('owner_cur'::refcursor, ARRAY['a1', 'a2', 'shared'], 'owner: the cursor fetched again after rewinding: still only A''s rows');
CLOSE owner_cur;
DECLARE owner_cur_b CURSOR FOR SELECT code FROM items WHERE tenant_id = tb();
SELECT results_eq('owner_cur_b'::refcursor, ARRAY[]::text[], 'owner: a cursor over WHERE tenant_id = B fetches nothing');
CLOSE owner_cur_b;
DECLARE owner_cur_tree CURSOR FOR SELECT id FROM events UNION ALL SELECT id FROM docs ORDER BY 1;
SELECT results_eq('owner_cur_tree'::refcursor, ARRAY[1, 1, 2, 2, 3], 'owner: a cursor over the partitioned and inheritance trees fetches only A''s rows');
CLOSE owner_cur_tree;

SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE owner_codes AS SELECT code FROM items ORDER BY code;
PREPARE owner_count_for(uuid) AS SELECT count(*)::int FROM items WHERE tenant_id = $1;
PREPARE owner_part AS SELECT id FROM events_2024 ORDER BY id;
PREPARE owner_ins(int, text) AS INSERT INTO items (id, code, qty) VALUES ($1, $2, 1) RETURNING tenant_id;
PREPARE owner_del(int) AS DELETE FROM items WHERE id >= $1 RETURNING id;
SELECT results_eq('owner_codes', ARRAY['a1', 'a2', 'shared'], 'owner: prepared SELECT under A returns A''s rows');
SELECT results_eq('owner_part', ARRAY[2, 3], 'owner: prepared SELECT of a partition under A returns A''s rows');
SELECT results_eq(format('EXECUTE owner_count_for(%L)', :'tb'), ARRAY[0], 'owner: prepared count of B''s rows under A is 0');
SELECT results_eq('EXECUTE owner_ins(800, ''p-a'')', ARRAY[:'ta'::uuid], 'owner: prepared INSERT under A inserts an A row');
SELECT tenant.set(:'tb') AS entered \gset
SELECT results_eq('owner_codes', ARRAY['b1', 'b2', 'shared'], 'owner: the same prepared SELECT after tenant.set(B) returns B''s rows only');
SELECT results_eq('owner_part', ARRAY[102], 'owner: the same prepared partition SELECT after the switch returns B''s row only');
SELECT results_eq(format('EXECUTE owner_count_for(%L)', :'ta'), ARRAY[0], 'owner: prepared count of A''s rows under B is 0');
SELECT results_eq('EXECUTE owner_ins(801, ''p-b'')', ARRAY[:'tb'::uuid], 'owner: the same prepared INSERT under B inserts a B row');
SELECT results_eq('EXECUTE owner_del(800)', ARRAY[801], 'owner: prepared DELETE under B deletes B''s new row only, not A''s');
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('owner_codes', ARRAY['a1', 'a2', 'p-a', 'shared'], 'owner: back in A, the prepared SELECT returns A''s rows only');
SELECT results_eq('EXECUTE owner_del(800)', ARRAY[800], 'owner: prepared DELETE under A deletes A''s new row only');
SELECT cmp_ok((SELECT generic_plans FROM pg_prepared_statements WHERE name = 'owner_codes'), '>=', 3::bigint,
              'owner: one generic plan served all three tenant contexts');
DEALLOCATE owner_codes; DEALLOCATE owner_count_for; DEALLOCATE owner_part; DEALLOCATE owner_ins; DEALLOCATE owner_del;
SET LOCAL plan_cache_mode = auto;

SET LOCAL row_security = off;
SELECT throws_ok('SELECT count(*) FROM items', '42501', NULL, 'owner: with row_security = off, reading its own protected table is refused');
SELECT throws_ok('SELECT count(*) FROM docs_archived', '42501', NULL, 'owner: with row_security = off, reading a child is refused');
SET LOCAL row_security = on;
RESET ROLE;

SELECT bag_eq($$SELECT * FROM pt_iso_chk.all_rows() WHERE tenant = 'B'$$,
              $$SELECT * FROM pt_iso_chk.snapshot WHERE tenant = 'B'$$,
              'superuser: after the owner''s attempts, every B row is unchanged');
SELECT bag_eq($$SELECT * FROM pt_iso_chk.all_rows() WHERE tenant <> 'B'$$,
              $$SELECT * FROM pt_iso_chk.snapshot WHERE tenant <> 'B'$$,
              'superuser: after the owner''s suite, A''s rows are as before and no other row exists');

-------------------------------------------------------------------------------------------------
-- 3. Tenant B sees B's rows (the policies do not simply hide everything)
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'tb') AS entered \gset
SELECT results_eq('SELECT code FROM items ORDER BY code', ARRAY['b1', 'b2', 'shared'], 'app in B: items shows B''s rows');
SELECT results_eq('SELECT code FROM items_definer_view ORDER BY code', ARRAY['b1', 'b2', 'shared'], 'app in B: the owner''s view shows B''s rows');
SELECT results_eq('SELECT id FROM events_2023', ARRAY[101], 'app in B: partition events_2023 shows B''s row');
SELECT results_eq('SELECT id FROM docs ORDER BY id', ARRAY[101, 102], 'app in B: the inheritance tree shows B''s rows');
SELECT is(definer_count(), 3, 'app in B: the SECURITY DEFINER function counts B''s rows');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 4. No tenant (tenant.reset())
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_iso_app;
SELECT tenant.reset() AS cleared \gset
SELECT * FROM no_tenant_suite('app');
RESET ROLE;
SET LOCAL ROLE pt_iso_owner;
SELECT tenant.set(:'ta') AS entered \gset
SELECT tenant.reset() AS cleared \gset
SELECT * FROM no_tenant_suite('owner');
RESET ROLE;
SELECT bag_eq('SELECT * FROM pt_iso_chk.all_rows()', 'SELECT * FROM pt_iso_chk.snapshot',
              'superuser: with no tenant, nothing of either tenant changed');

-------------------------------------------------------------------------------------------------
-- 5. A later permissive USING (true) policy does not widen access (restrictive guard).
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE pt_iso_owner;
CREATE POLICY wide_open ON items AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true);
CREATE POLICY wide_open ON events_2024 FOR ALL USING (true) WITH CHECK (true);
CREATE POLICY wide_open ON docs FOR ALL USING (true) WITH CHECK (true);
CREATE POLICY wide_open_read ON docs_archived FOR SELECT USING (true);
SELECT tenant.set(:'ta') AS entered \gset
SELECT * FROM guard_suite('owner');
RESET ROLE;
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT * FROM guard_suite('app');
SELECT tenant.reset() AS cleared \gset
SELECT is((SELECT count(*)::int FROM items), 0, 'app, no tenant, with a USING (true) policy: no row visible');
SELECT throws_ok('INSERT INTO items (tenant_id, id, code, qty) VALUES (tb(), 900, ''g'', 1)', '42501', NULL,
                 'app, no tenant, with a USING (true) policy: INSERT is rejected');
RESET ROLE;
SELECT bag_eq('SELECT * FROM pt_iso_chk.all_rows()', 'SELECT * FROM pt_iso_chk.snapshot',
              'superuser: with the open policies, nothing of either tenant changed');

-------------------------------------------------------------------------------------------------
-- 6. Partitions and children added after protect are protected too.
-------------------------------------------------------------------------------------------------
CREATE TABLE pt_iso.events_2022 (tenant_id uuid NOT NULL, id int NOT NULL, created date NOT NULL, kind text NOT NULL);
ALTER TABLE pt_iso.events_2022 OWNER TO pt_iso_owner;
INSERT INTO events_2022 VALUES (ta(), 5, '2022-05-01', 'login'), (tb(), 104, '2022-05-01', 'login');
SET LOCAL ROLE pt_iso_owner;
SELECT lives_ok($$CREATE TABLE pt_iso.events_2025 PARTITION OF pt_iso.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')$$,
                'owner: CREATE TABLE ... PARTITION OF a protected table succeeds');
SELECT lives_ok($$ALTER TABLE pt_iso.events ATTACH PARTITION pt_iso.events_2022 FOR VALUES FROM ('2022-01-01') TO ('2023-01-01')$$,
                'owner: ATTACH PARTITION of a table holding rows of both tenants succeeds');
SELECT lives_ok($$CREATE TABLE pt_iso.docs_trash () INHERITS (pt_iso.docs)$$,
                'owner: CREATE TABLE ... INHERITS a protected table succeeds');
RESET ROLE;
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
           WHERE c.oid IN ('pt_iso.events_2025'::regclass, 'pt_iso.events_2022'::regclass, 'pt_iso.docs_trash'::regclass)
             AND c.relrowsecurity AND c.relforcerowsecurity
             AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                     AND ((p.polname = 'tenant_isolation' AND p.polpermissive)
                       OR (p.polname = 'tenant_isolation_guard' AND NOT p.polpermissive))) = 2
           ORDER BY 1),
    ARRAY['docs_trash', 'events_2022', 'events_2025'],
    'the new partition, the attached partition and the new child have forced RLS and both policies');
INSERT INTO events_2025 VALUES (ta(), 4, '2025-02-01', 'login'), (tb(), 103, '2025-02-01', 'login');
INSERT INTO docs_trash (tenant_id, id, title) VALUES (ta(), 3, 'a-trash'), (tb(), 103, 'b-trash');
GRANT SELECT, INSERT, UPDATE, DELETE ON events_2025, events_2022, docs_trash TO pt_iso_app;

SET LOCAL ROLE pt_iso_owner;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM events_2025', ARRAY[4], 'owner: the new partition queried directly: only A''s row');
SELECT results_eq('SELECT id FROM events_2022', ARRAY[5], 'owner: the attached partition queried directly: only A''s row');
SELECT results_eq('SELECT id FROM docs_trash', ARRAY[3], 'owner: the new child queried directly: only A''s row');
RESET ROLE;
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM events_2025', ARRAY[4], 'app: a partition created after protect, queried directly: only A''s row');
SELECT results_eq('SELECT id FROM events_2022', ARRAY[5], 'app: a partition attached after protect, queried directly: only A''s row');
SELECT results_eq('SELECT id FROM docs_trash', ARRAY[3], 'app: a child created after protect, queried directly: only A''s row');
SELECT results_eq('SELECT id FROM events ORDER BY id', ARRAY[1, 2, 3, 4, 5], 'app: the partitioned table with its new partitions: only A''s rows');
SELECT throws_ok('INSERT INTO events_2025 (tenant_id, id, created, kind) VALUES (tb(), 900, ''2025-03-01'', ''x'')',
                 '42501', NULL, 'app: INSERT of a B row into the new partition is rejected');
SELECT throws_ok('INSERT INTO docs_trash (tenant_id, id, title) VALUES (tb(), 900, ''x'')',
                 '42501', NULL, 'app: INSERT of a B row into the new child is rejected');
SELECT is(affected('DELETE FROM events_2022 WHERE id = 104'), 0::bigint, 'app: DELETE of B''s row in the attached partition affects 0 rows');
SELECT is(affected('UPDATE docs_trash SET title = ''x'' WHERE id = 103'), 0::bigint, 'app: UPDATE of B''s row in the new child affects 0 rows');
RESET ROLE;
SELECT results_eq($$SELECT rel, tenant, val FROM pt_iso_chk.all_rows()
                     WHERE rel IN ('events_2022', 'events_2025', 'docs_trash') ORDER BY 1, 2, 3$$,
                  $$VALUES ('docs_trash', 'A', '3|a-trash'), ('docs_trash', 'B', '103|b-trash'),
                           ('events_2022', 'A', '5|2022-05-01|login'), ('events_2022', 'B', '104|2022-05-01|login'),
                           ('events_2025', 'A', '4|2025-02-01|login'), ('events_2025', 'B', '103|2025-02-01|login')$$,
                  'superuser: the rows of the new tables are exactly as inserted');

-- A table made to inherit a protected parent later, and a partition detached later.
CREATE TABLE pt_iso.docs_legacy (tenant_id uuid NOT NULL, id int NOT NULL, title text NOT NULL);
ALTER TABLE pt_iso.docs_legacy OWNER TO pt_iso_owner;
INSERT INTO docs_legacy VALUES (ta(), 6, 'a-legacy'), (tb(), 106, 'b-legacy');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs_legacy TO pt_iso_app;
SET LOCAL ROLE pt_iso_owner;
SELECT lives_ok($$ALTER TABLE pt_iso.docs_legacy INHERIT pt_iso.docs$$,
                'owner: ALTER TABLE ... INHERIT a protected table succeeds');
SELECT lives_ok($$ALTER TABLE pt_iso.events DETACH PARTITION pt_iso.events_2023$$,
                'owner: DETACH PARTITION succeeds');
RESET ROLE;
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM docs_legacy', ARRAY[6], 'app: a table that inherits a protected parent later, queried directly: only A''s row');
SELECT results_eq('SELECT id FROM docs ORDER BY id', ARRAY[1, 2, 3, 6], 'app: the inheritance tree with its new children: only A''s rows');
SELECT is(affected('UPDATE docs_legacy SET title = ''x'' WHERE id = 106'), 0::bigint, 'app: UPDATE of B''s row in the newly inheriting table affects 0 rows');
SELECT results_eq('SELECT id FROM events_2023', ARRAY[1], 'app: a detached partition, queried directly: still only A''s row');
SELECT is(affected('DELETE FROM events_2023 WHERE id = 101'), 0::bigint, 'app: DELETE of B''s row in the detached partition affects 0 rows');
RESET ROLE;
SELECT results_eq($$SELECT rel, tenant, val FROM pt_iso_chk.all_rows() WHERE rel = 'docs_legacy' ORDER BY 1, 2, 3$$,
                  $$VALUES ('docs_legacy', 'A', '6|a-legacy'), ('docs_legacy', 'B', '106|b-legacy')$$,
                  'superuser: the newly inheriting table still holds both rows unchanged');
SELECT results_eq($$SELECT tenant_id = tb(), concat_ws('|', id, created, kind) FROM events_2023 ORDER BY id$$,
                  $$VALUES (false, '1|2023-05-01|login'), (true, '101|2023-05-01|login')$$,
                  'superuser: the detached partition still holds both rows unchanged');

-- Protect replaces look-alike policies (same names, wide open) and forces RLS that was only enabled.
SET LOCAL ROLE pt_iso_owner;
CREATE TABLE pt_iso.pre (tenant_id uuid NOT NULL, id int NOT NULL);
ALTER TABLE pt_iso.pre ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pt_iso.pre USING (true) WITH CHECK (true);
CREATE POLICY tenant_isolation_guard ON pt_iso.pre AS PERMISSIVE USING (true) WITH CHECK (true);
RESET ROLE;
INSERT INTO pt_iso.pre VALUES (ta(), 1), (tb(), 101);
GRANT SELECT, INSERT, UPDATE, DELETE ON pt_iso.pre TO pt_iso_app;
SELECT lives_ok($$SELECT tenant.protect('pt_iso.pre')$$,
                'protect a table that already has wide-open policies named tenant_isolation and tenant_isolation_guard');
SET LOCAL ROLE pt_iso_owner;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM pre', ARRAY[1], 'owner: after protect replaced the look-alike policies, only A''s row');
RESET ROLE;
SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM pre', ARRAY[1], 'app: after protect replaced the look-alike policies, only A''s row');
SELECT throws_ok('INSERT INTO pre (tenant_id, id) VALUES (tb(), 900)', '42501', NULL,
                 'app: after protect replaced the look-alike policies, INSERT with B''s tenant_id is rejected');
SELECT is(affected('DELETE FROM pre WHERE id = 101'), 0::bigint, 'app: after protect replaced the look-alike policies, DELETE of B''s row affects 0 rows');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 7. protect_all on a schema with quoted names, a quoted tenant column, two-level partitioning
-------------------------------------------------------------------------------------------------
CREATE SCHEMA "pt_iso Weird" AUTHORIZATION pt_iso_owner;
GRANT USAGE ON SCHEMA "pt_iso Weird" TO pt_iso_app;
SET LOCAL ROLE pt_iso_owner;
CREATE TABLE "pt_iso Weird"."Order Lines" ("Tenant Key" uuid, id int NOT NULL, note text NOT NULL);
CREATE TABLE "pt_iso Weird".metrics ("Tenant Key" uuid, id int NOT NULL, day date NOT NULL, kind text NOT NULL)
    PARTITION BY RANGE (day);
CREATE TABLE "pt_iso Weird".metrics_2024 PARTITION OF "pt_iso Weird".metrics
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (kind);
CREATE TABLE "pt_iso Weird".metrics_2024_a PARTITION OF "pt_iso Weird".metrics_2024 FOR VALUES IN ('a');
CREATE TABLE "pt_iso Weird".metrics_2024_b PARTITION OF "pt_iso Weird".metrics_2024 FOR VALUES IN ('b');
RESET ROLE;
INSERT INTO "pt_iso Weird"."Order Lines" VALUES (ta(), 1, 'a'), (tb(), 101, 'b');
INSERT INTO "pt_iso Weird".metrics VALUES (ta(), 1, '2024-02-01', 'a'), (ta(), 2, '2024-02-01', 'b'),
                                          (tb(), 101, '2024-02-01', 'a'), (tb(), 102, '2024-02-01', 'b');
SELECT lives_ok($$SELECT tenant.protect_all('pt_iso Weird', 'Tenant Key')$$,
                'protect_all of a schema with a quoted name, on a quoted tenant column');
SELECT is(
    ARRAY(SELECT c.relname::text FROM pg_class c
           WHERE c.relnamespace = '"pt_iso Weird"'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                      AND (SELECT count(*) FROM pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname IN ('tenant_isolation', 'tenant_isolation_guard')
                              AND pg_get_expr(p.polqual, p.polrelid) = '("Tenant Key" = tenant.current_id())'
                              AND pg_get_expr(p.polwithcheck, p.polrelid) = '("Tenant Key" = tenant.current_id())') = 2)
           ORDER BY 1),
    '{}'::text[], 'every table and partition at both levels has forced RLS and both policies on "Tenant Key"');
SET LOCAL ROLE pt_iso_owner;
SELECT lives_ok($$CREATE TABLE "pt_iso Weird".metrics_2024_c PARTITION OF "pt_iso Weird".metrics_2024 FOR VALUES IN ('c')$$,
                'owner: a new partition of a sub-partitioned partition succeeds');
RESET ROLE;
INSERT INTO "pt_iso Weird".metrics VALUES (ta(), 3, '2024-02-01', 'c'), (tb(), 103, '2024-02-01', 'c');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "pt_iso Weird" TO pt_iso_app;

SET LOCAL ROLE pt_iso_app;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM "pt_iso Weird"."Order Lines"', ARRAY[1], 'app: quoted table and column: only A''s row');
SELECT throws_ok('INSERT INTO "pt_iso Weird"."Order Lines" ("Tenant Key", id, note) VALUES (tb(), 900, ''x'')',
                 '42501', NULL, 'app: quoted table and column: INSERT with B''s tenant is rejected');
SELECT results_eq('INSERT INTO "pt_iso Weird"."Order Lines" (id, note) VALUES (2, ''x'') RETURNING "Tenant Key"',
                  ARRAY[:'ta'::uuid], 'app: quoted table and column: INSERT without the tenant column gets A''s id');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics ORDER BY id', ARRAY[1, 2, 3], 'app: two-level partitioned table: only A''s rows');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics_2024 ORDER BY id', ARRAY[1, 2, 3], 'app: the partitioned partition queried directly: only A''s rows');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics_2024_a', ARRAY[1], 'app: a leaf partition queried directly: only A''s row');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics_2024_b', ARRAY[2], 'app: the other leaf queried directly: only A''s row');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics_2024_c', ARRAY[3], 'app: a leaf added after protect_all, queried directly: only A''s row');
SELECT throws_ok('INSERT INTO "pt_iso Weird".metrics_2024_b ("Tenant Key", id, day, kind) VALUES (tb(), 900, ''2024-03-01'', ''b'')',
                 '42501', NULL, 'app: INSERT of a B row into a leaf directly is rejected');
SELECT is(affected('UPDATE "pt_iso Weird".metrics_2024 SET id = id WHERE id > 100'), 0::bigint,
          'app: UPDATE of B''s rows through the mid-level partition affects 0 rows');
SELECT is(affected('DELETE FROM "pt_iso Weird".metrics_2024_c WHERE id = 103'), 0::bigint,
          'app: DELETE of B''s row in the new leaf affects 0 rows');
RESET ROLE;
SET LOCAL ROLE pt_iso_owner;
SELECT tenant.set(:'ta') AS entered \gset
SELECT results_eq('SELECT id FROM "pt_iso Weird"."Order Lines" ORDER BY id', ARRAY[1, 2], 'owner: quoted table and column: only A''s rows');
SELECT results_eq('SELECT id FROM "pt_iso Weird".metrics_2024_c', ARRAY[3], 'owner: the new leaf queried directly: only A''s row');
RESET ROLE;
SELECT results_eq(
    $$SELECT tableoid::regclass::text, id FROM "pt_iso Weird"."Order Lines" WHERE "Tenant Key" = tb()
      UNION ALL SELECT tableoid::regclass::text, id FROM "pt_iso Weird".metrics WHERE "Tenant Key" = tb() ORDER BY 2$$,
    $$VALUES ('"pt_iso Weird"."Order Lines"', 101), ('"pt_iso Weird".metrics_2024_a', 101),
             ('"pt_iso Weird".metrics_2024_b', 102), ('"pt_iso Weird".metrics_2024_c', 103)$$,
    'superuser: B''s rows in the quoted schema are all there, unchanged');

SELECT * FROM finish();
ROLLBACK;
