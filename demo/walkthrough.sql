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

\echo '== 4. A tenant-scoped table with a hand-written policy on tenant.current_id()'
\echo '     (tenant.protect() generates this in a later release)'
CREATE TABLE IF NOT EXISTS public.projects (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL DEFAULT tenant.current_id() REFERENCES tenant.tenants (id),
    name      text NOT NULL
);
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON public.projects;
CREATE POLICY tenant_isolation ON public.projects
    USING (tenant_id OPERATOR(pg_catalog.=) tenant.current_id())
    WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant.current_id());
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

\echo '== 5. No tenant: no rows (fail closed), not an error'
SELECT tenant.current_id() AS current_tenant, count(*) AS visible_projects FROM public.projects;

\echo '== 6. Bad input gets a documented SQLSTATE'
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
\set SHOW_CONTEXT never
SELECT tenant.set('no-such-tenant');
SELECT tenant.set('not-a-uuid'::uuid);
SET pg_tenant.tenant_id = 'garbage';
RESET ROLE;
SELECT tenant.suspend(:'globex');
SET ROLE demo_app;
SELECT tenant.set('globex');
\set VERBOSITY default
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT tenant.resume(:'globex');
\echo '== done'
