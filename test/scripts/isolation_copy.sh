#!/usr/bin/env bash
# COPY through psql as the application role (a LOGIN role: not superuser, no BYPASSRLS, not the
# owner) on tables protected by tenant.protect(), with tenant A entered by tenant.set():
# - COPY ... TO STDOUT (table, partition, inheritance parent and child, query) outputs A's rows
#   only; nothing with no tenant; B's rows only in B; the owner (FORCE) gets A's rows only too.
# - COPY ... FROM STDIN into a protected table is refused by PostgreSQL itself whatever the rows
#   say (SQLSTATE 0A000, "COPY FROM not supported with row-level security"), so a line carrying
#   B's tenant_id loads nothing, and a load without the tenant_id column loads nothing either.
# - The supported bulk path, COPY into a temporary staging table then INSERT ... SELECT, is held
#   by the policies: B's tenant_id fails with 42501 and loads nothing; without the tenant_id
#   column the rows get A's id from the column default.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_iso_copy
app=pt_iso_copy_app
owner=pt_iso_copy_owner
password=iso-copy-test-password
dropdb --if-exists $db 2>/dev/null
psql -X -q -c "DROP ROLE IF EXISTS $app" -c "DROP ROLE IF EXISTS $owner" 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d $db <<SQL
CREATE EXTENSION pg_tenant;
CREATE ROLE $owner LOGIN PASSWORD '$password' NOSUPERUSER NOBYPASSRLS;
CREATE ROLE $app LOGIN PASSWORD '$password' NOSUPERUSER NOBYPASSRLS;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid),
                          tenant.set_session(text), tenant.reset() TO $owner, $app;
SELECT tenant.create('Copy A', 'copy-a'), tenant.create('Copy B', 'copy-b');
CREATE SCHEMA iso AUTHORIZATION $owner;
GRANT USAGE ON SCHEMA iso TO $app;
SET ROLE $owner;
CREATE TABLE iso.items (tenant_id uuid, id int NOT NULL, code text NOT NULL, qty int NOT NULL,
                        PRIMARY KEY (tenant_id, id));
CREATE TABLE iso.events (tenant_id uuid, id int NOT NULL, created date NOT NULL) PARTITION BY RANGE (created);
CREATE TABLE iso.events_2024 PARTITION OF iso.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE iso.docs (tenant_id uuid, id int NOT NULL, title text NOT NULL);
CREATE TABLE iso.docs_archived () INHERITS (iso.docs);
RESET ROLE;
INSERT INTO iso.items SELECT t.id, v.id, v.code, v.qty
  FROM tenant.tenants t JOIN (VALUES ('copy-a', 1, 'a1', 10), ('copy-a', 2, 'a2', 20),
                                     ('copy-b', 101, 'b1', 1000), ('copy-b', 102, 'b2', 2000),
                                     ('copy-b', 103, 'b3', 3000)) v(slug, id, code, qty) ON v.slug = t.slug;
INSERT INTO iso.events SELECT id, CASE slug WHEN 'copy-a' THEN 1 ELSE 101 END, '2024-05-01'
  FROM tenant.tenants WHERE slug IN ('copy-a', 'copy-b');
INSERT INTO iso.docs SELECT id, CASE slug WHEN 'copy-a' THEN 1 ELSE 101 END, slug || '-doc'
  FROM tenant.tenants WHERE slug IN ('copy-a', 'copy-b');
INSERT INTO iso.docs_archived SELECT id, CASE slug WHEN 'copy-a' THEN 2 ELSE 102 END, slug || '-old'
  FROM tenant.tenants WHERE slug IN ('copy-a', 'copy-b');
SELECT count(*) FROM tenant.protect('iso.items');
SELECT count(*) FROM tenant.protect('iso.events');
SELECT count(*) FROM tenant.protect('iso.docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA iso TO $app;
SQL

A=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'copy-a'")
B=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'copy-b'")

# as_role ROLE TENANT SQL...: runs each SQL, in one transaction, as ROLE connected with its password,
# after tenant.set(TENANT) (no tenant when TENANT is empty). Prints what the SQL prints (COPY TO
# data), errors with their SQLSTATE on stderr; stdin goes to COPY FROM STDIN. Exit status 0 only
# when every statement succeeded and the transaction committed.
as_role() {
  local role=$1 tenant=$2; shift 2
  local args=(-c "BEGIN")
  [ -n "$tenant" ] && args+=(-c '\o /dev/null' -c "SELECT tenant.set('$tenant')" -c '\o')
  for sql in "$@"; do args+=(-c "$sql"); done
  args+=(-c "COMMIT")
  PGPASSWORD=$password psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$role" -d $db "${args[@]}"
}
# sqlstate FILE: the SQLSTATE of the first error in a psql stderr file (VERBOSITY=verbose).
sqlstate() { sed -nE 's/^(psql:[^ ]* )?ERROR: +([0-9A-Z]{5}): .*/\2/p' "$1" | head -n 1; }
# sorted TEXT: lines sorted, for outputs in physical order.
sorted() { printf '%s\n' "$1" | LC_ALL=C sort; }
# snapshot: every row of both tenants, as the superuser sees it, one line each.
snapshot() {
  q $db "SELECT string_agg(l, E'\n' ORDER BY l COLLATE \"C\")
           FROM (SELECT concat_ws(' ', tableoid::regclass, tenant_id, id, code, qty) AS l
                   FROM (SELECT tableoid, tenant_id, id, code, qty FROM iso.items
                         UNION ALL SELECT tableoid, tenant_id, id, created::text, NULL FROM iso.events
                         UNION ALL SELECT tableoid, tenant_id, id, title, NULL FROM iso.docs) r) s"
}
err=$(mktemp)
before=$(snapshot)
check_eq "setup: 5 items, 2 events, 4 docs" "5 2 4" \
  "$(q $db "SELECT (SELECT count(*) FROM iso.items) || ' ' || (SELECT count(*) FROM iso.events) || ' ' || (SELECT count(*) FROM iso.docs)")"

# --- COPY TO --------------------------------------------------------------------------------------
check_eq "app, tenant A: COPY items TO STDOUT outputs exactly A's rows" \
  "$(sorted "$(printf '%s\t1\ta1\t10\n%s\t2\ta2\t20' "$A" "$A")")" \
  "$(sorted "$(as_role $app "$A" "COPY iso.items TO STDOUT")")"
check_eq "app, tenant A: COPY items (CSV, HEADER) outputs the header and A's rows only" \
  "$(printf 'tenant_id,id,code,qty\n%s,1,a1,10\n%s,2,a2,20' "$A" "$A")" \
  "$(as_role $app "$A" "COPY (SELECT * FROM iso.items ORDER BY id) TO STDOUT (FORMAT csv, HEADER)")"
check_eq "app, tenant A: COPY (SELECT ... WHERE tenant_id = B) TO STDOUT outputs nothing" "" \
  "$(as_role $app "$A" "COPY (SELECT * FROM iso.items WHERE tenant_id = '$B') TO STDOUT")"
check_eq "app, tenant A: COPY (SELECT count(*), sum(qty)) counts A's rows only" "2	30" \
  "$(as_role $app "$A" "COPY (SELECT count(*), sum(qty) FROM iso.items) TO STDOUT")"
check_eq "app, tenant A: COPY of a partition outputs A's row only" "$A	1	2024-05-01" \
  "$(as_role $app "$A" "COPY iso.events_2024 TO STDOUT")"
check_eq "app, tenant A: COPY (SELECT * FROM the partitioned table) outputs A's row only" "$A	1	2024-05-01" \
  "$(as_role $app "$A" "COPY (SELECT * FROM iso.events) TO STDOUT")"
# Under row level security PostgreSQL turns COPY rel TO into SELECT ... FROM ONLY rel: the
# partitioned parent itself holds no rows, so nothing (and in particular nothing of B's) comes out.
check_eq "app, tenant A: COPY of the partitioned parent outputs nothing of B's (no row at all)" "" \
  "$(as_role $app "$A" "COPY iso.events TO STDOUT")"
check_eq "app, tenant A: COPY of the inheritance parent outputs A's parent row only" "$A	1	copy-a-doc" \
  "$(as_role $app "$A" "COPY iso.docs TO STDOUT")"
check_eq "app, tenant A: COPY of the inheritance child outputs A's child row only" "$A	2	copy-a-old" \
  "$(as_role $app "$A" "COPY iso.docs_archived TO STDOUT")"
check_eq "app, no tenant: COPY items TO STDOUT outputs nothing" "" \
  "$(as_role $app "" "COPY iso.items TO STDOUT")"
check_eq "app, tenant B: COPY items TO STDOUT outputs exactly B's rows (the policy is not just empty)" \
  "$(sorted "$(printf '%s\t101\tb1\t1000\n%s\t102\tb2\t2000\n%s\t103\tb3\t3000' "$B" "$B" "$B")")" \
  "$(sorted "$(as_role $app "$B" "COPY iso.items TO STDOUT")")"
check_eq "owner (FORCE), tenant A: COPY items TO STDOUT outputs exactly A's rows" \
  "$(sorted "$(printf '%s\t1\ta1\t10\n%s\t2\ta2\t20' "$A" "$A")")" \
  "$(sorted "$(as_role $owner "$A" "COPY iso.items TO STDOUT")")"
as_role $app "$A" "SET LOCAL row_security = off" "COPY iso.items TO STDOUT" >/dev/null 2>"$err"
check_eq "app, tenant A, row_security = off: COPY TO is refused (42501), not unfiltered" "42501" "$(sqlstate "$err")"

# --- COPY FROM STDIN --------------------------------------------------------------------------------
printf '%s\t104\tb4\t4000\n' "$B" | as_role $app "$A" "COPY iso.items FROM STDIN" >/dev/null 2>"$err"
rc=$?
check "app, tenant A: COPY FROM STDIN of a line carrying B's tenant_id fails" test $rc -ne 0
check_eq "COPY FROM with B's line: refused by PostgreSQL for row-level security (0A000)" "0A000" "$(sqlstate "$err")"
check_eq "COPY FROM with B's line: loads nothing (every row of both tenants unchanged)" "$before" "$(snapshot)"

printf '%s\t3\ta3\t30\n%s\t105\tb5\t5000\n' "$A" "$B" | as_role $app "$A" "COPY iso.items FROM STDIN" >/dev/null 2>"$err"
check_eq "app, tenant A: COPY FROM STDIN of an A line followed by a B line fails (0A000)" "0A000" "$(sqlstate "$err")"
check_eq "COPY FROM with an A line and a B line: loads nothing, not even the A line" "$before" "$(snapshot)"

printf '3\ta3\t30\n' | as_role $app "$A" "COPY iso.items (id, code, qty) FROM STDIN" >/dev/null 2>"$err"
rc=$?
check "app, tenant A: COPY FROM STDIN without the tenant_id column fails" test $rc -ne 0
check_eq "COPY FROM without tenant_id: refused by PostgreSQL for row-level security (0A000), so no row is loaded under any tenant" \
  "0A000" "$(sqlstate "$err")"
check_eq "COPY FROM without tenant_id: loads nothing" "$before" "$(snapshot)"

printf '%s\t102\t2024-06-01\n' "$B" | as_role $app "$A" "COPY iso.events_2024 FROM STDIN" >/dev/null 2>"$err"
check_eq "app, tenant A: COPY FROM STDIN into a partition with B's tenant_id fails (0A000)" "0A000" "$(sqlstate "$err")"
printf '%s\t103\tb-x\n' "$B" | as_role $app "$A" "COPY iso.docs_archived FROM STDIN" >/dev/null 2>"$err"
check_eq "app, tenant A: COPY FROM STDIN into the inheritance child with B's tenant_id fails (0A000)" "0A000" "$(sqlstate "$err")"
printf '3\ta3\t30\n' | as_role $app "" "COPY iso.items (id, code, qty) FROM STDIN" >/dev/null 2>"$err"
check_eq "app, no tenant: COPY FROM STDIN fails (0A000)" "0A000" "$(sqlstate "$err")"
check_eq "after every COPY FROM attempt: nothing was loaded" "$before" "$(snapshot)"

# --- COPY into a staging table, then INSERT ... SELECT (the supported bulk load) ------------------
stage_all="CREATE TEMP TABLE stage (tenant_id uuid, id int, code text, qty int) ON COMMIT DROP"
printf '%s\t3\ta3\t30\n%s\t104\tb4\t4000\n' "$A" "$B" |
  as_role $app "$A" "$stage_all" "COPY stage FROM STDIN" "INSERT INTO iso.items SELECT * FROM stage" >/dev/null 2>"$err"
rc=$?
check "app, tenant A: staged COPY with a line carrying B's tenant_id, then INSERT ... SELECT, fails" test $rc -ne 0
check_eq "staged load with B's line: SQLSTATE 42501" "42501" "$(sqlstate "$err")"
check "staged load with B's line: new row violates row-level security policy" grep -q 'new row violates row-level security policy' "$err"
check_eq "staged load with B's line: loads nothing, not even the A line" "$before" "$(snapshot)"

stage_no_tenant="CREATE TEMP TABLE stage (id int, code text, qty int) ON COMMIT DROP"
out=$(printf '3\ta3\t30\n4\ta4\t40\n' |
  as_role $app "$A" "$stage_no_tenant" "COPY stage FROM STDIN" \
     "WITH i AS (INSERT INTO iso.items (id, code, qty) SELECT * FROM stage RETURNING tenant_id)
      SELECT count(*), count(DISTINCT tenant_id), min(tenant_id::text) FROM i" 2>"$err")
check_eq "app, tenant A: staged COPY without tenant_id, then INSERT ... SELECT, loads 2 rows as A's" "2|1|$A" "$out"
check_eq "staged load without tenant_id: the superuser sees items 3 and 4 belong to A" "$A $A" \
  "$(q $db "SELECT string_agg(tenant_id::text, ' ' ORDER BY id) FROM iso.items WHERE id IN (3, 4)")"
check_eq "staged load without tenant_id: B's rows are unchanged" \
  "$(grep " $B " <<<"$before")" "$(grep " $B " <<<"$(snapshot)")"
check_eq "app, tenant A: COPY items TO STDOUT now outputs A's 4 rows, still none of B's" "4 0" \
  "$(as_role $app "$A" "COPY iso.items TO STDOUT" | awk -v a="$A" -v b="$B" '$1 == a {na++} $1 == b {nb++} END {print na + 0, nb + 0}')"

printf '5\ta5\t50\n' | as_role $app "" "$stage_no_tenant" "COPY stage FROM STDIN" \
  "INSERT INTO iso.items (id, code, qty) SELECT * FROM stage" >/dev/null 2>"$err"
check_eq "app, no tenant: staged COPY then INSERT ... SELECT fails (42501)" "42501" "$(sqlstate "$err")"
check_eq "staged load with no tenant: loads nothing" "0" "$(q $db "SELECT count(*) FROM iso.items WHERE id = 5")"

rm -f "$err"
dropdb $db
psql -X -q -c "DROP ROLE $app" -c "DROP ROLE $owner"
