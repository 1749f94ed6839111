-- One tenant; a meter with a limit no run reaches; the naive in-database counter to compare.
CREATE EXTENSION IF NOT EXISTS pg_tenant;
INSERT INTO tenant.tenants (id, name, slug) VALUES ('00000000-0000-0000-0000-100000000001', 'Bench', 'bench');
SELECT tenant.set_limit('free', 'api_calls', 1000000000000);
-- 0.9.0: with alert levels no run reaches (each call checks them, none crosses one).
SELECT tenant.set_limit('free', 'api_alerts', 1000000000000, 'none', 'hard', '{50,100}');
-- The meter variant runs as a role whose session is inside the tenant.
\getenv password PGPASSWORD
CREATE ROLE bench_meter LOGIN PASSWORD :'password';  -- the cluster's password, so pgbench can log in
GRANT EXECUTE ON FUNCTION tenant.meter(text, bigint) TO bench_meter;
ALTER ROLE bench_meter SET pg_tenant.tenant_id = '00000000-0000-0000-0000-100000000001';
SELECT tenant.exempt('public.naive_usage', 'benchmark: the naive counter');
CREATE TABLE public.naive_usage (tenant_id uuid PRIMARY KEY, n bigint NOT NULL, max bigint NOT NULL);
INSERT INTO public.naive_usage VALUES ('00000000-0000-0000-0000-100000000001', 0, 1000000000000);
GRANT SELECT, UPDATE ON public.naive_usage TO bench_meter;
