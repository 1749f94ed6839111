#!/usr/bin/env bash
# Per-tenant statistics in server instructions (callgrind: repeatable whatever else the machine
# does): the same build, pg_tenant.stats on against off (a SET on its own line), each case in a
# single-user backend of a copy of one data directory, run twice with k and 2k statements so
# that (difference / k) is the cost of one statement, startup and first calls cancelled out.
#   bench/callgrind_stats.sh [statements]     (KEEP=1 keeps the callgrind files; CASES="a b" runs those)
# Cases: point_select (a prepared read of a protected table, as a non-superuser role, in one
# tenant); enter_and_select (tenant.set of a tenant among 1,000, then the read: two statements
# of that tenant); new_tenants (tenant.set of a tenant never seen before, every statement: with
# pg_tenant.stats_max_tenants = 1000, eviction runs every 250 statements; this one includes the
# longer file saved at exit, a few hundred rows more).
# Needs valgrind and the build installed (make install); uses bench/stats/setup.sql.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh
n=${1:-1000}
bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-cgstats.XXXX)
[ "$(id -u)" = 0 ] && chown postgres "$work"
data=$work/data
as_pg "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -l "$work/log" -w \
  -o "-c shared_preload_libraries=pg_tenant -c listen_addresses='' -c unix_socket_directories=$work" start >/dev/null
as_pg psql -X -q -h "$work" -U postgres -d postgres -c "CREATE DATABASE bench" >/dev/null
as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d bench -f bench/stats/setup.sql >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -w stop >/dev/null

statements() {  # case k -> the statements
  local k=$2 i
  case $1 in
    point_select) echo "SELECT tenant.set_session('t1'); SET ROLE bench_app; PREPARE hot(int) AS SELECT v FROM public.items WHERE id = \$1;"
      for i in $(seq 1 "$k"); do echo "EXECUTE hot($(( i % 100 + 1 )));"; done ;;
    enter_and_select) echo "SET ROLE bench_app; PREPARE enter(text) AS SELECT tenant.set(\$1); PREPARE hot(int) AS SELECT v FROM public.items WHERE id = \$1;"
      # every tenant's row made first, in both runs alike (the rows, and so the file saved at
      # exit, are the same size in both: only the k statements differ)
      for i in $(seq 1 1000); do echo "EXECUTE enter('t$i');"; done
      for i in $(seq 1 "$((k / 2))"); do echo "EXECUTE enter('t$(( (i * 7919) % 1000 + 1 ))'); EXECUTE hot($(( i % 100 + 1 )));"; done ;;
    new_tenants) echo "SET ROLE bench_app; PREPARE enter(text) AS SELECT tenant.set(\$1);"
      for i in $(seq 1 "$k"); do echo "EXECUTE enter('t$(( 1000 + i + (k == n ? 0 : 50000) ))');"; done ;;
  esac
}
cases=(point_select enter_and_select new_tenants)
[ -n "${CASES:-}" ] && read -r -a cases <<<"$CASES"  # CASES="point_select": only those
for c in "${cases[@]}"; do
  for setting in off on; do
    for run in 1 2; do
      {
        echo "SET pg_tenant.stats = $setting;"
        # warm caches: the registry cache of the tenants used (a line is one transaction, so
        # "EXECUTE enter(..); EXECUTE hot(..);" on one line runs in the tenant entered)
        echo "SELECT count(tenant.set('t' || i)) FROM generate_series(1, 1000) AS i;"
        statements "$c" "$((n * run))"
      } >"$work/$c.sql"
      chmod 644 "$work/$c.sql"
      rm -rf "$data-run" && cp -a "$data" "$data-run"
      as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$c.$setting.$run.cg" \
        "$bin/postgres" --single -D "$data-run" -c shared_preload_libraries=pg_tenant bench \
        <"$work/$c.sql" >"$work/$c.$setting.$run.out" 2>"$work/$c.$setting.$run.err"
      sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$c.$setting.$run.cg" >"$work/$c.$setting.$run"
    done
  done
done
echo
echo "callgrind, instructions per statement (single-user backend; runs of k and 2k statements, difference / k):"
echo
echo "| case | k | stats off | stats on | on - off | on / off |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  awk -v c="$c" -v k="$n" -v f1="$(cat "$work/$c.off.1")" -v f2="$(cat "$work/$c.off.2")" \
      -v o1="$(cat "$work/$c.on.1")" -v o2="$(cat "$work/$c.on.2")" \
    'BEGIN { a = (f2 - f1) / k; b = (o2 - o1) / k; printf "| %s | %d | %.0f | %.0f | %.0f | %.4f |\n", c, k, a, b, b - a, b / a }'
done
[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
