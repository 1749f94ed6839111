#!/usr/bin/env bash
# Exact row quotas under concurrency (tenant.limit_rows): 16 pgbench clients insert for the same
# tenant (limit 5) under READ COMMITTED, REPEATABLE READ and SERIALIZABLE, each level three
# times. Afterwards the table holds exactly 5 of the tenant's rows and tenant.row_counts says 5:
# no interleaving passes the limit. Also: two-row inserts stop at exactly 4 (a statement that
# would cross the limit fails whole), concurrent inserts and deletes leave the count equal to
# the rows, COPY is counted, and limit_rows refuses to count under REPEATABLE READ.
# Under REPEATABLE READ and SERIALIZABLE, conflicting writers fail with 40001 and pgbench retries
# them (--max-tries); a client that meets the limit (TN006) stops, as an application would
# report the error. The clients run as a non-superuser application role (row level security on).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_quota_conc
clients=16
transactions=40   # per client: far more than the limit, so the limit is certainly reached
limit=5
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db <<SQL >/dev/null
CREATE EXTENSION pg_tenant;
DO \$\$ BEGIN
    CREATE ROLE pt_qc_owner NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
DO \$\$ BEGIN
    CREATE ROLE pt_qc_app NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
GRANT EXECUTE ON FUNCTION tenant.set(text), tenant.protect(regclass, name), tenant.limit_rows(regclass, text)
   TO pt_qc_owner, pt_qc_app;
GRANT CREATE ON SCHEMA public TO pt_qc_owner;
SELECT tenant.create('Quota A', 'qc-a');
SELECT tenant.create('Quota B', 'qc-b');
SET ROLE pt_qc_owner;
CREATE TABLE public.qc_items (tenant_id uuid NOT NULL, id bigserial, note text, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('public.qc_items');
SELECT tenant.limit_rows('public.qc_items', 'qc_items');
GRANT SELECT, INSERT, DELETE ON public.qc_items TO pt_qc_app;
GRANT USAGE ON SEQUENCE public.qc_items_id_seq TO pt_qc_app;
RESET ROLE;
SELECT tenant.set_tenant_limit(id, 'qc_items', $limit) FROM tenant.tenants WHERE slug = 'qc-a';
SQL

work=$(mktemp -d)
chmod 755 "$work"
cat >"$work/insert_one.pgbench" <<'EOF'
BEGIN;
SELECT tenant.set('qc-a');
INSERT INTO public.qc_items (note) VALUES ('one');
COMMIT;
EOF
cat >"$work/insert_two.pgbench" <<'EOF'
BEGIN;
SELECT tenant.set('qc-a');
INSERT INTO public.qc_items (note) SELECT 'two' FROM generate_series(1, 2);
COMMIT;
EOF
cat >"$work/insert_delete.pgbench" <<'EOF'
\set op random(1, 3)
BEGIN;
SELECT tenant.set('qc-a');
\if :op = 1
DELETE FROM public.qc_items WHERE id = (SELECT min(id) FROM public.qc_items);
\else
INSERT INTO public.qc_items (note) VALUES ('mixed');
\endif
COMMIT;
EOF

tenant_a=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'qc-a'")
rows_a() { q $db "SELECT count(*) FROM public.qc_items WHERE tenant_id = '$tenant_a'"; }
counted_a() { q $db "SELECT coalesce((SELECT rows FROM tenant.row_counts WHERE tenant_id = '$tenant_a' AND resource = 'qc_items'), 0)"; }

# run LEVEL SCRIPT: 16 clients; prints pgbench's output to $work/out.
run() {
  local level=$1 script=$2 tries=()
  [ "$level" != "read committed" ] && tries=(--max-tries=10000)
  q $db "TRUNCATE public.qc_items" >/dev/null
  PGOPTIONS="-c role=pt_qc_app -c default_transaction_isolation=${level// /\\ }" \
    pgbench -n -c $clients -j $clients -t $transactions "${tries[@]}" -f "$work/$script" $db >"$work/out" 2>&1
  # pgbench ran (the run's summary is there): a client that could not connect is a failure
  grep -q '^number of transactions actually processed' "$work/out" || { cat "$work/out"; fail "pgbench did not run ($level, $script)"; }
}
# The clients that stopped, stopped at the limit and for nothing else.
limit_reached() { grep -q 'limit of "qc_items" reached' "$work/out"; }
no_other_error() {
  ! grep -E '^pgbench: error:' "$work/out" |
    grep -vqE 'aborted in command [0-9]+ query 0: ERROR:  limit of "qc_items" reached|^pgbench: error: Run was aborted'
}

for level in "read committed" "repeatable read" "serializable"; do
  for round in 1 2 3; do
    run "$level" insert_one.pgbench
    check "$level #$round: the clients met the limit (TN006)" limit_reached
    check "$level #$round: no other error" no_other_error
    [ "$round" = 1 ] && [ "$level" != "read committed" ] &&
      echo "    $(grep -E 'number of (transactions retried|total retries)' "$work/out" | tr '\n' ' ')"
    check_eq "$level #$round: exactly $limit rows of the tenant" "$limit" "$(rows_a)"
    check_eq "$level #$round: tenant.row_counts says $limit" "$limit" "$(counted_a)"
  done
  run "$level" insert_two.pgbench
  check "$level: two-row inserts met the limit" limit_reached
  check_eq "$level: two-row inserts stop at exactly 4 (none crosses the limit)" 4 "$(rows_a)"
  check_eq "$level: two-row inserts: tenant.row_counts says 4" 4 "$(counted_a)"
  # Longer contention: 16 clients race for 200 rows.
  q $db "SELECT tenant.set_tenant_limit(id, 'qc_items', 200) FROM tenant.tenants WHERE slug = 'qc-a'" >/dev/null
  run "$level" insert_one.pgbench
  check "$level: limit 200: met, no other error" eval 'limit_reached && no_other_error'
  echo "    $(grep -E 'number of (transactions actually processed|transactions retried)' "$work/out" | tr '\n' ' ')"
  check_eq "$level: limit 200: exactly 200 rows, counted 200" "200 200" "$(rows_a) $(counted_a)"
  q $db "SELECT tenant.set_tenant_limit(id, 'qc_items', $limit) FROM tenant.tenants WHERE slug = 'qc-a'" >/dev/null
  run "$level" insert_delete.pgbench
  check "$level: inserts and deletes: no error but the limit" no_other_error
  rows=$(rows_a)
  check_eq "$level: inserts and deletes: tenant.row_counts equals the rows ($rows)" "$rows" "$(counted_a)"
  check "$level: inserts and deletes: at most $limit rows" [ "$rows" -le "$limit" ]
done
if ! grep -q . "$work/out"; then fail "pgbench produced no output"; fi

# COPY (the superuser: COPY FROM is refused with row level security) is counted, and a COPY that
# would pass the limit loads nothing.
q $db "TRUNCATE public.qc_items" >/dev/null
printf '%s\tc1\n%s\tc2\n%s\tc3\n' "$tenant_a" "$tenant_a" "$tenant_a" |
  psql -X -q -d $db -c "COPY public.qc_items (tenant_id, note) FROM STDIN" 2>/dev/null
check_eq "COPY of 3 rows is counted" 3 "$(counted_a)"
out=$(printf '%s\tc4\n%s\tc5\n%s\tc6\n' "$tenant_a" "$tenant_a" "$tenant_a" |
      psql -X -q -d $db -c "COPY public.qc_items (tenant_id, note) FROM STDIN" 2>&1)
check "a COPY that passes the limit fails (TN006)" grep -q 'limit of "qc_items" reached' <<<"$out"
check_eq "... and loads nothing" "3 3" "$(rows_a) $(counted_a)"

# Counting existing rows needs a snapshot taken after the triggers exist: READ COMMITTED only.
q $db "CREATE TABLE public.qc_other (tenant_id uuid NOT NULL, id int)" >/dev/null
q $db "SELECT tenant.protect('public.qc_other')" >/dev/null
out=$(psql -X -q -d $db -v VERBOSITY=verbose -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
           -c "SELECT tenant.limit_rows('public.qc_other', 'qc_other')" -c "COMMIT" 2>&1)
check "limit_rows under REPEATABLE READ is refused (25000)" grep -q '25000' <<<"$out"

rm -rf "$work"
dropdb $db
for role in pt_qc_app pt_qc_owner; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role" >/dev/null; done
