-- The benchmark's database: 100 tenants with 20 projects each, a protected table, an application
-- role. The seed's middleware reads the registry itself, so bench_app may SELECT tenant.tenants
-- here (an application role of pg_tenant needs no such grant).
\set ON_ERROR_STOP 1
CREATE EXTENSION pg_tenant;
CREATE ROLE bench_app LOGIN PASSWORD :'password';
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text) TO bench_app;
GRANT SELECT ON tenant.tenants TO bench_app;
CREATE TABLE public.projects (
    tenant_id uuid,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    name      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT count(*) FROM tenant.protect('public.projects');
GRANT SELECT ON public.projects TO bench_app;
SELECT count(*) FROM (SELECT tenant.create('Tenant ' || i, 'tenant-' || i) FROM generate_series(1, 100) AS i) AS t;
INSERT INTO public.projects (tenant_id, name)
SELECT t.id, t.slug || ' project ' || n FROM tenant.tenants t, generate_series(1, 20) AS n;
ANALYZE;
