-- 100,000 tenants (slugs t1 .. t100000); items has 100 rows for each of t1 .. t1000.
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'Tenant ' || i, 't' || i
  FROM generate_series(1, 100000) AS i;
CREATE TABLE public.items (tenant_id uuid NOT NULL, id int NOT NULL, n bigint NOT NULL DEFAULT 0, v text,
                           PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('public.items');
INSERT INTO public.items (tenant_id, id, v)
SELECT ('00000000-0000-0000-0000-' || lpad(t::text, 12, '0'))::uuid, i, 'row ' || i
  FROM generate_series(1, 1000) AS t, generate_series(1, 100) AS i;
CREATE TABLE public.events (tenant_id uuid NOT NULL DEFAULT tenant.current_id(), at timestamptz NOT NULL DEFAULT now(), item int);
SELECT tenant.protect('public.events');
CREATE ROLE bench_app LOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(text) TO bench_app;
GRANT SELECT, INSERT, UPDATE ON public.items, public.events TO bench_app;
VACUUM ANALYZE;
