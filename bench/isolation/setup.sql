-- 1,000 tenants (ids as in bench/context: …-100000000001 to …-100000001000) and 1,000,000 rows,
-- 1,000 per tenant, interleaved as they would arrive over time: id i belongs to tenant
-- 1 + (i - 1) % 1000 and was created at 2024-01-01 + i * 30 s.
--   items              tenant.protect('items'): the generated policies (variants *_protect), and,
--                      read by a BYPASSRLS role, no RLS at all (variants *_no_rls);
--   items_handwritten  an identical copy with the common hand-written policy on a custom
--                      setting (variants *_handwritten).
-- Roles: bench_app (the application: no BYPASSRLS) and bench_bypass (BYPASSRLS); both log in
-- with the cluster's password (pg_virtualenv connects over TCP with scram).
\getenv password PGPASSWORD
CREATE EXTENSION IF NOT EXISTS pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i))::uuid, 'Bench ' || i, 'bench-' || i
  FROM generate_series(1, 1000) AS i;

CREATE TABLE items (
    id          bigint NOT NULL,
    tenant_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    amount      numeric(12,2) NOT NULL,
    payload     text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX items_tenant_created_at ON items (tenant_id, created_at);
INSERT INTO items
SELECT i, ('00000000-0000-0000-0000-' || (100000000000 + 1 + (i - 1) % 1000))::uuid,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '30 seconds',
       (i::bigint * 7919 % 100000) / 100.0, md5(i::text)
  FROM generate_series(1, 1000000) AS i;
SELECT tenant.protect('items');

-- The copy: same columns, same indexes (whatever tenant.protect added too), same rows in the
-- same physical order; then the policy most applications write by hand.
CREATE TABLE items_handwritten (LIKE items INCLUDING INDEXES);
INSERT INTO items_handwritten SELECT * FROM items ORDER BY id;
ALTER TABLE items_handwritten ENABLE ROW LEVEL SECURITY;
ALTER TABLE items_handwritten FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON items_handwritten
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid);

-- Both tables' indexes built the same way (in bulk), then statistics and the visibility map.
REINDEX TABLE items;
REINDEX TABLE items_handwritten;
VACUUM ANALYZE items;
VACUUM ANALYZE items_handwritten;
VACUUM ANALYZE tenant.tenants;
-- Everything in shared buffers (shared_buffers=1GB, see variants) before the first round, so
-- that no variant pays for warming up the cache.
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT pg_prewarm(c.oid) FROM pg_class c
 WHERE c.oid IN ('items'::regclass, 'items_handwritten'::regclass)
    OR c.oid IN (SELECT indexrelid FROM pg_index
                  WHERE indrelid IN ('items'::regclass, 'items_handwritten'::regclass));

CREATE ROLE bench_app LOGIN PASSWORD :'password';
CREATE ROLE bench_bypass LOGIN BYPASSRLS PASSWORD :'password';
GRANT SELECT ON items, items_handwritten TO bench_app, bench_bypass;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset() TO bench_app;
