#!/usr/bin/env bash
# Repeatable server-side cost of a meter call: callgrind instructions per statement in a backend
# (single-user mode, set up under a postmaster first), for SELECT 1, tenant.meter() and the naive
# in-database counter, each PREPAREd once and EXECUTEd.   bench/callgrind_meter.sh [statements]
# With PG_TENANT_BENCH_REDIS_PORT (a redis-server started there on 127.0.0.1, used then stopped)
# also tenant.meter() with the Redis backend (0.9.0: served from leases; the instructions of the
# round trips that take them are counted, not their waits; Redis's own work is not), and
# meter_redis_levels: the same with alert levels on the limit that no call reaches.
# Run as root after scripts/install-deps.sh test and make install; needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-cgmeter.XXXX)
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$bin/initdb" -D "$work/data" -A trust >/dev/null
opts=(-c shared_preload_libraries=pg_tenant)
# Objects made by a standalone backend right after initdb would get built-in OIDs: set up under
# a postmaster.
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-c shared_preload_libraries=pg_tenant -c listen_addresses='' -c unix_socket_directories=$work" start >/dev/null
as_pg psql -X -q -h "$work" -d postgres -c "CREATE DATABASE bench" >/dev/null
PGPASSWORD=unused as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work" -d bench -f bench/meter/setup.sql >/dev/null
as_pg "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null
stmt() {  # variant -> its SQL
  case $1 in
    select_1) echo "SELECT 1" ;;
    meter | meter_redis) echo "SELECT tenant.meter('api_calls')" ;;
    meter_redis_levels) echo "SELECT tenant.meter('api_alerts')" ;;
    naive_counter) echo "UPDATE public.naive_usage SET n = n + 1 WHERE tenant_id = '00000000-0000-0000-0000-100000000001' AND n < max RETURNING n" ;;
  esac
}
gen() {  # variant -> statements: prepared once, executed n times (as an application sends a hot call)
  echo "SET pg_tenant.tenant_id = '00000000-0000-0000-0000-100000000001';"
  if [ "$1" = meter_redis ] || [ "$1" = meter_redis_levels ]; then
    echo "SET pg_tenant.meter_backend = 'redis';"
    echo "SET pg_tenant.redis_url = 'redis://127.0.0.1:$PG_TENANT_BENCH_REDIS_PORT';"
  fi
  echo "SELECT tenant.meter('api_calls');"  # warm: limit cache, meter entry (Redis: connection, lease)
  [ "$1" = meter_redis_levels ] && echo "SELECT tenant.meter('api_alerts');"
  [ "$1" = empty ] && return
  echo "PREPARE hot AS $(stmt "$1");"
  for _ in $(seq 1 "$n"); do echo "EXECUTE hot;"; done
}
count() {
  gen "$1" >"$work/$1.sql"; chown postgres "$work/$1.sql"
  as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$1.cg" \
    "$bin/postgres" --single -D "$work/data" "${opts[@]}" bench <"$work/$1.sql" >"$work/$1.out" 2>"$work/$1.err"
  sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$1.cg"
}
variants="select_1 meter naive_counter"
if [ -n "${PG_TENANT_BENCH_REDIS_PORT:-}" ]; then
  redis-server --port "$PG_TENANT_BENCH_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log"
  sleep 0.3
  redis_pid=$(cat "$work/redis.pid")
  trap 'kill "$redis_pid" 2>/dev/null' EXIT
  variants="$variants meter_redis meter_redis_levels"
fi
empty=$(count empty)
base=$(count select_1)
echo "callgrind, $n statements each, instructions per statement (single-user backend):"
echo
echo "| variant | instructions / statement | ratio to SELECT 1 |"
echo "|---|---:|---:|"
for v in $variants; do
  total=$([ "$v" = select_1 ] && echo "$base" || count "$v")
  awk -v t="$total" -v e="$empty" -v b="$base" -v n="$n" -v v="$v" \
    'BEGIN { printf "| %s | %.0f | %.3f |\n", v, (t - e) / n, (t - e) / (b - e) }'
done
[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
