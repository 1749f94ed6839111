-- As bench/meter, plus a role whose sessions meter through Redis (bench/redis.sh starts the
-- redis-server and passes its URL in PG_TENANT_REDIS_URL).
\ir ../meter/setup.sql
\getenv redis_url PG_TENANT_REDIS_URL
CREATE ROLE bench_redis LOGIN PASSWORD :'password';
GRANT EXECUTE ON FUNCTION tenant.meter(text, bigint) TO bench_redis;
ALTER ROLE bench_redis SET pg_tenant.tenant_id = '00000000-0000-0000-0000-100000000001';
ALTER ROLE bench_redis SET pg_tenant.meter_backend = 'redis';
-- The URL may hold a password: only postgresql.conf, ALTER SYSTEM or SET may set it.
ALTER SYSTEM SET pg_tenant.redis_url = :'redis_url';
SELECT pg_catalog.pg_reload_conf();
