#!/usr/bin/env bash
# Benchmarks (not tests): each case runs its variants side by side in one throwaway cluster,
# interleaved over several rounds, and prints a markdown table of median throughput and ratios.
#   bench/run.sh [case] [seconds per run] [rounds] [clients]
# Cases: context (tenant.set vs SET LOCAL vs look-up + SET LOCAL).
# Run as root on Debian 12 after scripts/install-deps.sh test and make install.
set -euo pipefail
cd "$(dirname "$0")/.."
case_name=${1:-context}
seconds=${2:-10}
rounds=${3:-5}
clients=${4:-1}
. test/lib.sh

if [ -z "${PG_TENANT_BENCH_INSIDE:-}" ]; then
  export PG_TENANT_BENCH_INSIDE=1
  exec pg_virtualenv -c "-p $(free_port)" -o shared_preload_libraries=pg_tenant \
    -o shared_buffers=256MB -o synchronous_commit=off "$0" "$case_name" "$seconds" "$rounds" "$clients"
fi

dir=bench/$case_name
createdb bench
psql -X -q -v ON_ERROR_STOP=1 -d bench -f "$dir/setup.sql" >/dev/null
variants=$(sed -n 's/^# variants: //p' "$dir/variants")
baseline=$(sed -n 's/^# baseline: //p' "$dir/variants")
declare -A tps_runs
for round in $(seq 1 "$rounds"); do
  for v in $variants; do
    tps=$(pgbench -n -M simple -c "$clients" -j "$clients" -T "$seconds" -f "$dir/$v.pgbench" bench 2>&1 |
          sed -nE 's/^tps = ([0-9.]+).*/\1/p')
    tps_runs[$v]="${tps_runs[$v]:-} $tps"
    echo "round $round $v: $tps tps" >&2
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(echo "${tps_runs[$baseline]}" | median)
echo
echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), $(nproc) cores, $clients client(s), ${rounds} rounds x ${seconds} s, median tps"
echo
echo "| variant | tps (median) | runs | ratio to $baseline |"
echo "|---|---:|---|---:|"
for v in $variants; do
  m=$(echo "${tps_runs[$v]}" | median)
  printf '| %s | %.0f | %s | %.3f |\n' "$v" "$m" "$(echo ${tps_runs[$v]} | tr ' ' '/')" "$(awk -v m="$m" -v b="$base" 'BEGIN {print m / b}')"
done
