#!/usr/bin/env bash
# Repeatable cost of the isolation case: callgrind instructions per transaction for the nine
# bench/isolation variants, in a single-user backend (no client, network or scheduler noise).
#   bench/callgrind_isolation.sh [transactions]
# Run as root after scripts/install-deps.sh test and make install; needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-cgiso.XXXX)
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$bin/initdb" -D "$work/data" -A trust >/dev/null
opts=(-c shared_preload_libraries=pg_tenant -c shared_buffers=1GB)
single() { as_pg "$bin/postgres" --single -D "$work/data" "${opts[@]}" "$@"; }
# Setup under a postmaster: objects a standalone backend creates right after initdb get OIDs
# below FirstNormalObjectId, and check_enable_rls() skips RLS for those as built-in.
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w -o "-c shared_preload_libraries=pg_tenant -c shared_buffers=1GB -c listen_addresses='' -c unix_socket_directories=$work -p 5961" start >/dev/null
as_pg "$bin/createdb" -h "$work" -p 5961 bench
PGPASSWORD=x as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p 5961 -d bench -f bench/isolation/setup.sql >/dev/null
as_pg "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null
prewarm="SELECT pg_prewarm(c.oid) FROM pg_class c WHERE c.relname LIKE 'items%';"
gen() {  # variant -> statements
  local f=bench/isolation/$1.pgbench role=bench_app
  case $1 in *_no_rls) role=bench_bypass ;; esac
  echo "$prewarm"
  echo "BEGIN;"; echo "SELECT count(tenant.set(id)) FROM tenant.tenants;"; echo "COMMIT;"
  echo "SET ROLE $role;"
  [ "$2" = empty ] && return
  body=$(grep -v -e '^\\' -e '^--' "$f" | tr '\n' ' ' | sed 's/;/;\n/g')
  awk -v n="$n" -v body="$body" 'BEGIN { srand(42);
    for (i = 0; i < n; i++) {
      t = 1 + int(rand() * 1000); k = t + 1000 * int(rand() * 1000); s = 1704067200 + int(rand() * 27000000);
      b = body; gsub(/:n/, sprintf("%.0f", 100000000000 + t), b); gsub(/:k/, sprintf("%.0f", k), b); gsub(/:s/, sprintf("%.0f", s), b); print b } }'
}
count() {  # variant mode -> total instructions
  gen "$1" "$2" >"$work/$1.$2.sql"; chown postgres "$work/$1.$2.sql"
  as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$1.$2.cg" \
    "$bin/postgres" --single -D "$work/data" "${opts[@]}" bench <"$work/$1.$2.sql" >"$work/$1.$2.out" 2>"$work/$1.$2.err"
  if grep -q ERROR "$work/$1.$2.out" "$work/$1.$2.err"; then grep ERROR "$work/$1.$2.out" "$work/$1.$2.err" | head -3 >&2; fi
  sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$1.$2.cg"
}
empty=$(count point_no_rls empty)
echo "callgrind, $n transactions each, instructions per transaction (single-user backend, buffers prewarmed, tenant cache warm):"
echo
echo "| variant | instructions / transaction | ratio to no_rls |"
echo "|---|---:|---:|"
for q in point range aggregate; do
  base=$(count ${q}_no_rls run)
  for v in no_rls protect handwritten; do
    total=$([ $v = no_rls ] && echo "$base" || count ${q}_$v run)
    awk -v t="$total" -v e="$empty" -v b="$base" -v n="$n" -v v="${q}_$v" 'BEGIN { printf "| %s | %.0f | %.3f |\n", v, (t - e) / n, (t - e) / (b - e) }'
  done
done
rm -rf "$work"
