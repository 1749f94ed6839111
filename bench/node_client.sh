#!/usr/bin/env bash
# Benchmark (not a test): requests per second of one read endpoint (a tenant's 20 projects) served
# by Express through the pg-tenant client, against the seed article's hand-written middleware
# (look the tenant up, then an interpolated SET LOCAL) and against BEGIN and tenant.set sent as two
# round trips; same server, same query, same pool size; autocannon on loopback; one run.
#   bench/node_client.sh [seconds per variant, default 10] [connections, default 16]
# Runs in its own throwaway cluster. Run as root on Debian 12 after scripts/install-deps.sh test
# and make install; `npm ci` from the committed lock files of clients/node and bench/node.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-16}
. test/lib.sh

if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ]; then
  export PG_TENANT_BENCH_INSIDE=1
  exec pg_virtualenv -t -c "-p ${PG_TENANT_BENCH_PORT:-$(free_port)}" -o shared_preload_libraries=pg_tenant \
    -o shared_buffers=256MB "$0" "$seconds" "$connections"
fi

(cd clients/node && npm ci --no-audit --no-fund >/dev/null && npm run --silent build)
(cd bench/node && npm ci --no-audit --no-fund >/dev/null)
createdb bench_node
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -d bench_node -v password="$password" -f bench/node/setup.sql
PGDATABASE=bench_node BENCH_PASSWORD=$password PORT=$(free_port) node bench/node/bench.js "$seconds" "$connections"
