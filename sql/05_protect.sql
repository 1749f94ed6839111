-- Policy generation: tenant.protect / policy_sql / unprotect / protect_all.
-- The DDL guard (06_guard) would refuse some of the half-protected states built here on purpose.
SET pg_tenant.enforce = off;
SELECT tenant.create('Proto A', 'proto-a') AS pa \gset
SELECT tenant.create('Proto B', 'proto-b') AS pb \gset

-- A helper that shows what protection a table has, from the catalogs.
CREATE FUNCTION public.protection(rel regclass, col name DEFAULT 'tenant_id') RETURNS TABLE (
    rls boolean, forced boolean, not_null boolean, default_expr text, tenant_key boolean, index_leads boolean,
    policies text) LANGUAGE sql AS $$
SELECT c.relrowsecurity, c.relforcerowsecurity, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                  AND t.tgfoid = 'tenant._tenant_key_check'::regproc AND t.tgenabled = 'O'),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum),
       (SELECT string_agg(p.polname || CASE WHEN p.polpermissive THEN ' permissive ' ELSE ' restrictive ' END
                          || p.polcmd::text || ' ' || pg_get_expr(p.polqual, p.polrelid) || ' / '
                          || pg_get_expr(p.polwithcheck, p.polrelid), '; ' ORDER BY p.polname)
          FROM pg_policy p WHERE p.polrelid = c.oid)
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = col
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.oid = rel
$$;

CREATE TABLE public.projects (id bigint PRIMARY KEY, tenant_id uuid, name text);
-- The DDL, for review in a migration, before anything happens.
SELECT tenant.policy_sql('public.projects');
SELECT * FROM protection('projects');
SELECT * FROM tenant.protect('public.projects');
SELECT * FROM protection('projects');
SELECT relid, tenant_column, parent FROM tenant.scoped_tables ORDER BY relid::text;

-- Idempotent: nothing left to do, nothing added by a second run.
SELECT tenant.policy_sql('projects') = '' AS nothing_to_do;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'projects'::regclass;
SELECT * FROM tenant.protect('projects');
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'projects'::regclass;
SELECT count(*) AS key_triggers FROM pg_trigger WHERE tgrelid = 'projects'::regclass AND tgname = 'tenant_key';
-- No foreign key to tenant.tenants: the tenant key does its work (src/policy/tenant_key.cpp).
SELECT count(*) AS foreign_keys FROM pg_constraint WHERE conrelid = 'projects'::regclass AND contype = 'f';

-- A changed generated policy is shown and repaired.
ALTER POLICY tenant_isolation_guard ON projects USING (true);
SELECT tenant.policy_sql('projects');
SELECT count(*) FROM tenant.protect('projects');
SELECT tenant.policy_sql('projects') = '' AS repaired;

-- Inserts need not name the column; reads see only the current tenant.
CREATE ROLE proto_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO proto_app;
GRANT EXECUTE ON FUNCTION tenant.set(text) TO proto_app;
SET ROLE proto_app;
BEGIN;
SELECT tenant.set('proto-a') IS NOT NULL AS entered;
INSERT INTO projects (id, name) VALUES (1, 'a1'), (2, 'a2');
COMMIT;
BEGIN;
SELECT tenant.set('proto-b') IS NOT NULL AS entered;
INSERT INTO projects (id, name) VALUES (3, 'b1');
SELECT id, name FROM projects ORDER BY id;
COMMIT;
SELECT count(*) AS without_context FROM projects;
SELECT error_of($$INSERT INTO projects (id, name) VALUES (4, 'nobody')$$);
RESET ROLE;
SELECT count(*) AS all_rows_as_superuser FROM projects;

-- The tenant condition is an index condition (EXPLAIN as the application role).
INSERT INTO tenant.tenants (name, slug) SELECT 'Filler ' || i, 'filler-' || i FROM generate_series(1, 40) AS i;
INSERT INTO projects (id, tenant_id, name)
SELECT 100 + i, t.id, 'p' || i FROM generate_series(1, 20000) AS i
  JOIN LATERAL (SELECT id FROM tenant.tenants ORDER BY slug OFFSET i % 42 LIMIT 1) t ON true;
ANALYZE projects;
SET ROLE proto_app;
BEGIN;
SELECT tenant.set('proto-a') IS NOT NULL AS entered;
EXPLAIN (COSTS OFF) SELECT * FROM projects;
EXPLAIN (COSTS OFF) SELECT count(*) FROM projects;
COMMIT;
RESET ROLE;

-- Refusals, each with its SQLSTATE.
CREATE VIEW projects_view AS SELECT * FROM projects;
CREATE MATERIALIZED VIEW projects_mat AS SELECT * FROM projects WITH NO DATA;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER proto_remote FOREIGN DATA WRAPPER postgres_fdw;
CREATE FOREIGN TABLE projects_remote (tenant_id uuid) SERVER proto_remote;
CREATE TABLE no_tenant (id int);
CREATE TABLE text_tenant (tenant_id text);
CREATE SEQUENCE proto_seq;
SELECT error_of($$SELECT tenant.protect('projects_view')$$);
SELECT error_of($$SELECT tenant.protect('projects_mat')$$);
SELECT error_of($$SELECT tenant.protect('projects_remote')$$);
SELECT error_of($$SELECT tenant.protect('proto_seq')$$);
SELECT error_of($$SELECT tenant.protect('pg_catalog.pg_class')$$);
SELECT error_of($$SELECT tenant.protect('tenant.tenants', 'id')$$);
SELECT error_of($$SELECT tenant.protect('no_tenant')$$);
SELECT error_of($$SELECT tenant.protect('text_tenant')$$);
SELECT error_of($$SELECT tenant.protect(NULL)$$);
SELECT error_of($$SELECT tenant.protect('projects', NULL)$$);
SELECT error_of($$SELECT tenant.protect('no_such_table')$$);
-- Only the owner may protect (and EXECUTE is not granted to PUBLIC).
CREATE ROLE proto_other;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name) TO proto_other;
SET ROLE proto_other;
SELECT error_of($$SELECT tenant.protect('projects')$$);
SELECT error_of($$SELECT tenant.protect('text_tenant')$$);
RESET ROLE;
SET ROLE proto_app;
SELECT error_of($$SELECT tenant.protect('projects')$$);
RESET ROLE;
-- Nothing was recorded by the refusals.
SELECT relid FROM tenant.scoped_tables ORDER BY relid::text;

-- Hostile names: quoted everywhere (mixed case, quotes, spaces, unicode, reserved words).
CREATE SCHEMA "My ""Schema""";
CREATE TABLE "My ""Schema"""."Select Ünïcode ""Table""" ("Tenant Id" uuid, "order" int);
SELECT tenant.policy_sql('"My ""Schema"""."Select Ünïcode ""Table"""', 'Tenant Id');
SELECT * FROM tenant.protect('"My ""Schema"""."Select Ünïcode ""Table"""', 'Tenant Id');
SELECT * FROM protection('"My ""Schema"""."Select Ünïcode ""Table"""', 'Tenant Id');
CREATE TABLE "select" ("user" uuid);
SELECT * FROM tenant.protect('"select"', 'user');
SELECT tenant.policy_sql('"select"', 'user') = '' AS nothing_to_do;

-- The caller's search_path cannot plant an operator: the policy uses pg_catalog's uuid =.
CREATE SCHEMA evil;
CREATE FUNCTION evil.always(uuid, uuid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.always);
CREATE TABLE evil_target (tenant_id uuid);
SET search_path = evil, public, pg_catalog;
SELECT count(*) FROM tenant.protect('evil_target');
RESET search_path;
SELECT count(*) AS policies_using_pg_catalog_uuid_eq
  FROM pg_policy p
 WHERE p.polrelid = 'evil_target'::regclass
   AND p.polqual::text LIKE '%:opno 2972 %' AND p.polwithcheck::text LIKE '%:opno 2972 %';

-- Partitions (present and future, attached) and inheritance children are protected too.
CREATE TABLE events (tenant_id uuid, at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    PARTITION BY LIST (v);
CREATE TABLE events_2025_v1 PARTITION OF events_2025 FOR VALUES IN (1);
SELECT tenant.policy_sql('events');
SELECT * FROM tenant.protect('events') ORDER BY 1::text;
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 (tenant_id uuid NOT NULL, at date NOT NULL, v int);
ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE notes (tenant_id uuid, body text);
SELECT count(*) FROM tenant.protect('notes');
CREATE TABLE notes_archived (archived_at date) INHERITS (notes);
CREATE TABLE notes_late (tenant_id uuid NOT NULL, body text);
ALTER TABLE notes_late INHERIT notes;
SELECT s.relid, s.parent, p.rls, p.forced, p.not_null, p.tenant_key, p.index_leads,
       tenant.policy_sql(s.relid) = '' AS complete
  FROM tenant.scoped_tables s, protection(s.relid, s.tenant_column) p
 WHERE s.relid::text LIKE 'events%' OR s.relid::text LIKE 'notes%'
 ORDER BY s.relid::text;

-- unprotect: a child alone is refused; the parent takes its descendants with it.
SELECT error_of($$SELECT tenant.unprotect('events_2026')$$);
SELECT * FROM tenant.unprotect('events') ORDER BY 1::text;
SELECT * FROM protection('events_2026');
SELECT count(*) AS events_left FROM tenant.scoped_tables WHERE relid::text LIKE 'events%';
SELECT count(*) AS unprotect_again FROM tenant.unprotect('events');

-- A dropped table leaves the catalog.
DROP TABLE notes CASCADE;
SELECT count(*) AS notes_left FROM tenant.scoped_tables WHERE relid::text LIKE 'notes%';

-- protect_all: every table with the column in a schema (children through their parents).
CREATE SCHEMA bulk;
CREATE TABLE bulk.a (tenant_id uuid);
CREATE TABLE bulk.b (tenant_id uuid, x int) PARTITION BY LIST (x);
CREATE TABLE bulk.b1 PARTITION OF bulk.b FOR VALUES IN (1);
CREATE TABLE bulk.shared_lookup (code text);
SELECT * FROM tenant.protect_all('bulk') ORDER BY 1::text;
SELECT count(*) AS again FROM tenant.protect_all('bulk');
SELECT error_of($$SELECT tenant.protect_all('no_such_schema')$$);

DROP SCHEMA bulk, evil, "My ""Schema""" CASCADE;
DROP TABLE projects, events, no_tenant, text_tenant, "select" CASCADE;
DROP FOREIGN TABLE projects_remote;
DROP SERVER proto_remote;
DROP OWNED BY proto_app, proto_other;
DROP ROLE proto_app;
DROP ROLE proto_other;
