#!/usr/bin/env bash
# The DDL guard's cost: 1,000 CREATE TABLE and then 1,000 ALTER TABLE (on protected tables, where
# the guard re-reads the catalogs after each) with pg_tenant.enforce = error against
# pg_tenant.enforce = off, interleaved over rounds in one throwaway cluster; median seconds.
#   bench/guard.sh [tables] [rounds]
# Run as root after scripts/install-deps.sh test and make install.
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${1:-1000}
rounds=${2:-5}
. test/lib.sh
if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ]; then
  export PG_TENANT_BENCH_INSIDE=1
  exec pg_virtualenv -t -c "-p $(free_port)" -o shared_preload_libraries=pg_tenant -o synchronous_commit=off -o max_locks_per_transaction=1024 \
    "$0" "$tables" "$rounds"
fi

createdb bench_guard
psql -X -q -d bench_guard -c "CREATE EXTENSION pg_tenant"
work=$(mktemp -d)
# One transaction per statement, as a migration tool would send them.
for i in $(seq 1 "$tables"); do echo "CREATE TABLE g.t$i (tenant_id uuid NOT NULL, id bigint, v text);"; done >"$work/create.sql"
for i in $(seq 1 "$tables"); do echo "ALTER TABLE g.t$i ADD COLUMN extra int;"; done >"$work/alter.sql"

run() {  # mode phase -> seconds
  local start end
  start=$(date +%s.%N)
  PGOPTIONS="-c pg_tenant.enforce=$1 -c pg_tenant.guarded_schemas=public,g" \
    psql -X -q -v ON_ERROR_STOP=1 -d bench_guard -f "$work/$2.sql" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN {printf "%.3f", e - s}'
}
declare -A times
for round in $(seq 0 "$rounds"); do  # round 0 warms the catalogs up and is not counted
  for mode in off error; do
    psql -X -q -d bench_guard -c "DROP SCHEMA IF EXISTS g CASCADE" -c "CREATE SCHEMA g"
    create=$(run "$mode" create)
    psql -X -q -d bench_guard -c "SELECT count(*) FROM tenant.protect_all('g')" >/dev/null
    alter=$(run "$mode" alter)
    echo "round $round $mode: create $create s, alter $alter s" >&2
    [ "$round" -eq 0 ] && continue
    times[$mode,create]="${times[$mode,create]:-} $create"
    times[$mode,alter]="${times[$mode,alter]:-} $alter"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "DDL guard, $tables tables, $rounds rounds, median seconds (one statement per transaction)"
echo
echo "| phase | enforce = off | enforce = error | ratio |"
echo "|---|---:|---:|---:|"
for phase in create alter; do
  off=$(echo "${times[off,$phase]}" | median)
  on=$(echo "${times[error,$phase]}" | median)
  printf '| %s TABLE x %s | %.3f | %.3f | %.3f |\n' "${phase^^}" "$tables" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN {print a / b}')"
done
rm -rf "$work"
