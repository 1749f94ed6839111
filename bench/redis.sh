#!/usr/bin/env bash
# Starts a throwaway redis-server on a loopback port and runs the redis benchmark case:
#   bench/redis.sh [seconds] [rounds] [clients]
# PG_TENANT_BENCH_REDIS_PORT picks the port (default: a free one). Afterwards it prints the Redis
# round trips per 1,000 metered calls: the commands clients sent (INFO commandstats: EVALSHA, EVAL,
# SCRIPT, AUTH, SELECT, PING; the commands the scripts run inside Redis are not round trips) over
# the calls counted on the benchmark's key.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh
port=${PG_TENANT_BENCH_REDIS_PORT:-$(free_port)}
dir=$(mktemp -d /tmp/pg_tenant-bench-redis.XXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.3
PG_TENANT_REDIS_URL="redis://127.0.0.1:$port" bench/run.sh redis "${1:-10}" "${2:-3}" "${3:-1}"
sleep 2.5  # leases and unreported calls go back to Redis within pg_tenant.redis_lease_time + a tick
commands=$(redis-cli -p "$port" INFO commandstats |
           awk -F'[:=,]' '$1 ~ /^cmdstat_(evalsha|eval|script\|load|auth|select|ping)$/ {n += $3} END {print n + 0}')
key=$(redis-cli -p "$port" --scan --pattern 'pg_tenant:bench:*:api_calls:*' | grep -v ':leases$' | head -1)
calls=$(redis-cli -p "$port" GET "$key")
echo
echo "Redis: $commands commands for $calls metered calls: $(awk -v c="$commands" -v n="$calls" 'BEGIN {printf "%.2f", 1000 * c / n}') round trips per 1,000 calls"
redis-cli -p "$port" INFO commandstats | grep '^cmdstat_' >&2
