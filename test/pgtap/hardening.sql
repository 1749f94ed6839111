-- Hardening (0.6.0): the guard's side doors, as the owner of the tables (a non-superuser) would
-- try them, and what the audit reports of the same holes when they already exist.
BEGIN;
SELECT plan(45);

CREATE ROLE hz_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT CREATE ON SCHEMA public TO hz_owner;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name) TO hz_owner;
CREATE SCHEMA hz AUTHORIZATION hz_owner;               -- not guarded
CREATE SCHEMA hz_src AUTHORIZATION hz_owner;           -- not guarded, renamed to a guarded name below
SET LOCAL pg_tenant.guarded_schemas = 'public, hz_target';
SELECT tenant.create('Hardening A', 'hz-a') AS ta \gset

CREATE FUNCTION pg_temp.rules(object text) RETURNS text[] LANGUAGE sql AS
    $$ SELECT coalesce(array_agg(rule ORDER BY rule), '{}') FROM tenant.audit() a WHERE a.object = $1 $$;
\ir include/err.sql

SET LOCAL ROLE hz_owner;
CREATE TABLE public.hz_items (tenant_id uuid NOT NULL, id int, note text);
SELECT tenant.protect('public.hz_items');
CREATE TABLE public.hz_other (tenant_id uuid NOT NULL, id int);
SELECT tenant.protect('public.hz_other');

-------------------------------------------------------------------------------------------------
-- 1. A protected table under an unprotected parent (any schema)
-------------------------------------------------------------------------------------------------
CREATE TABLE hz.plain_parent (tenant_id uuid, id int, note text);
SELECT throws_ok($$ALTER TABLE public.hz_items INHERIT hz.plain_parent$$, 'TN005', NULL,
                 'a protected table cannot inherit from an unprotected parent');
CREATE TABLE hz.thin (id int);
SELECT throws_ok($$ALTER TABLE public.hz_items INHERIT hz.thin$$, 'TN005', NULL,
                 '... nor from one with only some of its columns');
CREATE TABLE hz.plain_parted (tenant_id uuid NOT NULL, id int) PARTITION BY LIST (id);
SELECT throws_ok($$ALTER TABLE hz.plain_parted ATTACH PARTITION public.hz_other FOR VALUES IN (1)$$, 'TN005', NULL,
                 'a protected table cannot become a partition of an unprotected table');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhrelid IN ('public.hz_items'::regclass, 'public.hz_other'::regclass)),
          0, 'nothing was linked');
-- Under a protected parent it is fine (the parent's policies apply).
CREATE TABLE public.hz_parent (tenant_id uuid NOT NULL, id int, note text);
SELECT tenant.protect('public.hz_parent');
SELECT lives_ok($$ALTER TABLE public.hz_items INHERIT public.hz_parent$$, 'a protected table may inherit from a protected parent');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 2. A guarded schema entered sideways: every way a table comes to be there without the column
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE hz_owner;
CREATE TABLE hz.moving (id int);
SELECT throws_ok($$ALTER TABLE hz.moving SET SCHEMA public$$, 'TN004', NULL,
                 'ALTER TABLE ... SET SCHEMA into a guarded schema');
CREATE TABLE hz_src.stowaway (id int);
RESET ROLE;
SELECT throws_ok($$ALTER SCHEMA hz_src RENAME TO hz_target$$, 'TN004', NULL,
                 'ALTER SCHEMA ... RENAME TO a guarded name');
SELECT is((SELECT count(*)::int FROM pg_namespace WHERE nspname = 'hz_target'), 0, '... and the schema keeps its name');
SET LOCAL ROLE hz_owner;
CREATE TABLE hz.base (id int);
CREATE TABLE public.hz_kid () INHERITS (hz.base);
SELECT throws_ok($$ALTER TABLE public.hz_kid NO INHERIT hz.base$$, 'TN004', NULL,
                 'a child without the column leaving its unguarded parent (NO INHERIT)');
CREATE TABLE hz.pbase (id int) PARTITION BY RANGE (id);
CREATE TABLE public.hz_p1 PARTITION OF hz.pbase FOR VALUES FROM (0) TO (10);
SELECT throws_ok($$ALTER TABLE hz.pbase DETACH PARTITION public.hz_p1$$, 'TN004', NULL,
                 '... and a partition detached');
CREATE TABLE public.hz_unprotected (tenant_id uuid NOT NULL, id int);
SELECT throws_ok($$ALTER TABLE public.hz_unprotected DROP COLUMN tenant_id$$, 'TN004', NULL,
                 'dropping the tenant column of a table not protected yet');
SELECT throws_ok($$ALTER TABLE public.hz_unprotected RENAME COLUMN tenant_id TO tid$$, 'TN004', NULL,
                 'renaming it');
SELECT throws_ok($$ALTER TABLE public.hz_unprotected ALTER COLUMN tenant_id TYPE text$$, 'TN004', NULL,
                 'retyping it');
SELECT lives_ok($$ALTER TABLE public.hz_unprotected ADD COLUMN note text$$, 'other changes to such a table pass');
SELECT lives_ok($$ALTER TABLE hz.moving RENAME COLUMN id TO ident$$, 'tables outside guarded schemas are free');

-------------------------------------------------------------------------------------------------
-- 3. The tenant column is checked by type, not only by name
-------------------------------------------------------------------------------------------------
SELECT is(pg_temp.err($$CREATE TABLE public.hz_text (tenant_id text, id int)$$),
          'TN004 | table public.hz_text has a tenant column "tenant_id" of type text, not uuid',
          'a text tenant column is refused, and the error names the type');
SELECT throws_ok($$CREATE TABLE public.hz_text_as AS SELECT 'x'::text AS tenant_id$$, 'TN004', NULL, '... also by CREATE TABLE AS');
SELECT lives_ok($$CREATE TABLE public.hz_uuid (tenant_id uuid, id int)$$, 'a uuid one is fine');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 4. Materialized views over anything that reads a scoped table
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE hz_owner;
CREATE VIEW hz.v_items AS SELECT * FROM public.hz_items;
CREATE VIEW hz.v_v_items AS SELECT * FROM hz.v_items;
CREATE FUNCTION hz.f_items() RETURNS SETOF public.hz_items LANGUAGE sql STABLE AS 'SELECT * FROM public.hz_items';
CREATE FUNCTION hz.f_atomic() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM public.hz_items; END;
CREATE FUNCTION hz.f_plain() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 42';
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_direct AS SELECT * FROM public.hz_items$$, 'TN005', NULL,
                 'a materialized view reading a scoped table (as before)');
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_view AS SELECT * FROM hz.v_items$$, 'TN005', NULL,
                 '... through a view');
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_chain AS SELECT * FROM hz.v_v_items$$, 'TN005', NULL,
                 '... through a chain of views');
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_function AS SELECT * FROM hz.f_items()$$, 'TN005', NULL,
                 '... through a SQL function');
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_atomic AS SELECT hz.f_atomic() AS n$$, 'TN005', NULL,
                 '... through a SQL function with a BEGIN ATOMIC body');
SELECT throws_ok($$CREATE MATERIALIZED VIEW hz.mv_cte AS WITH x AS (SELECT * FROM public.hz_items) SELECT * FROM x$$, 'TN005', NULL,
                 '... through a CTE');
SELECT lives_ok($$CREATE MATERIALIZED VIEW hz.mv_ok AS SELECT hz.f_plain() AS n$$, 'a materialized view over no scoped table is fine');
RESET ROLE;

-------------------------------------------------------------------------------------------------
-- 5. Rules and triggers that copy rows out
-------------------------------------------------------------------------------------------------
SET LOCAL ROLE hz_owner;
CREATE TABLE hz.sink (id int, note text);
SELECT throws_ok($$CREATE RULE hz_copy AS ON INSERT TO public.hz_items DO ALSO INSERT INTO hz.sink VALUES (NEW.id, NEW.note)$$,
                 'TN005', NULL, 'a rule on a scoped table is refused');
SELECT throws_ok($$CREATE RULE hz_view_rule AS ON UPDATE TO public.hz_other DO INSTEAD NOTHING$$, 'TN005', NULL,
                 '... whatever it does');
SELECT lives_ok($$CREATE RULE hz_sink_rule AS ON DELETE TO hz.sink DO INSTEAD NOTHING$$, 'a rule on another table is fine');
CREATE FUNCTION hz.copy_out() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO hz.sink VALUES (NEW.id, NEW.note);
    RETURN NEW;
END $$;
CREATE FUNCTION hz.copy_out_invoker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hz.sink VALUES (NEW.id, NEW.note);
    RETURN NEW;
END $$;
CREATE FUNCTION hz.harmless() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := lower(NEW.note);
    RETURN NEW;
END $$;
SELECT lives_ok($$CREATE TRIGGER hz_copy AFTER INSERT ON public.hz_items FOR EACH ROW EXECUTE FUNCTION hz.copy_out()$$,
                'a trigger is not refused (triggers are legitimate) ...');
CREATE TRIGGER hz_copy2 AFTER INSERT ON public.hz_other FOR EACH ROW EXECUTE FUNCTION hz.copy_out_invoker();
CREATE TRIGGER hz_lower BEFORE INSERT ON public.hz_parent FOR EACH ROW EXECUTE FUNCTION hz.harmless();
RESET ROLE;
SELECT ok('trigger_security_definer' = ANY (pg_temp.rules('public.hz_items')),
          '... but the audit reports a SECURITY DEFINER trigger function on a scoped table');
SELECT ok('trigger_writes_unscoped' = ANY (pg_temp.rules('public.hz_other')),
          '... and a trigger function that writes to a table without row level security');
SELECT ok(NOT ('trigger_writes_unscoped' = ANY (pg_temp.rules('public.hz_parent'))), '... not a harmless one');
SELECT is((SELECT severity FROM tenant.audit() WHERE rule = 'trigger_writes_unscoped' AND object = 'public.hz_other'),
          'warning', 'a warning, for review');

-------------------------------------------------------------------------------------------------
-- The audit finds each hole when it exists already (made with the guard off)
-------------------------------------------------------------------------------------------------
SET LOCAL pg_tenant.enforce = off;
ALTER TABLE public.hz_other INHERIT hz.thin;
CREATE TABLE public.hz_text_old (tenant_id text, id int);
CREATE MATERIALIZED VIEW hz.mv_old AS SELECT * FROM hz.v_v_items;
CREATE RULE hz_old_rule AS ON INSERT TO public.hz_items DO ALSO NOTHING;
SET LOCAL pg_tenant.enforce = error;
SELECT ok('unprotected_ancestor' = ANY (pg_temp.rules('public.hz_other')),
          'audit: a scoped table whose ancestor is not protected');
SELECT is((SELECT severity FROM tenant.audit() WHERE rule = 'unprotected_ancestor' AND object = 'public.hz_other'),
          'critical', '... is critical');
SELECT ok('tenant_column_not_uuid' = ANY (pg_temp.rules('public.hz_text_old')), 'audit: a tenant column that is not uuid');
SELECT ok('materialized_view_reads_scoped' = ANY (pg_temp.rules('hz.mv_old')),
          'audit: a materialized view reading a scoped table through views');
SELECT ok('rule_on_scoped_table' = ANY (pg_temp.rules('public.hz_items')), 'audit: a rule on a scoped table');

-------------------------------------------------------------------------------------------------
-- 9. The Redis URL (it may hold a password) is never stored where every role reads it, and an
--    error never echoes a huge argument
-------------------------------------------------------------------------------------------------
SELECT throws_ok(format('ALTER DATABASE %I SET pg_tenant.redis_url = %L', current_database(), 'redis://:secret@127.0.0.1:6379'),
                 '55P02', NULL, 'ALTER DATABASE ... SET pg_tenant.redis_url is refused');
SELECT throws_ok($$ALTER ROLE hz_owner SET pg_tenant.redis_url = 'redis://:secret@127.0.0.1:6379'$$, '55P02', NULL,
                 'ALTER ROLE ... SET too');
SELECT throws_ok($$CREATE FUNCTION pg_temp.leaky() RETURNS int LANGUAGE sql SET pg_tenant.redis_url = 'redis://:secret@127.0.0.1:6379' AS 'SELECT 1'$$,
                 '55P02', NULL, 'a function SET clause too');
SELECT is((SELECT count(*)::int FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%redis_url%'), 0,
          'nothing stored in pg_db_role_setting');
SELECT lives_ok($$SET LOCAL pg_tenant.redis_url = 'redis://127.0.0.1:6399'$$, 'a superuser SET still works');
SELECT ok(length(pg_temp.err(format('SELECT tenant.set(%L)', repeat('a', 100000)))) < 120,
          'an unknown slug of 100,000 characters is echoed cut short');
SELECT ok(pg_temp.err(format('SELECT tenant.set(%L)', repeat('a', 100000))) LIKE 'TN001 | tenant "aaa%..." does not exist',
          '... with its SQLSTATE');

SELECT * FROM finish();
ROLLBACK;
