-- pg_tenant walkthrough: run by scripts/demo.sh against a fresh cluster.
\set ON_ERROR_STOP 1
\pset footer off
\echo '== 1. The extension, with the library preloaded'
CREATE EXTENSION IF NOT EXISTS pg_tenant;
SELECT extversion, current_setting('shared_preload_libraries') AS preloaded
  FROM pg_extension WHERE extname = 'pg_tenant';

\echo '== 2. A plan and two tenants'
INSERT INTO tenant.plans (name, description, upgrade_url)
     VALUES ('pro', 'Pro plan', 'https://example.com/upgrade') ON CONFLICT DO NOTHING;
SELECT tenant.create('Acme Corp', 'acme', 'pro') AS acme \gset
SELECT tenant.create('Globex', 'globex') AS globex \gset
SELECT slug, name, plan, status FROM tenant.tenants ORDER BY slug;

\echo '== 3. An application role that may enter tenants and nothing more'
DO $$ BEGIN CREATE ROLE demo_app LOGIN PASSWORD 'demo'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid),
                          tenant.set_session(text), tenant.reset() TO demo_app;

\echo '== 4. A tenant-scoped table: review the generated DDL, protect it, audit'
DROP TABLE IF EXISTS public.projects;
CREATE TABLE public.projects (
    tenant_id uuid,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    name      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
DO $$ BEGIN CREATE ROLE demo_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER TABLE public.projects OWNER TO demo_owner;
\pset format unaligned
SELECT tenant.policy_sql('public.projects');
\pset format aligned
SELECT * FROM tenant.protect('public.projects');
SELECT count(*) AS audit_findings FROM tenant.audit();
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO demo_app;

SET ROLE demo_app;
BEGIN;
SELECT tenant.set('acme') AS entered_acme;
INSERT INTO public.projects (name) VALUES ('Rocket skates'), ('Giant magnet');
COMMIT;
BEGIN;
SELECT tenant.set('globex') AS entered_globex;
INSERT INTO public.projects (name) VALUES ('Doomsday device');
SELECT name FROM public.projects;
COMMIT;

\echo '== 5. No tenant: no rows (fail closed), not an error; another tenant''s id is refused'
SELECT tenant.current_id() AS current_tenant, count(*) AS visible_projects FROM public.projects;
RESET ROLE;
SELECT count(*) AS all_projects_as_superuser FROM public.projects;
SET ROLE demo_app;

\echo '== 6. Bad input gets a documented SQLSTATE'
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
\set SHOW_CONTEXT never
SELECT tenant.set('no-such-tenant');
SELECT tenant.set('not-a-uuid'::uuid);
BEGIN;
SELECT tenant.set('acme') IS NOT NULL AS in_acme;
INSERT INTO public.projects (tenant_id, name) VALUES (:'globex', 'planted in globex');
ROLLBACK;
SET pg_tenant.tenant_id = 'garbage';
RESET ROLE;
SELECT tenant.suspend(:'globex');
SET ROLE demo_app;
SELECT tenant.set('globex');
\set VERBOSITY default
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT tenant.resume(:'globex');

\echo '== 7. Limits: an exact row quota and a fast meter, with the plan''s upgrade URL in the error'
SELECT tenant.set_limit('pro', 'projects', 3);
SELECT tenant.set_limit('pro', 'api_calls', 2, 'minute');
SELECT tenant.limit_rows('public.projects', 'projects') AS projects_counted;
GRANT EXECUTE ON FUNCTION tenant.meter(text, bigint), tenant.usage(uuid) TO demo_app;
SET ROLE demo_app;
BEGIN;
SELECT tenant.set('acme') IS NOT NULL AS in_acme;
SELECT tenant.meter('api_calls') AS calls_left, tenant.meter('api_calls') AS calls_left_after;
SAVEPOINT s;
\set ON_ERROR_STOP 0
SELECT tenant.meter('api_calls');
ROLLBACK TO s;
INSERT INTO public.projects (name) VALUES ('Bird seed');
SAVEPOINT s2;
INSERT INTO public.projects (name) VALUES ('One too many');
ROLLBACK TO s2;
\set ON_ERROR_STOP 1
SELECT resource, used, "limit", period, kind FROM tenant.usage() ORDER BY resource;
COMMIT;
RESET ROLE;
\echo '== done'
