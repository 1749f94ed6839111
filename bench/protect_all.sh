#!/usr/bin/env bash
# Times tenant.protect_all over many tables: a fresh schema with N tables, each with a tenant_id
# uuid column (and R rows per table, spread over 10 tenants), then one call of
# tenant.protect_all('many'), timed by the server (clock_timestamp around the call, no client or
# connection time). Checks that every table came back and has both policies.
#   bench/protect_all.sh [tables, 1000] [rows per table, 0]
# Run as root on Debian 12 after scripts/install-deps.sh test and make install.
# PG_TENANT_BENCH_PORT picks the cluster's port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${1:-1000}
rows=${2:-0}
. test/lib.sh

if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ]; then
  export PG_TENANT_BENCH_INSIDE=1
  exec pg_virtualenv -t -c "-p ${PG_TENANT_BENCH_PORT:-$(free_port)}" -o shared_preload_libraries=pg_tenant \
    "$0" "$tables" "$rows"
fi

createdb bench
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i))::uuid, 'Bench ' || i, 'bench-' || i
  FROM generate_series(1, 10) AS i;
CREATE SCHEMA many;
-- One table per transaction, as an application's migrations would have made them.
SELECT format('CREATE TABLE many.t%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                      tenant_id uuid, created_at timestamptz NOT NULL DEFAULT now(),
                                      body text)', i)
  FROM generate_series(1, $tables) AS i \gexec
SELECT format('INSERT INTO many.t%s (tenant_id, body)
               SELECT (''00000000-0000-0000-0000-'' || (100000000001 + j %% 10))::uuid, md5(j::text)
                 FROM generate_series(1, $rows) AS j', i)
  FROM generate_series(1, $tables) AS i WHERE $rows > 0 \gexec
VACUUM ANALYZE;
SQL

out=$(psql -X -q -v ON_ERROR_STOP=1 -d bench -At <<'SQL'
CREATE TEMP TABLE protected (rel regclass);
SELECT clock_timestamp() AS t0 \gset
INSERT INTO protected SELECT tenant.protect_all('many');
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS seconds \gset
SELECT :'seconds', (SELECT count(*) FROM protected),
       (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'many'::regnamespace AND c.relkind = 'r'
           AND c.relrowsecurity AND c.relforcerowsecurity
           AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                   AND p.polname IN ('tenant_isolation', 'tenant_isolation_guard')) = 2);
SQL
)
IFS='|' read -r seconds returned protected <<<"$out"
echo "tenant.protect_all over $tables tables x $rows rows: $seconds s ($returned returned, $protected with RLS forced and both policies; PostgreSQL $(psql -XAtc 'SHOW server_version'), $(nproc) cores)"
[ "$returned" = "$tables" ] && [ "$protected" = "$tables" ]
