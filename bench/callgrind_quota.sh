#!/usr/bin/env bash
# The cost of an exact row quota in server instructions (callgrind: repeatable whatever else the
# machine does), with the installed build: the same inserts into a protected table without a
# quota (plain) and with tenant.limit_rows (quota), as an application role (row level security
# on), each case in a single-user backend run with k and 2k transactions, difference / k (startup,
# first calls and planning cancel out). Each transaction is the quota benchmark's (bench/quota):
# BEGIN; SELECT tenant.set(<one of 100 tenants, in turn: every one seen before the runs differ>); <work>; COMMIT, the work being
#   single: an INSERT of one row
#   batch:  an INSERT ... SELECT of 100 rows
#   loop:   100 single-row INSERT statements
#   bench/callgrind_quota.sh [transactions]      (CASES="single loop" for only those)
# PG_CONFIG picks the PostgreSQL installation (default: pg_config in PATH); it never installs.
# Run as root (the backends run as postgres); needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-400}
pg_config=${PG_CONFIG:-pg_config}
bin=$("$pg_config" --bindir)
work=$(mktemp -d /tmp/pg_tenant-cgquota.XXXX)
chown postgres "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cat >"$work/setup.sql" <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i))::uuid, 'Bench ' || i, 'bench-' || i
  FROM generate_series(1, 1000) AS i;
SELECT tenant.set_limit('free', 'items', 1000000000000000);
CREATE TABLE public.plain (tenant_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, v text, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.quota (tenant_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('public.plain');
SELECT tenant.protect('public.quota');
-- A row of every tenant in both tables, so that every counter exists (as in a benchmark that ran
-- a while): its creation, once per tenant, is not what is measured.
INSERT INTO public.plain (tenant_id, v) SELECT id, 'seed' FROM tenant.tenants;
INSERT INTO public.quota (tenant_id, v) SELECT id, 'seed' FROM tenant.tenants;
SELECT tenant.limit_rows('public.quota', 'items');
CREATE ROLE bench_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT SELECT, INSERT ON public.plain, public.quota TO bench_app;
GRANT EXECUTE ON FUNCTION tenant.set(uuid) TO bench_app;
VACUUM ANALYZE;
SQL

repeat() { for _ in $(seq 1 "$2"); do echo "$1"; done; }
# case table units -> the statements
statements() {
  local k=$3 work
  case $1 in
    single) echo "PREPARE hot AS INSERT INTO public.$2 (v) VALUES ('single');"; work="EXECUTE hot;" ;;
    batch) echo "PREPARE hot AS INSERT INTO public.$2 (v) SELECT 'batch' FROM generate_series(1, 100);"
      work="EXECUTE hot;" ;;
    loop) echo "PREPARE hot AS INSERT INTO public.$2 (v) VALUES ('loop');"
      work=$(repeat "EXECUTE hot;" 100) ;;
  esac
  echo "PREPARE enter(uuid) AS SELECT tenant.set(\$1);"
  for i in $(seq 1 "$k"); do
    echo "BEGIN;"
    echo "EXECUTE enter('00000000-0000-0000-0000-$((100000000000 + (i * 7919) % 100 + 1))');"
    echo "$work"
    echo "COMMIT;"
  done
}
units() { case $1 in single) echo "$n" ;; *) echo "$((n / 10))" ;; esac; }
cases=(single batch loop)
[ -n "${CASES:-}" ] && read -r -a cases <<<"$CASES"

data=$work/data
as_pg "$bin/initdb" -D "$data" -A trust >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -l "$work/setup.log" -w \
  -o "-c shared_preload_libraries=pg_tenant -c listen_addresses='' -c unix_socket_directories=$work" start >/dev/null
as_pg psql -X -q -h "$work" -d postgres -c "CREATE DATABASE bench" >/dev/null
as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work" -d bench -f "$work/setup.sql" >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -w stop >/dev/null

for c in "${cases[@]}"; do
  k=$(units "$c")
  for table in plain quota; do
    for run in 1 2; do
      {
        echo "SET ROLE bench_app;"
        statements "$c" "$table" "$((k * run))"
      } >"$work/$c.sql"
      chmod 644 "$work/$c.sql"
      rm -rf "$data-run" && cp -a "$data" "$data-run"
      as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$c.$table.$run.cg" \
        "$bin/postgres" --single -D "$data-run" -c shared_preload_libraries=pg_tenant bench \
        <"$work/$c.sql" >"$work/$c.$table.$run.out" 2>"$work/$c.$table.$run.err"
      if grep -q ERROR "$work/$c.$table.$run.out"; then grep ERROR "$work/$c.$table.$run.out" | head -n 3 >&2; fi
      sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$c.$table.$run.cg" >"$work/$c.$table.$run"
    done
  done
done
rm -rf "$data" "$data-run"

echo "callgrind, instructions per transaction ($("$bin/postgres" --version), single-user backend; runs of k and 2k transactions, difference / k):"
echo
echo "| case | k | plain | quota | quota - plain | quota / plain |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  k=$(units "$c")
  awk -v c="$c" -v k="$k" -v p1="$(cat "$work/$c.plain.1")" -v p2="$(cat "$work/$c.plain.2")" \
      -v q1="$(cat "$work/$c.quota.1")" -v q2="$(cat "$work/$c.quota.2")" \
    'BEGIN { p = (p2 - p1) / k; q = (q2 - q1) / k; printf "| %s | %d | %.0f | %.0f | %.0f | %.3f |\n", c, k, p, q, q - p, q / p }'
done
[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
