-- Run by bench/run.sh after setup.sql, its output on stderr: each query's plan (EXPLAIN ANALYZE)
-- as its variant runs it, for tenant 42, and a check that stops the run unless the tenant filter
-- (explicit or from a policy) is an index condition, without a sequential scan.
\pset tuples_only on
\pset format unaligned
CREATE FUNCTION pg_temp.plan(variant text, query text) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE
    line text;
    whole text := '';
BEGIN
    RETURN NEXT format('--- %s (as %s): %s', variant, current_user, query);
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) ' || query LOOP
        whole := whole || line || E'\n';
        RETURN NEXT line;
    END LOOP;
    IF whole !~ 'Index Cond: \(+tenant_id = ' OR whole ~ 'Seq Scan' THEN
        RAISE EXCEPTION '%: the tenant filter is not an index condition', variant;
    END IF;
END
$$;

SELECT format('%s: %s', c.oid::regclass, pg_size_pretty(pg_relation_size(c.oid))) FROM pg_class c
 WHERE c.relname LIKE 'items%' AND c.relkind IN ('r', 'i') ORDER BY c.relname;

SET ROLE bench_bypass;
BEGIN;
SET LOCAL app.current_tenant_id = '00000000-0000-0000-0000-100000000042';
SELECT pg_temp.plan('point_no_rls', $$SELECT created_at, amount, payload FROM items WHERE tenant_id = '00000000-0000-0000-0000-100000000042' AND id = 500042$$);
SELECT pg_temp.plan('range_no_rls', $$SELECT id, created_at, amount, payload FROM items WHERE tenant_id = '00000000-0000-0000-0000-100000000042' AND created_at >= to_timestamp(1717000000) AND created_at < to_timestamp(1717000000 + 3000000) ORDER BY created_at$$);
SELECT pg_temp.plan('aggregate_no_rls', $$SELECT count(*), sum(amount) FROM items WHERE tenant_id = '00000000-0000-0000-0000-100000000042'$$);
COMMIT;

SET ROLE bench_app;
BEGIN;
SELECT tenant.set('00000000-0000-0000-0000-100000000042'::uuid) \g /dev/null
SELECT pg_temp.plan('point_protect', $$SELECT created_at, amount, payload FROM items WHERE id = 500042$$);
SELECT pg_temp.plan('range_protect', $$SELECT id, created_at, amount, payload FROM items WHERE created_at >= to_timestamp(1717000000) AND created_at < to_timestamp(1717000000 + 3000000) ORDER BY created_at$$);
SELECT pg_temp.plan('aggregate_protect', $$SELECT count(*), sum(amount) FROM items$$);
COMMIT;

BEGIN;
SET LOCAL app.current_tenant_id = '00000000-0000-0000-0000-100000000042';
SELECT pg_temp.plan('point_handwritten', $$SELECT created_at, amount, payload FROM items_handwritten WHERE id = 500042$$);
SELECT pg_temp.plan('range_handwritten', $$SELECT id, created_at, amount, payload FROM items_handwritten WHERE created_at >= to_timestamp(1717000000) AND created_at < to_timestamp(1717000000 + 3000000) ORDER BY created_at$$);
SELECT pg_temp.plan('aggregate_handwritten', $$SELECT count(*), sum(amount) FROM items_handwritten$$);
COMMIT;
RESET ROLE;
