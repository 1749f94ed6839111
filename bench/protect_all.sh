#!/usr/bin/env bash
# Times tenant.protect_all over many tables: a fresh schema with N tables, each with a tenant_id
# uuid column (and R rows per table, spread over 10 tenants), then one call of
# tenant.protect_all('many'), timed by the server (clock_timestamp around the call, no client or
# connection time). Checks that every table came back and has both policies. With rows, it then
# times deleting one tenant (DELETE FROM tenant.tenants) and purging another (tenant.purge), each
# of which has R/10 rows in every table, and checks that their rows are gone from every table,
# and an INSERT of 100,000 rows into one of the tables (each row's tenant is checked).
#   bench/protect_all.sh [tables, 1000] [rows per table, 0]
# Run as root on Debian 12 after scripts/install-deps.sh test and make install.
# PG_TENANT_BENCH_PORT picks the throwaway cluster's port (default: a free one). With
# PG_TENANT_BENCH_CLUSTER=1 it uses the running cluster PGHOST/PGPORT/PGUSER point at instead
# (database bench, dropped first; preload pg_tenant, max_locks_per_transaction >= 128 for 5,000).
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${1:-1000}
rows=${2:-0}
. test/lib.sh

if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ] && [ -z "${PG_TENANT_BENCH_CLUSTER:-}" ]; then
  export PG_TENANT_BENCH_INSIDE=1
  exec pg_virtualenv -t -c "-p ${PG_TENANT_BENCH_PORT:-$(free_port)}" -o shared_preload_libraries=pg_tenant \
    -o max_locks_per_transaction=256 "$0" "$tables" "$rows"
fi

dropdb --if-exists bench 2>/dev/null
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
[ "$rows" -gt 0 ] || exit 0

# The victim's rows left in all tables, one count per table (as the superuser: no RLS).
left_sql="SELECT sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM many.t%s WHERE tenant_id = %L', i, :'victim'), false, true, '')))[1]::text::bigint) AS left_rows
            FROM generate_series(1, $tables) AS i \\gset"
out=$(psql -X -q -v ON_ERROR_STOP=1 -d bench -At <<SQL
\\set victim 00000000-0000-0000-0000-100000000001
SELECT clock_timestamp() AS t0 \\gset
DELETE FROM tenant.tenants WHERE id = :'victim';
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS delete_seconds \\gset
$left_sql
SELECT :left_rows AS delete_left \\gset
\\set victim 00000000-0000-0000-0000-100000000002
SELECT clock_timestamp() AS t0 \\gset
SELECT count(*) FROM tenant.purge(:'victim', true) \\gset
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS purge_seconds \\gset
$left_sql
SELECT :'delete_seconds', :'delete_left', :'purge_seconds', :left_rows;
SQL
)
IFS='|' read -r delete_seconds delete_left purge_seconds purge_left <<<"$out"
echo "delete one tenant ($((rows / 10)) rows in each of $tables tables): $delete_seconds s ($delete_left rows left); tenant.purge of one: $purge_seconds s ($purge_left rows left)"
[ "$delete_left" = 0 ] && [ "$purge_left" = 0 ]

# The check of each new row's tenant (the tenant key, or the foreign key before 0.9.0): 100,000
# rows of the 8 remaining tenants into one protected table, as the superuser (no policy applies).
insert_seconds=$(psql -X -q -v ON_ERROR_STOP=1 -d bench -At <<'SQL'
SELECT clock_timestamp() AS t0 \gset
INSERT INTO many.t1 (tenant_id, body)
SELECT ('00000000-0000-0000-0000-' || (100000000003 + j % 8))::uuid, 'x' FROM generate_series(1, 100000) AS j;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SQL
)
echo "INSERT of 100,000 rows into one protected table: $insert_seconds s"
