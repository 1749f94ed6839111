#!/usr/bin/env bash
# The tenant key (src/policy/tenant_key.cpp), which replaced each scoped table's foreign key to
# tenant.tenants in 0.9.0:
#  - its guarantees: a row of an unregistered tenant is refused (23503) on INSERT and UPDATE; a
#    deleted or purged tenant's rows are gone from every scoped table (plain, partitioned with a
#    sub-partitioned and a detached partition, inheritance child, another tenant column); an id in
#    use cannot change, tenant.tenants cannot be truncated;
#  - the race: a tenant deleted while another transaction inserts a row for it, both orders, at
#    READ COMMITTED and REPEATABLE READ, two psql sessions: never an orphan row (the loser waits,
#    then is erased, refused with 23503, or fails to serialize with 40001);
#  - its cost is linear: protect_all of 500 tables takes about as long with 1,500 tables already
#    protected as with none (with one foreign key per table it grew with their number: each added
#    two triggers to tenant.tenants and rebuilt its relcache entry with all the others).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_tenant_key
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT tenant.create('Key ' || i, 'tk-' || i) FROM generate_series(1, 8) AS i;
CREATE SCHEMA tk;
CREATE TABLE tk.items (id bigserial PRIMARY KEY, tenant_id uuid, note text);
CREATE TABLE tk.events (tenant_id uuid, k int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE tk.events_1 PARTITION OF tk.events FOR VALUES IN (1);
CREATE TABLE tk.events_2 PARTITION OF tk.events FOR VALUES IN (2, 3) PARTITION BY LIST (k);
CREATE TABLE tk.events_2a PARTITION OF tk.events_2 FOR VALUES IN (2);
CREATE TABLE tk.events_9 PARTITION OF tk.events FOR VALUES IN (9);
CREATE TABLE tk.notes (tenant_id uuid, body text);
CREATE TABLE tk.notes_old (archived date) INHERITS (tk.notes);
CREATE TABLE tk.orgs (org uuid, name text);
SELECT count(*) FROM tenant.protect_all('tk');
SELECT count(*) FROM tenant.protect('tk.orgs', 'org');
-- A detached partition stays scoped, with a key of its own.
ALTER TABLE tk.events DETACH PARTITION tk.events_9;
SQL
tid() { q $db "SELECT id FROM tenant.tenants WHERE slug = '$1'"; }
fill() {  # one row of tenant $1 in every table
  q $db "INSERT INTO tk.items (tenant_id, note) VALUES ('$1', 'n');
         INSERT INTO tk.events VALUES ('$1', 1), ('$1', 2);
         INSERT INTO tk.events_9 VALUES ('$1', 9);
         INSERT INTO tk.notes VALUES ('$1', 'b'); INSERT INTO tk.notes_old VALUES ('$1', 'o', '2020-01-01');
         INSERT INTO tk.orgs VALUES ('$1', 'o')" >/dev/null
}
rows_of() {  # rows of tenant $1 per table (as the superuser: no row level security)
  q $db "SELECT (SELECT count(*) FROM tk.items WHERE tenant_id = '$1') || ':' ||
                (SELECT count(*) FROM tk.events WHERE tenant_id = '$1') || ':' ||
                (SELECT count(*) FROM tk.events_9 WHERE tenant_id = '$1') || ':' ||
                (SELECT count(*) FROM ONLY tk.notes WHERE tenant_id = '$1') || ':' ||
                (SELECT count(*) FROM tk.notes_old WHERE tenant_id = '$1') || ':' ||
                (SELECT count(*) FROM tk.orgs WHERE org = '$1')"
}
orphans() {
  q $db "SELECT (SELECT count(*) FROM tk.items i WHERE NOT EXISTS (SELECT 1 FROM tenant.tenants t WHERE t.id = i.tenant_id))
              + (SELECT count(*) FROM tk.events e WHERE NOT EXISTS (SELECT 1 FROM tenant.tenants t WHERE t.id = e.tenant_id))"
}
unknown=00000000-0000-0000-0000-0000000000ee

echo "-- the guarantees"
check_eq "every scoped table has a tenant key trigger (partitions by clone), and none has a foreign key to tenant.tenants" \
  "9 0" "$(q $db "SELECT (SELECT count(DISTINCT tgrelid) FROM pg_trigger WHERE tgfoid = 'tenant._tenant_key_check'::regproc
                              AND tgenabled = 'O' AND tgrelid IN (SELECT relid FROM tenant.scoped_tables)) || ' ' ||
                             (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'tenant.tenants'::regclass
                               AND conrelid IN (SELECT relid FROM tenant.scoped_tables))")"
check_eq "the detached partition is scoped on its own, with its own key" "|tenant_key:f" \
  "$(q $db "SELECT coalesce(parent::text, '') || '|' || (SELECT string_agg(tgname || ':' || (tgparentid <> 0)::text::char, ',')
              FROM pg_trigger WHERE tgrelid = 'tk.events_9'::regclass AND tgfoid = 'tenant._tenant_key_check'::regproc)
              FROM tenant.scoped_tables WHERE relid = 'tk.events_9'::regclass")"
for stmt in "INSERT INTO tk.items (tenant_id) VALUES ('$unknown')" \
            "INSERT INTO tk.events VALUES ('$unknown', 2)" \
            "INSERT INTO tk.events_9 VALUES ('$unknown', 9)" \
            "INSERT INTO tk.notes_old (tenant_id) VALUES ('$unknown')" \
            "INSERT INTO tk.orgs VALUES ('$unknown', 'x')" \
            "COPY tk.items (tenant_id) FROM PROGRAM 'echo $unknown'"; do
  check_eq "a row of an unregistered tenant is refused: ${stmt:0:50}" "23503" "$(sqlstate_of $db "$stmt")"
done
a=$(tid tk-1); b=$(tid tk-2); c=$(tid tk-3)
fill "$a"; fill "$b"; fill "$c"
check_eq "rows of registered tenants are accepted" "1:2:1:1:1:1" "$(rows_of "$a")"
check_eq "an UPDATE to an unregistered tenant is refused" "23503" \
  "$(sqlstate_of $db "UPDATE tk.items SET tenant_id = '$unknown' WHERE tenant_id = '$a'")"
check_eq "an UPDATE of another column is not checked again" "no error" \
  "$(sqlstate_of $db "UPDATE tk.items SET note = 'm', tenant_id = tenant_id WHERE tenant_id = '$a'")"
out=$(psql -X -At -d $db -c "INSERT INTO tk.items (tenant_id) VALUES ('$unknown')" 2>&1)
check "the error names the tenant and the table" grep -q "tenant $unknown is not registered" <<<"$out"
check_eq "a tenant's id cannot change while rows use it" "23503" \
  "$(sqlstate_of $db "UPDATE tenant.tenants SET id = gen_random_uuid() WHERE id = '$a'")"
check_eq "tenant.tenants cannot be truncated while tables are scoped" "0A000" \
  "$(sqlstate_of $db "TRUNCATE tenant.tenants CASCADE")"
q $db "DELETE FROM tenant.tenants WHERE id = '$a'" >/dev/null
check_eq "deleting a tenant deletes its rows from every scoped table" "0:0:0:0:0:0" "$(rows_of "$a")"
check_eq "... and no other tenant's" "1:2:1:1:1:1" "$(rows_of "$b")"
q $db "SELECT count(*) FROM tenant.purge('$b', true)" >/dev/null
check_eq "purging a tenant deletes its rows from every scoped table" "0:0:0:0:0:0" "$(rows_of "$b")"
check_eq "... and its registry row" "0" "$(q $db "SELECT count(*) FROM tenant.tenants WHERE id = '$b'")"
# A session keeps its erase plans: a table renamed between two deletes is still erased.
g=$(tid tk-7); h=$(tid tk-8)
fill "$g"; fill "$h"
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "DELETE FROM tenant.tenants WHERE id = '$g'" \
  -c "ALTER TABLE tk.items RENAME TO items_renamed" -c "DELETE FROM tenant.tenants WHERE id = '$h'" \
  -c "ALTER TABLE tk.items_renamed RENAME TO items" >/dev/null
check_eq "a table renamed after the session's first delete is erased by its second" "0:0:0:0:0:0" "$(rows_of "$h")"
# A table whose tenant column went behind the guard's back (enforce = off): deleting a tenant
# fails (42703) twice in one session, rather than erasing less, and the backend survives.
out=$(psql -X -At -v VERBOSITY=sqlstate -d $db -c "SET pg_tenant.enforce = off" \
        -c "ALTER TABLE tk.orgs RENAME COLUMN org TO org_gone" \
        -c "DELETE FROM tenant.tenants WHERE slug = 'tk-3'" -c "DELETE FROM tenant.tenants WHERE slug = 'tk-3'" \
        -c "ALTER TABLE tk.orgs RENAME COLUMN org_gone TO org" -c "SELECT 'alive'" 2>&1)
check_eq "a renamed tenant column stops the erase (42703, twice), the session goes on" "42703 42703 alive" \
  "$(grep -oE '42703|^alive' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
q $db "SELECT count(*) FROM tenant.unprotect('tk.orgs')" >/dev/null
check_eq "unprotect removes the tenant key with the rest" "0" \
  "$(q $db "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tk.orgs'::regclass AND tgfoid = 'tenant._tenant_key_check'::regproc")"
check_eq "the guard refuses DROP TRIGGER of the key (TN005)" "TN005" "$(sqlstate_of $db "DROP TRIGGER tenant_key ON tk.items")"
check_eq "the guard refuses DISABLE TRIGGER ALL (TN005)" "TN005" "$(sqlstate_of $db "ALTER TABLE tk.items DISABLE TRIGGER ALL")"

echo "-- a tenant deleted while another transaction inserts a row for it (two sessions)"
# session NAME FILE: a psql reading statements from a fifo on fd 7 (8 for the second), its
# errors (SQLSTATE only) in FILE.
wait_for() {  # until pg_stat_activity shows application NAME in STATE
  for _ in $(seq 1 100); do
    [ "$(q $db "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND $2")" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
race() {  # race LEVEL FIRST: FIRST = insert (the inserter holds its row, the delete waits) or delete
  local level=$1 first=$2 slug=$3 ins_out del_out t f1 f2 p1 p2
  t=$(tid "$slug")
  ins_out=$(mktemp); del_out=$(mktemp); f1=$(mktemp -u); f2=$(mktemp -u)
  mkfifo "$f1" "$f2"
  PGAPPNAME=tk_ins psql -X -q -At -v VERBOSITY=sqlstate -d $db <"$f1" >/dev/null 2>"$ins_out" &
  p1=$!
  PGAPPNAME=tk_del psql -X -q -At -v VERBOSITY=sqlstate -d $db <"$f2" >/dev/null 2>"$del_out" &
  p2=$!
  exec 7>"$f1" 8>"$f2"
  # Both take their snapshot first (REPEATABLE READ keeps it).
  printf '%s\n' "BEGIN ISOLATION LEVEL $level;" "SELECT 1;" >&7
  printf '%s\n' "BEGIN ISOLATION LEVEL $level;" "SELECT 1;" >&8
  wait_for tk_ins "state = 'idle in transaction'" && wait_for tk_del "state = 'idle in transaction'"
  if [ "$first" = insert ]; then
    printf '%s\n' "INSERT INTO tk.items (tenant_id, note) VALUES ('$t', 'racer');" >&7
    wait_for tk_ins "state = 'idle in transaction' AND query LIKE 'INSERT%'"
    printf '%s\n' "DELETE FROM tenant.tenants WHERE id = '$t';" >&8
    check "$level, insert first: the delete waits for the inserter" wait_for tk_del "wait_event_type = 'Lock'"
    printf '%s\n' "COMMIT;" >&7
    wait_for tk_ins "state = 'idle'"
    printf '%s\n' "COMMIT;" >&8
  else
    printf '%s\n' "DELETE FROM tenant.tenants WHERE id = '$t';" >&8
    wait_for tk_del "state = 'idle in transaction' AND query LIKE 'DELETE%'"
    printf '%s\n' "INSERT INTO tk.items (tenant_id, note) VALUES ('$t', 'racer');" >&7
    check "$level, delete first: the insert waits for the delete" wait_for tk_ins "wait_event_type = 'Lock'"
    printf '%s\n' "COMMIT;" >&8
    wait_for tk_del "state = 'idle'"
    printf '%s\n' "COMMIT;" >&7
  fi
  exec 7>&- 8>&-
  wait $p1 $p2 2>/dev/null
  rm -f "$f1" "$f2"
  local ins_err del_err tenant_left rows_left
  ins_err=$(grep -oE '(ERROR|FATAL): +[0-9A-Z]{5}' "$ins_out" | head -n 1 | grep -oE '[0-9A-Z]{5}$' || true)
  del_err=$(grep -oE '(ERROR|FATAL): +[0-9A-Z]{5}' "$del_out" | head -n 1 | grep -oE '[0-9A-Z]{5}$' || true)
  rm -f "$ins_out" "$del_out"
  tenant_left=$(q $db "SELECT count(*) FROM tenant.tenants WHERE id = '$t'")
  rows_left=$(q $db "SELECT count(*) FROM tk.items WHERE tenant_id = '$t'")
  check_eq "$level, $first first: no orphan row" "0" "$(orphans)"
  echo "     (insert: ${ins_err:-ok}, delete: ${del_err:-ok}, tenant left: $tenant_left, its rows: $rows_left)"
  case "$level/$first" in
    "read committed/insert")
      check_eq "... the delete erases the row committed meanwhile" "ok ok 0 0" "${ins_err:-ok} ${del_err:-ok} $tenant_left $rows_left" ;;
    "repeatable read/insert")
      check_eq "... the delete cannot see the row: it fails to serialize (40001), both stay" "ok 40001 1 1" \
        "${ins_err:-ok} ${del_err:-ok} $tenant_left $rows_left" ;;
    "read committed/delete")
      check_eq "... the insert is refused (23503)" "23503 ok 0 0" "${ins_err:-ok} ${del_err:-ok} $tenant_left $rows_left" ;;
    "repeatable read/delete")
      check_eq "... the insert fails to serialize (40001)" "40001 ok 0 0" "${ins_err:-ok} ${del_err:-ok} $tenant_left $rows_left" ;;
  esac
}
race "read committed" insert tk-3
race "repeatable read" insert tk-4
race "read committed" delete tk-5
race "repeatable read" delete tk-6

echo "-- pgbench: 6 clients insert rows of 20 tenants while another deletes and re-creates them"
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SELECT tenant.create('Churn ' || i, 'churn-' || i) FROM generate_series(1, 20) AS i;
-- An insert for a tenant deleted meanwhile is refused (23503): the client goes on.
CREATE FUNCTION public.tk_insert(slug text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tk.items (tenant_id, note) SELECT t.id, 'churn' FROM tenant.tenants t WHERE t.slug = $1;
    INSERT INTO tk.events SELECT t.id, 2 FROM tenant.tenants t WHERE t.slug = $1;
EXCEPTION WHEN foreign_key_violation THEN
    NULL;
END
$$;
SQL
work=$(mktemp -d)
chmod 755 "$work"
printf '%s\n' '\set t random(1, 20)' "SELECT public.tk_insert('churn-' || :t);" >"$work/insert.pgbench"
printf '%s\n' '\set t random(1, 20)' "BEGIN;" "DELETE FROM tenant.tenants WHERE slug = 'churn-' || :t;" \
  "SELECT tenant.create('Churn ' || :t, 'churn-' || :t);" "COMMIT;" >"$work/churn.pgbench"
for level in "read committed" "repeatable read"; do
  export PGOPTIONS="-c default_transaction_isolation=${level// /\\ }"
  pgbench -n -c 6 -j 2 -T 6 --max-tries=1000 -f "$work/insert.pgbench" $db >"$work/insert.out" 2>&1 &
  inserters=$!
  pgbench -n -c 1 -j 1 -T 6 --max-tries=1000 -f "$work/churn.pgbench" $db >"$work/churn.out" 2>&1
  wait $inserters
  unset PGOPTIONS
  ins=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/insert.out")
  churn=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/churn.out")
  echo "     $level: ${ins:-0} inserting transactions, ${churn:-0} tenants deleted and re-created;" \
       "$(grep -hE '^number of (failed|transactions retried)' "$work/insert.out" "$work/churn.out" | tr '\n' ' ')"
  check "$level: both pgbench runs did work, and no client stopped on an error" \
    eval '[ "${ins:-0}" -gt 0 ] && [ "${churn:-0}" -gt 0 ] && ! grep -qE "^pgbench: error|number of failed transactions: [1-9]" "$work/insert.out" "$work/churn.out"'
  check_eq "$level: no orphan row" "0" "$(orphans)"
done
rm -rf "$work"

echo "-- protect_all cost per table does not grow with the tables already protected"
# Tables with a hash index on the tenant column (protect adds none: a btree build fsyncs its file,
# which would drown the CPU cost in disk latency), in four schemas of 500.
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SELECT format('CREATE SCHEMA tk_%s', s) FROM generate_series(1, 4) AS s \gexec
SELECT format('CREATE TABLE tk_%s.t%s (id bigint, tenant_id uuid, body text); CREATE INDEX ON tk_%s.t%s USING hash (tenant_id)',
              s, i, s, i)
  FROM generate_series(1, 4) AS s, generate_series(1, 500) AS i \gexec
SQL
# CPU time of the backend (utime + stime from /proc, in clock ticks), not wall time: on a shared
# machine the wall clock of the same work varies threefold from run to run.
declare -a cpu wall
for s in 1 2 3 4; do
  read -r cpu[$s] wall[$s] < <(psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -d $db <<SQL
CREATE FUNCTION pg_temp.ticks() RETURNS bigint LANGUAGE sql AS \$\$
  SELECT f[12]::bigint + f[13]::bigint
    FROM string_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ') AS f \$\$;
SELECT clock_timestamp() AS t0, pg_temp.ticks() AS c0 \gset
SELECT count(*) FROM tenant.protect_all('tk_$s') \gset
SELECT pg_temp.ticks() - :c0, round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 3);
SQL
)
done
echo "     protect_all of 500 tables with 0, 500, 1000, 1500 already protected: CPU ${cpu[1]}, ${cpu[2]}, ${cpu[3]}, ${cpu[4]} ticks; wall ${wall[1]} s, ${wall[2]} s, ${wall[3]} s, ${wall[4]} s"
ratio=$(awk -v a="${cpu[1]}" -v d="${cpu[4]}" 'BEGIN { printf "%.2f", d / (a > 0 ? a : 1) }')
check "500 tables after 1,500 take at most twice the CPU of the first 500 (${cpu[4]} / ${cpu[1]} ticks = $ratio)" \
  awk -v r="$ratio" 'BEGIN { exit !(r < 2.0) }'
createdb pt_tenant_key_empty
q pt_tenant_key_empty "CREATE EXTENSION pg_tenant" >/dev/null
check_eq "tenant.tenants has as many triggers with 2,000 tables protected as with none" \
  "$(q pt_tenant_key_empty "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tenant.tenants'::regclass")" \
  "$(q $db "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tenant.tenants'::regclass")"
dropdb pt_tenant_key_empty
many=$(q $db "SELECT tenant.create('Key many', 'tk-many')")
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<SQL
SELECT format('INSERT INTO tk_%s.t%s (tenant_id) VALUES (%L)', s, i, '$many')
  FROM generate_series(1, 4) AS s, generate_series(1, 500) AS i \gexec
SQL
count_many="SELECT sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM tk_%s.t%s', s, i),
                                                         false, true, '')))[1]::text::int)
              FROM generate_series(1, 4) AS s, generate_series(1, 500) AS i"
check_eq "a tenant with a row in each of 2,000 tables" "2000" "$(q $db "$count_many")"
q $db "DELETE FROM tenant.tenants WHERE id = '$many'" >/dev/null
check_eq "... deleted: none of its rows is left" "0" "$(q $db "$count_many")"

dropdb $db
