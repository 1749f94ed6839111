#!/usr/bin/env bash
# Starts a throwaway redis-server on a free loopback port and runs the redis benchmark case:
#   bench/redis.sh [seconds] [rounds] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh
port=$(free_port)
dir=$(mktemp -d /tmp/pg_tenant-bench-redis.XXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.3
PG_TENANT_REDIS_URL="redis://127.0.0.1:$port" bench/run.sh redis "${1:-10}" "${2:-3}" "${3:-1}"
