#!/usr/bin/env bash
# Benchmarks (not tests): each case runs its variants side by side in one throwaway cluster,
# interleaved over several rounds, and prints a markdown table of median throughput and ratios.
#   bench/run.sh [case] [seconds per run] [rounds] [clients]
# Cases: context (tenant.set vs SET LOCAL vs look-up + SET LOCAL); isolation (explicit WHERE vs
# tenant.protect's policies vs a hand-written policy on a custom setting).
# A case is bench/<case>/: setup.sql, one <variant>.pgbench per variant and a variants file:
#   # variants: v1 v2 ...     one table; repeat the pair for more tables (all variants are
#   # baseline: v1            interleaved in every round)
#   # user ROLE: v2 ...       optional: pgbench connects as ROLE for these variants
#   # server: -o guc=value    optional: more pg_virtualenv options
#   # mode: prepared          optional: pgbench's query mode (default simple)
# and optionally plans.sql, run once after setup.sql with its output on stderr.
# PG_TENANT_BENCH_PORT picks the cluster's port (default: a free one). PG_TENANT_BENCH_CLUSTER=own
# runs against the cluster already in PGHOST/PGPORT (started with shared_preload_libraries=pg_tenant)
# instead of a pg_virtualenv one; its database bench and roles bench_* are dropped and created again.
# Run as root on Debian 12 after scripts/install-deps.sh test and make install.
set -euo pipefail
cd "$(dirname "$0")/.."
case_name=${1:-context}
seconds=${2:-10}
rounds=${3:-5}
clients=${4:-1}
. test/lib.sh

if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ] && [ "${PG_TENANT_BENCH_CLUSTER:-}" != own ]; then
  export PG_TENANT_BENCH_INSIDE=1
  # shellcheck disable=SC2046 # the server: line is a list of options
  exec pg_virtualenv -t -c "-p ${PG_TENANT_BENCH_PORT:-$(free_port)}" -o shared_preload_libraries=pg_tenant \
    -o shared_buffers=256MB -o synchronous_commit=off $(sed -n 's/^# server: //p' "bench/$case_name/variants") \
    "$0" "$case_name" "$seconds" "$rounds" "$clients"
fi

dir=bench/$case_name
if [ "${PG_TENANT_BENCH_CLUSTER:-}" = own ]; then  # what an earlier run left: the database, the bench_ roles
  dropdb --if-exists bench
  for role in $(psql -XAtc "SELECT rolname FROM pg_roles WHERE rolname LIKE 'bench\_%'"); do psql -Xqc "DROP ROLE $role"; done
fi
createdb bench
psql -X -q -v ON_ERROR_STOP=1 -d bench -f "$dir/setup.sql" >/dev/null
if [ -f "$dir/plans.sql" ]; then psql -X -q -v ON_ERROR_STOP=1 -d bench -f "$dir/plans.sql" >&2; fi
mapfile -t tables < <(sed -n 's/^# variants: //p' "$dir/variants")
mapfile -t baselines < <(sed -n 's/^# baseline: //p' "$dir/variants")
mode=$(sed -n 's/^# mode: //p' "$dir/variants")
mode=${mode:-simple}
declare -A tps_runs user_of
while read -r role vs; do
  for v in $vs; do user_of[$v]=$role; done
done < <(sed -n 's/^# user \([^:]*\): /\1 /p' "$dir/variants")
for round in $(seq 1 "$rounds"); do
  for v in ${tables[*]}; do
    as=()
    if [ -n "${user_of[$v]:-}" ]; then as=(-U "${user_of[$v]}"); fi
    tps=$(pgbench -n -M "$mode" "${as[@]}" -c "$clients" -j "$clients" -T "$seconds" -f "$dir/$v.pgbench" bench 2>&1 |
          sed -nE 's/^tps = ([0-9.]+).*/\1/p')
    tps_runs[$v]="${tps_runs[$v]:-} $tps"
    echo "round $round $v: $tps tps" >&2
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), $(nproc) cores, $clients client(s), ${rounds} rounds x ${seconds} s, pgbench -M $mode, synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), median tps"
for i in "${!tables[@]}"; do
  baseline=${baselines[$i]}
  base=$(echo "${tps_runs[$baseline]}" | median)
  echo
  echo "| variant | tps (median) | runs | ratio to $baseline |"
  echo "|---|---:|---|---:|"
  for v in ${tables[$i]}; do
    m=$(echo "${tps_runs[$v]}" | median)
    printf '| %s | %.0f | %s | %.3f |\n' "$v" "$m" "$(echo ${tps_runs[$v]} | tr ' ' '/')" "$(awk -v m="$m" -v b="$base" 'BEGIN {print m / b}')"
  done
done
