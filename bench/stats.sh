#!/usr/bin/env bash
# Per-tenant statistics, on against off (a benchmark, not a test): pgbench as a non-superuser role
# (row level security applies), each transaction entering a random tenant (tenant.set) and
# running a point read (select), or a read, an UPDATE and an INSERT (mixed), over 1,000 tenants;
# and the point read over 100,000 tenants with pg_tenant.stats_max_tenants = 1000 (eviction
# working all the time). Every variant runs in every round, interleaved, in one cluster of its
# own (initdb and pg_ctl of pg_config --bindir, a free port, shared_preload_libraries =
# pg_tenant); "off" is the same server, pgbench connected as a role with pg_tenant.stats = off.
#   bench/stats.sh [seconds per run] [rounds] [clients]
#   (VARIANTS="select100k:on select100k:off" runs only those)
# Prints a markdown table of median tps and the ratio on / off. Needs make install first.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rounds=${2:-5}
clients=${3:-8}
. test/lib.sh
bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-bench-stats.XXXX)
private_cluster "$work" <<CONF
shared_preload_libraries = 'pg_tenant'
shared_buffers = 256MB
synchronous_commit = off
pg_tenant.stats_max_tenants = 1000
CONF
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$work/data" -w stop -m fast >/dev/null; rm -rf "$work"' EXIT
createdb bench
psql -X -q -v ON_ERROR_STOP=1 -d bench -f bench/stats/setup.sql >/dev/null
# "off": a role of the same rights whose sessions start with pg_tenant.stats = off (superuser-only
# to set, so by ALTER ROLE rather than by the connection's options).
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE ROLE bench_off LOGIN IN ROLE bench_app" \
  -c "ALTER ROLE bench_off SET pg_tenant.stats = off" >/dev/null
variants=${VARIANTS:-"select:on select:off mixed:on mixed:off select100k:on select100k:off"}
declare -A runs
for round in $(seq 1 "$rounds"); do
  for v in $variants; do
    script=${v%%:*} mode=${v##*:}
    role=bench_app; [ "$mode" = off ] && role=bench_off
    tps=$(pgbench -n -M prepared -U "$role" -c "$clients" -j "$clients" \
            -T "$seconds" -f "bench/stats/$script.pgbench" bench 2>&1 | sed -nE 's/^tps = ([0-9.]+).*/\1/p')
    runs[$v]="${runs[$v]:-} $tps"
    echo "round $round $v: $tps tps" >&2
  done
done
info=$(psql -X -Atq -d bench -c "SELECT tenants || ' tenant rows, ' || evictions || ' evicted' FROM tenant.stats_info()")
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "PostgreSQL $(psql -XAtc 'SHOW server_version' -d bench), $(nproc) cores, $clients clients, $rounds rounds x $seconds s interleaved, pgbench -M prepared, median tps; statistics at the end: $info"
echo
echo "| workload | stats off | stats on | on / off | runs off | runs on |"
echo "|---|---:|---:|---:|---|---|"
for s in select mixed select100k; do
  [ -n "${runs[$s:off]:-}" ] && [ -n "${runs[$s:on]:-}" ] || continue
  off=$(echo "${runs[$s:off]}" | median) on=$(echo "${runs[$s:on]}" | median)
  printf '| %s | %.0f | %.0f | %.3f | %s | %s |\n' "$s" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN {print a / b}')" \
    "$(echo ${runs[$s:off]} | tr ' ' '/')" "$(echo ${runs[$s:on]} | tr ' ' '/')"
done
