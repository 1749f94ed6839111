-- 1,000 tenants with predictable ids (…-0001000000001 to …-0001000001000) and 100,000 rows.
CREATE EXTENSION IF NOT EXISTS pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i))::uuid, 'Bench ' || i, 'bench-' || i
  FROM generate_series(1, 1000) AS i;
CREATE TABLE items (
    tenant_id uuid NOT NULL,
    id        bigint NOT NULL,
    payload   text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO items
SELECT ('00000000-0000-0000-0000-' || (100000000000 + 1 + (i % 1000)))::uuid, i, md5(i::text)
  FROM generate_series(1, 100000) AS i;
VACUUM ANALYZE items;
VACUUM ANALYZE tenant.tenants;
