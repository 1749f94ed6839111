-- 1,000 tenants (ids as in bench/context: …-100000000001 to …-100000001000) and two identical
-- protected tables; only items_quota counts its rows (resource "items", limit 10^15 on plan
-- free: checked on every statement, never reached).
\getenv password PGPASSWORD
CREATE EXTENSION IF NOT EXISTS pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i))::uuid, 'Bench ' || i, 'bench-' || i
  FROM generate_series(1, 1000) AS i;

CREATE TABLE items_plain (
    tenant_id  uuid,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    payload    text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE items_quota (
    tenant_id  uuid,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    payload    text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT tenant.protect('items_plain');
SELECT tenant.protect('items_quota');
SELECT tenant.limit_rows('items_quota', 'items');
SELECT tenant.set_limit('free', 'items', 1000000000000000);

-- (b): 100 single-row INSERTs, each its own statement (and, for items_quota, its own trigger run).
CREATE FUNCTION insert_loop_plain(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        INSERT INTO items_plain (payload) VALUES ('loop');
    END LOOP;
END $$;
CREATE FUNCTION insert_loop_quota(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        INSERT INTO items_quota (payload) VALUES ('loop');
    END LOOP;
END $$;

CREATE ROLE bench_app LOGIN PASSWORD :'password';
GRANT SELECT, INSERT ON items_plain, items_quota TO bench_app;
GRANT EXECUTE ON FUNCTION tenant.set(uuid) TO bench_app;
VACUUM ANALYZE tenant.tenants;
