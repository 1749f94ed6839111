#!/usr/bin/env bash
# Two versions side by side, in server instructions (callgrind: repeatable whatever else the
# machine does). Builds and installs an earlier release (a git ref, default v0.4.0) and then the
# working tree, and runs the same statements against each in a single-user backend. Each case
# runs twice, with k and 2k statements: the difference divided by k is the cost of one
# statement, with every one-time cost (startup, first calls, planning) cancelled out. DDL cases
# run in a backend of a postmaster started under callgrind (event triggers do not fire in a
# single-user backend); the others in a single-user backend.
#   bench/callgrind_versions.sh [ref] [statements] [ddl_statements]
#   (CASES="meter enter_tenant" runs only those cases; KEEP=1 keeps the callgrind files;
#   BENCH_DIR the work directory's prefix; meter_key_new and meter_key_repeat, 0.9.0's keyed
#   calls, run only when named in CASES, and only against the working tree unless REF_KEYS=1)
# Prints, per case, instructions per statement for both and the ratio (working tree / ref).
# Leaves the working tree's build installed. Run as root after scripts/install-deps.sh test;
# needs valgrind and git history with the ref.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-v0.4.0}
n=${2:-1000}
n_ddl=${3:-200}
bin=$(pg_config --bindir)
root=$(pwd)
work=$(mktemp -d "${BENCH_DIR:-/tmp/pg_tenant-cgversions}.XXXX")
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
tenant=00000000-0000-0000-0000-100000000001

# The setup every version shares (the SQL API of 0.4.0 and later).
cat >"$work/setup.sql" <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.plans (name, upgrade_url) VALUES ('bench', 'https://example.com/upgrade');
INSERT INTO tenant.tenants (id, name, slug, plan) VALUES ('$tenant', 'Bench', 'bench', 'bench');
SELECT tenant.set_limit('bench', 'api_calls', 1000000000000, 'month');
SELECT tenant.set_limit('bench', 'capped', 0);
SELECT tenant.set_limit('bench', 'items', 1000000000);
CREATE SCHEMA g;
CREATE TABLE public.items (tenant_id uuid NOT NULL, id bigint, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('public.items');
INSERT INTO public.items SELECT '$tenant', i, 'row ' || i FROM generate_series(1, 10000) AS i;
CREATE TABLE public.counted (tenant_id uuid NOT NULL, id bigserial, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('public.counted');
SELECT tenant.limit_rows('public.counted', 'items');
CREATE TABLE public.parts (tenant_id uuid NOT NULL, id int) PARTITION BY LIST (id);
SELECT tenant.protect('public.parts');
SELECT tenant.limit_rows('public.parts', 'part_rows');
SELECT format('CREATE TABLE g.p%s (tenant_id uuid NOT NULL, id int)', i) FROM generate_series(1, 2 * $n_ddl) AS i \gexec
SELECT count(*) FROM generate_series(1, 2 * $n_ddl) AS i, tenant.protect(format('g.p%s', i)::regclass);
SELECT format('CREATE TABLE g.d%s (tenant_id uuid NOT NULL, id int)', i) FROM generate_series(1, 2 * $n_ddl) AS i \gexec
-- Row level security binds non-superusers only: the reads and writes run as this role.
CREATE ROLE bench_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT SELECT, INSERT ON public.items, public.counted TO bench_app;
GRANT USAGE ON SEQUENCE public.counted_id_seq TO bench_app;
VACUUM ANALYZE;
SQL

# case count -> the statements it runs (after the preamble every case shares)
statements() {
  local k=$2
  case $1 in
    meter) echo "PREPARE hot AS SELECT tenant.meter('api_calls');"; repeat "EXECUTE hot;" "$k" ;;
    meter_unlimited) echo "PREPARE hot AS SELECT tenant.meter('free_calls');"; repeat "EXECUTE hot;" "$k" ;;
    # 0.9.0: idempotency keys (working tree only): a new key each call, and one key repeated
    meter_key_new) echo "PREPARE hot(text) AS SELECT tenant.meter('api_calls', 1, \$1);"
      for i in $(seq 1 "$k"); do echo "EXECUTE hot('event-$i');"; done ;;
    meter_key_repeat) echo "PREPARE hot AS SELECT tenant.meter('api_calls', 1, 'event-0');"; repeat "EXECUTE hot;" "$k" ;;
    try_meter_refused) echo "PREPARE hot AS SELECT tenant.try_meter('capped');"; repeat "EXECUTE hot;" "$k" ;;
    meter_limit_error) echo "PREPARE hot AS SELECT tenant.meter('capped');"; repeat "EXECUTE hot;" "$k" ;;
    enter_tenant) echo "PREPARE hot AS SELECT tenant.set('$tenant'::uuid);"; repeat "EXECUTE hot;" "$k" ;;
    point_select) echo "SET ROLE bench_app; PREPARE hot(bigint) AS SELECT v FROM public.items WHERE id = \$1;"
      for i in $(seq 1 "$k"); do echo "EXECUTE hot($(( (i * 7919) % 10000 + 1 )));"; done ;;
    # 0.7.0's pg_tenant.missing_context = error (on its own line: an earlier version refuses it)
    point_select_strict) echo "SET pg_tenant.missing_context = error;"
      echo "SET ROLE bench_app; PREPARE hot(bigint) AS SELECT v FROM public.items WHERE id = \$1;"
      for i in $(seq 1 "$k"); do echo "EXECUTE hot($(( (i * 7919) % 10000 + 1 )));"; done ;;
    quota_insert) echo "SET ROLE bench_app; PREPARE hot AS INSERT INTO public.counted DEFAULT VALUES;"; repeat "EXECUTE hot;" "$k" ;;
    quota_insert_100) echo "SET ROLE bench_app; PREPARE hot AS INSERT INTO public.counted (tenant_id) SELECT '$tenant' FROM generate_series(1, 100);"
      repeat "EXECUTE hot;" "$k" ;;
    create_table) for i in $(seq 1 "$k"); do echo "CREATE TABLE g.c$i (tenant_id uuid NOT NULL, id int);"; done ;;
    # a new partition of a protected parent with a row quota: protected and counted by the door
    create_partition) for i in $(seq 1 "$k"); do echo "CREATE TABLE g.q$i PARTITION OF public.parts FOR VALUES IN ($i);"; done ;;
    alter_protected) for i in $(seq 1 "$k"); do echo "ALTER TABLE g.p$i ADD COLUMN extra int;"; done ;;
    drop_table) for i in $(seq 1 "$k"); do echo "DROP TABLE g.d$i;"; done ;;
  esac
}
per_case() {  # case -> k, the statements of its shorter run
  case $1 in
    create_table|create_partition|alter_protected|drop_table) echo "$n_ddl" ;;
    quota_insert_100) echo "$((n / 10))" ;;
    *) echo "$n" ;;
  esac
}
repeat() { for _ in $(seq 1 "$2"); do echo "$1"; done; }
cases=(meter meter_unlimited try_meter_refused meter_limit_error enter_tenant point_select point_select_strict quota_insert
       quota_insert_100 create_table create_partition alter_protected drop_table)
[ -n "${CASES:-}" ] && read -r -a cases <<<"$CASES"  # CASES="meter enter_tenant": only those

# version -> runs every case against the installed build; writes $work/<version>.<case>
measure() {
  local version=$1 data="$work/$1-data"
  as_pg "$bin/initdb" -D "$data" -A trust >/dev/null
  as_pg "$bin/pg_ctl" -D "$data" -l "$work/$version.log" -w \
    -o "-c shared_preload_libraries=pg_tenant -c listen_addresses='' -c unix_socket_directories=$work" start >/dev/null
  as_pg psql -X -q -h "$work" -d postgres -c "CREATE DATABASE bench" >/dev/null
  as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$work" -d bench -f "$work/setup.sql" >/dev/null
  as_pg "$bin/pg_ctl" -D "$data" -w stop >/dev/null
  for c in "${cases[@]}"; do
    # the ref has no keyed meter before 0.9.0 (REF_KEYS=1: it has, measure it too)
    [ "$version" = ref ] && [[ $c = meter_key_* ]] && [ -z "${REF_KEYS:-}" ] && continue
    k=$(per_case "$c")
    for run in 1 2; do
      {
        echo "SET pg_tenant.tenant_id = '$tenant';"
        echo "SET pg_tenant.guarded_schemas = 'public, g';"
        echo "SELECT tenant.meter('api_calls'), tenant.try_meter('capped'), tenant.current_id();"  # warm caches
        statements "$c" "$((k * run))"
      } >"$work/$c.sql"
      chmod 644 "$work/$c.sql"
      # Each run on a copy of the data directory, so every run starts from the same state.
      rm -rf "$data-run" && cp -a "$data" "$data-run"
      case $c in
        create_table|create_partition|alter_protected|drop_table)
          as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$version.$c.$run.%p.cg" \
            "$bin/postgres" -D "$data-run" -c shared_preload_libraries=pg_tenant -c listen_addresses='' \
            -c unix_socket_directories="$work" >"$work/$version.$c.$run.log" 2>&1 &
          for _ in $(seq 1 120); do as_pg pg_isready -q -h "$work" && break; sleep 1; done
          local pid
          pid=$( (echo "SELECT pg_backend_pid();"; cat "$work/$c.sql") |
                 as_pg psql -X -q -At -h "$work" -d bench 2>"$work/$version.$c.$run.err" | sed -n 1p)
          as_pg "$bin/pg_ctl" -D "$data-run" -w stop >/dev/null
          mv "$work/$version.$c.$run.$pid.cg" "$work/$version.$c.$run.cg"
          ;;
        *)
          as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$version.$c.$run.cg" \
            "$bin/postgres" --single -D "$data-run" -c shared_preload_libraries=pg_tenant bench \
            <"$work/$c.sql" >"$work/$version.$c.$run.out" 2>"$work/$version.$c.$run.err"
          ;;
      esac
      sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$version.$c.$run.cg" >"$work/$version.$c.$run"
    done
  done
  rm -rf "$data" "$data-run"
}

echo "building $ref ..."
git worktree add --detach "$work/ref" "$ref" >/dev/null 2>&1
make -s -C "$work/ref" -j2 >/dev/null 2>&1 && make -s -C "$work/ref" install >/dev/null
measure ref
echo "building the working tree ..."
make -s -C "$root" -j2 >/dev/null && make -s -C "$root" install >/dev/null
measure new
git worktree remove --force "$work/ref"

echo
echo "callgrind, instructions per statement (single-user backend; runs of k and 2k statements, difference / k):"
echo
echo "| case | k | $ref | working tree | ratio |"
echo "|---|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  k=$(per_case "$c")
  if [ ! -f "$work/ref.$c.1" ]; then  # working tree only
    awk -v c="$c" -v k="$k" -v w1="$(cat "$work/new.$c.1")" -v w2="$(cat "$work/new.$c.2")" \
      'BEGIN { printf "| %s | %d | — | %.0f | — |\n", c, k, (w2 - w1) / k }'
    continue
  fi
  awk -v c="$c" -v k="$k" -v r1="$(cat "$work/ref.$c.1")" -v r2="$(cat "$work/ref.$c.2")" \
      -v w1="$(cat "$work/new.$c.1")" -v w2="$(cat "$work/new.$c.2")" \
    'BEGIN { a = (r2 - r1) / k; b = (w2 - w1) / k; printf "| %s | %d | %.0f | %.0f | %.3f |\n", c, k, a, b, b / a }'
done
[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
