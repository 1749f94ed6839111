-- Lifecycle (0.7.0): provisioning hooks, suspend and read-only with reasons and history, purge,
-- export and import. Tables: lc.projects (identity key), lc.tasks (references projects, not
-- cascading; serial key, generated column), lc.comments (references tasks ON DELETE CASCADE),
-- lc.events (partitioned), lc.tags (self-referencing).
BEGIN;
SELECT plan(50);

\ir include/err.sql

CREATE ROLE lc_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE lc_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE SCHEMA lc AUTHORIZATION lc_owner;
GRANT USAGE ON SCHEMA lc TO lc_app;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text) TO lc_app;

SET LOCAL ROLE lc_owner;
CREATE TABLE lc.projects (tenant_id uuid NOT NULL, id int GENERATED ALWAYS AS IDENTITY, name text NOT NULL,
                          budget numeric, started date, PRIMARY KEY (tenant_id, id));
CREATE TABLE lc.tasks (tenant_id uuid NOT NULL, id serial, project_id int NOT NULL, title text,
                       doubled int GENERATED ALWAYS AS (id * 2) STORED, labels text[], data jsonb,
                       PRIMARY KEY (tenant_id, id),
                       FOREIGN KEY (tenant_id, project_id) REFERENCES lc.projects (tenant_id, id));
CREATE TABLE lc.comments (tenant_id uuid NOT NULL, task_id int NOT NULL, body text, at timestamptz,
                          FOREIGN KEY (tenant_id, task_id) REFERENCES lc.tasks (tenant_id, id) ON DELETE CASCADE);
CREATE TABLE lc.events (tenant_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE lc.events_2025 PARTITION OF lc.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE lc.events_2026 PARTITION OF lc.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE lc.tags (tenant_id uuid NOT NULL, id int NOT NULL, parent int, name text, payload bytea,
                      PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, parent) REFERENCES lc.tags (tenant_id, id));
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lc TO lc_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lc TO lc_app;
-- Hooks: the first seeds a project and records who ran it in which tenant; the second fails for
-- tenants named 'fail-*'.
CREATE TABLE lc.hook_log (tenant_id uuid, ran_as name, context uuid, step int);
GRANT INSERT, SELECT ON lc.hook_log TO lc_app;
CREATE FUNCTION lc.seed(t uuid) RETURNS void LANGUAGE plpgsql SET search_path = lc, pg_catalog AS $$
BEGIN
    INSERT INTO projects (tenant_id, name) VALUES (t, 'first project');
    INSERT INTO hook_log VALUES (t, current_user, tenant.current_id(), 1);
    SET LOCAL work_mem = '7MB';  -- must not outlive the hook
END $$;
CREATE FUNCTION lc.check_slug(t uuid) RETURNS void LANGUAGE plpgsql SET search_path = lc, pg_catalog AS $$
BEGIN
    INSERT INTO hook_log VALUES (t, current_user, tenant.current_id(), 2);
    IF (SELECT slug FROM tenant.tenants WHERE id = t) LIKE 'fail-%' THEN
        RAISE EXCEPTION 'provisioning failed on purpose' USING ERRCODE = 'P0001';
    END IF;
END $$;
CREATE FUNCTION lc.two_args(t uuid, x int) RETURNS void LANGUAGE sql AS 'SELECT';
RESET ROLE;
GRANT SELECT ON tenant.tenants TO lc_owner;
SELECT is((SELECT count(*) FROM unnest(ARRAY['lc.projects', 'lc.tasks', 'lc.comments', 'lc.events', 'lc.tags']::regclass[]) t,
                                 tenant.protect(t)), 7::bigint, 'five tables protected (and two partitions)');

-------------------------------------------------------------------------------------------------
-- 1. Provisioning hooks
-------------------------------------------------------------------------------------------------
SELECT is(pg_temp.err($$SELECT tenant.on_create('lc.two_args(uuid, int)')$$),
          '42P13 | a provisioning hook is a function of one uuid argument: lc.two_args(uuid,integer) is not',
          'on_create refuses a function that does not take one uuid');
SELECT is(pg_temp.err($$SELECT tenant.on_create(NULL)$$), '22004 | hook and priority must not be NULL', 'NULL hook');
SELECT lives_ok($$SELECT tenant.on_create('lc.check_slug(uuid)', 200)$$, 'second hook registered (priority 200)');
SELECT lives_ok($$SELECT tenant.on_create('lc.seed(uuid)', 10)$$, 'first hook registered (priority 10)');
SELECT is((SELECT array_agg(fn::text ORDER BY priority) FROM tenant.create_hooks),
          ARRAY['lc.seed(uuid)', 'lc.check_slug(uuid)'], 'hooks are listed with their priorities');

SET LOCAL work_mem = '5MB';
SELECT tenant.create('Alpha', 'lc-alpha') AS alpha \gset
SELECT is((SELECT string_agg(format('%s %s %s', step, ran_as, context = tenant_id), ', ' ORDER BY step) FROM lc.hook_log),
          '1 lc_owner t, 2 lc_owner t',
                  'hooks ran in priority order, as their owner, with the new tenant as the context');
SELECT is(current_setting('pg_tenant.tenant_id'), '', 'the caller is not left in the new tenant');
SELECT is(current_setting('work_mem'), '5MB', 'a hook''s SET LOCAL ends with the hook');
SELECT is((SELECT count(*) FROM lc.projects WHERE tenant_id = :'alpha'), 1::bigint, 'the seed hook''s row is there');

SELECT is(pg_temp.err($$SELECT tenant.create('Broken', 'fail-one')$$), 'P0001 | provisioning failed on purpose',
          'a failing hook fails tenant.create with the hook''s error');
SELECT is((SELECT count(*) FROM tenant.tenants WHERE slug = 'fail-one'), 0::bigint, 'no registry row remains');
SELECT is((SELECT count(*) FROM lc.projects), 1::bigint, 'the earlier hook''s project is gone too');
SELECT is((SELECT count(*) FROM lc.hook_log), 2::bigint, 'and so are the hooks'' log rows');

SELECT is(tenant.remove_hook('lc.check_slug(uuid)'), true, 'remove_hook removes a registered hook');
SELECT is(tenant.remove_hook('lc.check_slug(uuid)'), false, 'and says false the second time');
SELECT tenant.create('Beta', 'lc-beta') AS beta \gset
SELECT tenant.create('Gamma', 'lc-gamma') AS gamma \gset
SELECT tenant.create('Fail OK', 'fail-two') AS failok \gset
SELECT isnt(:'failok'::uuid, NULL::uuid, 'a removed hook no longer runs');

-------------------------------------------------------------------------------------------------
-- 2. Suspend, read-only, resume: reasons and history
-------------------------------------------------------------------------------------------------
SET LOCAL SESSION AUTHORIZATION lc_app;
SELECT tenant.set(:'alpha');
INSERT INTO lc.tasks (tenant_id, project_id, title, labels, data)
    SELECT :'alpha', p.id, 'task ' || g, ARRAY['x', 'y "quoted"'], jsonb_build_object('n', g, 'f', 1.5)
    FROM lc.projects p, generate_series(1, 3) g;
INSERT INTO lc.comments SELECT :'alpha', id, E'line\nbreak ' || id, '2026-03-01 10:00:00.123456+02' FROM lc.tasks;
INSERT INTO lc.events VALUES (:'alpha', '2025-06-01', 'old'), (:'alpha', '2026-06-01', 'new');
INSERT INTO lc.tags VALUES (:'alpha', 1, NULL, 'root', '\x00ff'), (:'alpha', 2, 1, 'child', NULL);
SELECT tenant.set(:'beta');
INSERT INTO lc.tasks (tenant_id, project_id, title) SELECT :'beta', id, 'beta task' FROM lc.projects;
INSERT INTO lc.tags VALUES (:'beta', 1, NULL, 'beta root', NULL);
RESET SESSION AUTHORIZATION;

SELECT lives_ok(format('SELECT tenant.set_read_only(%L, %L)', :'alpha', 'over quota'), 'set_read_only');
SET LOCAL SESSION AUTHORIZATION lc_app;
SELECT tenant.set(:'alpha');
SELECT is((SELECT count(*) FROM lc.tasks), 3::bigint, 'a read-only tenant can be entered and read');
SELECT is(pg_temp.err($$INSERT INTO lc.events VALUES (tenant.current_id(), '2026-07-01', 'x')$$),
          'TN010 | tenant "lc-alpha" is read-only', 'INSERT is refused with TN010');
SELECT is(pg_temp.err($$UPDATE lc.tasks SET title = 'changed'$$), 'TN010 | tenant "lc-alpha" is read-only',
          'UPDATE is refused with TN010');
SELECT is(pg_temp.err($$WITH moved AS (INSERT INTO lc.events VALUES (tenant.current_id(), '2026-07-01', 'x') RETURNING 1)
                        SELECT count(*) FROM moved$$), 'TN010 | tenant "lc-alpha" is read-only',
          'an INSERT in a CTE is refused too');
SELECT is(pg_temp.err($$INSERT INTO lc.hook_log VALUES (NULL, 'x', NULL, 9)$$), 'ok',
          'tables that are not tenant-scoped are not affected');
SELECT is(pg_temp.err($$DELETE FROM lc.events WHERE what = 'nothing such'$$), 'ok', 'DELETE passes');
SELECT tenant.set(:'beta');
SELECT is(pg_temp.err($$UPDATE lc.tasks SET title = 'beta task'$$), 'ok', 'another tenant is not affected');
RESET SESSION AUTHORIZATION;
SELECT lives_ok(format('SELECT tenant.suspend(%L, %L)', :'alpha', 'unpaid invoice 42'), 'suspend with a reason');
SELECT is((SELECT status || ': ' || status_reason FROM tenant.tenants WHERE id = :'alpha'), 'suspended: unpaid invoice 42',
          'the registry shows status and reason');
SET LOCAL SESSION AUTHORIZATION lc_app;
SELECT is(pg_temp.err(format('SELECT tenant.set(%L)', :'alpha')), 'TN002 | tenant "lc-alpha" is suspended',
          'a suspended tenant cannot be entered');
RESET SESSION AUTHORIZATION;
SELECT tenant.resume(:'gamma');
SELECT tenant.suspend(:'gamma');
SELECT tenant.resume(:'gamma');
SELECT results_eq(format($$SELECT status, reason, changed_by::text FROM tenant.status_history WHERE tenant_id = %L
                            ORDER BY changed_at$$, :'gamma'),
                  $$VALUES ('suspended', NULL::text, session_user::text), ('active', NULL, session_user::text)$$,
                  'history: a resume of an active tenant records nothing; suspend and resume do, with who');
SELECT results_eq(format($$SELECT status, reason FROM tenant.status_history WHERE tenant_id = %L ORDER BY changed_at$$, :'alpha'),
                  $$VALUES ('read_only', 'over quota'), ('suspended', 'unpaid invoice 42')$$,
                  'history keeps each reason');
SELECT is(pg_temp.err($$UPDATE tenant.tenants SET status = 'frozen'$$),
          '23514 | new row for relation "tenants" violates check constraint "tenants_status_known"', 'unknown status refused');

-------------------------------------------------------------------------------------------------
-- 3. Export, purge, import
-------------------------------------------------------------------------------------------------
-- Every row of alpha, without the tenant column, as text: what the round trip must give back.
CREATE FUNCTION pg_temp.snapshot(t uuid) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(x, E'\n' ORDER BY x) FROM (
        SELECT 'projects ' || (to_jsonb(r) - 'tenant_id')::text FROM lc.projects r WHERE tenant_id = t
        UNION ALL SELECT 'tasks ' || (to_jsonb(r) - 'tenant_id')::text FROM lc.tasks r WHERE tenant_id = t
        UNION ALL SELECT 'comments ' || (to_jsonb(r) - 'tenant_id')::text FROM lc.comments r WHERE tenant_id = t
        UNION ALL SELECT 'events ' || tableoid::regclass || (to_jsonb(r) - 'tenant_id')::text FROM lc.events r WHERE tenant_id = t
        UNION ALL SELECT 'tags ' || (to_jsonb(r) - 'tenant_id')::text FROM lc.tags r WHERE tenant_id = t) s(x) $$;
CREATE TEMP TABLE alpha_before AS SELECT pg_temp.snapshot(:'alpha') AS rows;
CREATE TEMP TABLE beta_before AS SELECT pg_temp.snapshot(:'beta') AS rows;
CREATE TEMP TABLE alpha_export AS SELECT string_agg(line, E'\n') AS doc FROM tenant.export(:'alpha') line;

SELECT is((SELECT (split_part(doc, E'\n', 1)::jsonb) - 'exported_at' FROM alpha_export),
          jsonb_build_object('format', 'pg_tenant export', 'format_version', 1,
                             'extension_version', (SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'),
                             'tenant', jsonb_build_object('id', :'alpha', 'slug', 'lc-alpha', 'name', 'Alpha', 'plan', 'free')),
          'the export starts with its header');
SELECT is((SELECT array_agg(DISTINCT l::jsonb ->> 'table') FROM alpha_export, unnest(string_to_array(doc, E'\n')) l
           WHERE NOT l::jsonb ? 'format'),
          ARRAY['lc.comments', 'lc.events', 'lc.projects', 'lc.tags', 'lc.tasks'], 'every scoped table with rows is in it');
SELECT is((SELECT count(*) FROM alpha_export, unnest(string_to_array(doc, E'\n')) l WHERE l LIKE '%tenant_id%'),
          0::bigint, 'without the tenant column');

SELECT is(pg_temp.err(format('SELECT tenant.purge(%L)', :'beta')),
          '55000 | tenant "lc-beta" is active, not suspended', 'purge refuses an active tenant');
SELECT is(pg_temp.err(format('SELECT tenant.purge(%L)', gen_random_uuid())) LIKE 'TN001 | %', true,
          'purge of an unknown tenant: TN001');
SELECT tenant.set_tenant_limit(:'alpha', 'api_calls', 5);
SELECT results_eq(format($$SELECT rel::text, deleted FROM tenant.purge(%L) WHERE rel::text LIKE 'lc.%%'$$, :'alpha'),
                  $$VALUES ('lc.comments', 3::bigint), ('lc.events', 2), ('lc.tags', 2), ('lc.tasks', 3), ('lc.projects', 1)$$,
                  'purge deletes children before parents, with counts');
SELECT is(pg_temp.snapshot(:'alpha'), NULL, 'nothing of alpha is left in any scoped table');
SELECT is((SELECT count(*) FROM tenant.tenants WHERE id = :'alpha'), 0::bigint, 'the registry row is gone');
SELECT is((SELECT count(*) FROM tenant.tenant_limits WHERE tenant_id = :'alpha')
          + (SELECT count(*) FROM tenant.status_history WHERE tenant_id = :'alpha')
          + (SELECT count(*) FROM tenant.meter_counts WHERE tenant_id = :'alpha'), 0::bigint,
          'limits, status history and meter counts are gone');
SELECT is(pg_temp.snapshot(:'beta'), (SELECT rows FROM beta_before), 'beta is untouched');
SELECT is((SELECT format('%s %s %s %s', slug, forced,
                          (SELECT jsonb_object_agg(k, v) FROM jsonb_each(deleted) d(k, v) WHERE k LIKE 'lc.%'), purged_by)
           FROM tenant.purges WHERE tenant_id = :'alpha'),
          'lc-alpha f {"lc.tags": 2, "lc.tasks": 3, "lc.events": 2, "lc.comments": 3, "lc.projects": 1} ' || session_user,
          'the purge is recorded: slug, counts, who');
SELECT is(pg_temp.err(format('SELECT tenant.purge(%L, force => true)', :'gamma')), 'ok',
          'force purges an active tenant');

-- Import into a new tenant (the seed hook gives it a project: refused), then into an empty one.
SELECT tenant.remove_hook('lc.seed(uuid)');
SELECT tenant.create('Alpha again', 'lc-alpha-2') AS alpha2 \gset
SELECT is(pg_temp.err(format('SELECT tenant.import(%L, %L)', :'beta', (SELECT doc FROM alpha_export))),
          format('55000 | tenant %s already has rows in lc.tags', :'beta'), 'import refuses a tenant with rows');
SELECT is(pg_temp.err(format('SELECT tenant.import(%L, %L)', :'alpha2', 'not an export')),
          '22023 | not a pg_tenant export (format 1)', 'import refuses what is not an export');
SELECT is(pg_temp.err(format('SELECT tenant.import(%L, %L)', :'alpha2',
                             (SELECT split_part(doc, E'\n', 1) FROM alpha_export) || E'\n{"table": "tenant.tenants", "row": {}}')),
          '42P01 | table "tenant.tenants" of the export is not a tenant-scoped table here',
          'import writes scoped tables only');
SELECT results_eq(format('SELECT rel::text, inserted FROM tenant.import(%L, %L)', :'alpha2', (SELECT doc FROM alpha_export)),
                  $$VALUES ('lc.projects', 1::bigint), ('lc.tasks', 3), ('lc.tags', 2), ('lc.events', 2), ('lc.comments', 3)$$,
                  'import loads parents before children');
SELECT is(pg_temp.snapshot(:'alpha2'), (SELECT rows FROM alpha_before),
          'export, purge, import: every row of every table is the same, byte for byte');
-- The same id again: a DBA re-registers the purged id.
INSERT INTO tenant.tenants (id, name, slug) VALUES (:'alpha', 'Alpha', 'lc-alpha');
SELECT lives_ok(format('SELECT tenant.import(%L, %L)', :'alpha', (SELECT doc FROM alpha_export)), 'import into the same id');
SELECT is(pg_temp.snapshot(:'alpha'), (SELECT rows FROM alpha_before), 'the same id gets the same rows back');

SELECT * FROM finish();
ROLLBACK;
