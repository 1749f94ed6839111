#!/usr/bin/env bash
# Per-tenant statistics in a cluster of its own (this script starts it: pg_config's initdb and
# pg_ctl, a free loopback port, pg_tenant.stats_max_tenants = 10, its log in a file): two tenants'
# loads ranked and counted exactly; statements inside functions and triggers counted once; errors
# counted (at run time, from a policy, refused at start); reset of one tenant and of all; eviction
# into "other" with the sums exact and the busiest tenant kept; a clean restart keeps the
# counters; an immediate shutdown saves nothing and a damaged file is skipped and removed; log
# lines carry the tenant (a policy's error, the slow-statement log) and the client sees no change;
# a cursor is one statement whose fetches add up.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-stats.XXXX)
data=$work/data
log=$work/server.log
private_cluster "$work" <<CONF
shared_preload_libraries = 'pg_tenant'
pg_tenant.stats_max_tenants = 10
pg_tenant.log_tenant = slug
CONF
export PGDATABASE=pt_stats
start() { as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w start >/dev/null; }
stop() { as_pg "$bin/pg_ctl" -D "$data" -w stop -m "${1:-fast}" >/dev/null; }
start
trap 'stop immediate 2>/dev/null; rm -rf "$work"' EXIT

db=pt_stats
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT tenant.create('Alpha', 'alpha'), tenant.create('Bravo', 'bravo'), tenant.create('Busy', 'busy');
SELECT tenant.create('Tenant ' || i, 'many-' || i) FROM generate_series(1, 40) AS i;
CREATE TABLE items (tenant_id uuid NOT NULL, id int, v text);
SELECT tenant.protect('items');
CREATE ROLE stats_app LOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(text), tenant.set_session(text) TO stats_app;
GRANT SELECT, INSERT ON items TO stats_app;
INSERT INTO items SELECT t.id, g, 'row' FROM tenant.tenants t, generate_series(1, 100) g WHERE t.slug IN ('alpha', 'bravo');
-- Statements inside a function and a trigger belong to the statement that called them.
CREATE FUNCTION five_queries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
  FOR i IN 1..5 LOOP SELECT count(*) INTO m FROM items; n := n + m; END LOOP;
  RETURN n;
END $$;
CREATE SCHEMA side;  -- not guarded: tables without a tenant column
CREATE TABLE side.audited (id int);
CREATE TABLE side.audit_log (id int, at timestamptz);
CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO side.audit_log VALUES (NEW.id, now()); PERFORM count(*) FROM items; RETURN NEW; END $$;
CREATE TRIGGER audited_log AFTER INSERT ON side.audited FOR EACH ROW EXECUTE FUNCTION log_it();
SQL
stat() {  # slug column -> the value in tenant.stats
  q $db "SELECT coalesce((SELECT $2 FROM tenant.stats WHERE slug = '$1'), 0)"
}
q $db "SELECT tenant.stats_reset()" >/dev/null

echo "-- two tenants, different loads"
# alpha: tenant.set_session + 30 point reads (1 row each); bravo: set_session + 4 scans of its 100 rows.
{
  echo "SELECT tenant.set_session('alpha');"
  for i in $(seq 1 30); do echo "SELECT v FROM items WHERE id = $i;"; done
  echo "SELECT tenant.set_session('bravo');"
  for _ in 1 2 3 4; do echo "SELECT * FROM items;"; done
} | psql -X -q -U stats_app -d $db >/dev/null
check_eq "alpha: 31 statements" "31" "$(stat alpha calls)"
check_eq "alpha: 31 rows (30 reads and set_session's row)" "31" "$(stat alpha rows)"
check_eq "bravo: 5 statements" "5" "$(stat bravo calls)"
check_eq "bravo: 401 rows (its 100 rows four times, RLS hides alpha's)" "401" "$(stat bravo rows)"
check_eq "bravo: buffers counted" "t" "$(q $db "SELECT shared_blks_hit + shared_blks_read > 0 FROM tenant.stats WHERE slug = 'bravo'")"
check_eq "top_tenants by calls: alpha first" "alpha,bravo" \
  "$(q $db "SELECT string_agg(slug, ',') FROM tenant.top_tenants(10, 'calls') WHERE kind = 'tenant'")"
check_eq "top_tenants by rows: bravo first" "bravo,alpha" \
  "$(q $db "SELECT string_agg(slug, ',') FROM tenant.top_tenants(3, 'rows') WHERE kind = 'tenant'")"
check_eq "the periods hold what the totals hold" "t" \
  "$(q $db "SELECT bool_and(current_calls + previous_calls = calls) FROM tenant.stats WHERE kind = 'tenant'")"
check_eq "top_tenants(by => 'cpu') is 22023" "22023" "$(sqlstate_of $db "SELECT * FROM tenant.top_tenants(5, 'cpu')")"

echo "-- nested statements are counted once"
before=$(stat alpha calls)
psql -X -q -d $db >/dev/null <<'SQL'
SELECT tenant.set_session('alpha');
SELECT five_queries();
INSERT INTO side.audited VALUES (1), (2);
WITH x AS (SELECT five_queries() AS n) SELECT n FROM x;
SQL
check_eq "a function of 5 queries, a trigger that queries, a CTE calling the function: 4 statements" \
  "$((before + 4))" "$(stat alpha calls)"
check_eq "the trigger ran (2 rows)" "2" "$(q $db "SELECT count(*) FROM side.audit_log")"

echo "-- a cursor is one statement, its fetches add up"
before_calls=$(stat alpha calls)
before_rows=$(stat alpha rows)
psql -X -q -d $db >/dev/null <<'SQL'
BEGIN;
SELECT tenant.set('alpha') IS NOT NULL;
DECLARE c CURSOR FOR SELECT * FROM items WHERE tenant_id = tenant.current_id();
FETCH 30 FROM c;
FETCH 30 FROM c;
CLOSE c;
COMMIT;
SQL
check_eq "a cursor: tenant.set and the cursor's query are 2 statements" "$((before_calls + 2))" "$(stat alpha calls)"
check_eq "a cursor: the rows of both fetches (60) and set's row" "$((before_rows + 61))" "$(stat alpha rows)"

echo "-- errors"
bravo_id=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'bravo'")
before_calls=$(stat alpha calls)
out=$( {
  echo "SELECT tenant.set_session('alpha');"
  echo "SELECT 1 / (random() * 0)::int;"                        # division by zero, at run time
  echo "INSERT INTO items VALUES ('$bravo_id', 1, 'x');"        # the policy's WITH CHECK refuses it
} | psql -X -q -U stats_app -d $db 2>&1)
check "the policy refused the row" grep -q 'violates row-level security policy' <<<"$out"
check_eq "alpha: 2 errors" "2" "$(stat alpha errors)"
check_eq "alpha: failed statements are calls too" "$((before_calls + 3))" "$(stat alpha calls)"
# Refused when the executor starts (TN008, no tenant, strict context): counted in "none".
none_errors=$(q $db "SELECT coalesce((SELECT errors FROM tenant.stats WHERE kind = 'none'), 0)")
psql -X -q -d $db -c "SET pg_tenant.missing_context = error" -c "SET ROLE stats_app" -c "SELECT * FROM items" >/dev/null 2>&1
check_eq "a statement refused at start (TN008) is an error of none" "$((none_errors + 1))" \
  "$(q $db "SELECT errors FROM tenant.stats WHERE kind = 'none'")"

echo "-- reset"
check_eq "stats_reset(alpha) removes one row" "1" "$(q $db "SELECT tenant.stats_reset(id) FROM tenant.tenants WHERE slug = 'alpha'")"
check_eq "alpha is gone" "0" "$(stat alpha calls)"
check_eq "bravo is still there" "5" "$(stat bravo calls)"
check_eq "stats_reset() is revoked from PUBLIC" "42501" "$(sqlstate_of "dbname=$db user=stats_app" "SELECT tenant.stats_reset()")"
q $db "SELECT tenant.stats_reset()" >/dev/null
check_eq "stats_reset() empties this database's rows (none holds the reset itself)" "none:1" \
  "$(q $db "SELECT string_agg(kind || ':' || calls, ',') FROM tenant.stats")"

echo "-- eviction keeps the sums (pg_tenant.stats_max_tenants = 10)"
base=$(q $db "SELECT coalesce(sum(calls), 0) FROM tenant.stats")  # counted itself once it ends
# busy: a few statements before each of 40 other tenants' 3 (busy keeps the highest score).
{
  for i in $(seq 1 40); do
    echo "SELECT tenant.set_session('busy');"; echo "SELECT 1;"; echo "SELECT 2;"; echo "SELECT 3;"
    echo "SELECT tenant.set_session('many-$i');"; echo "SELECT 1;"; echo "SELECT 2;"
  done
  echo "SELECT tenant.reset();"
} | psql -X -q -d $db >/dev/null
ran=$((40 * 7 + 1))
check_eq "every statement is in some row (sum of calls)" "$((base + 1 + ran))" "$(q $db "SELECT sum(calls) FROM tenant.stats")"
check "at most 10 + a quarter (12.5, at least 8) tenant rows are kept" \
  test "$(q $db "SELECT count(*) FROM tenant.stats WHERE kind = 'tenant'")" -le 18
check "evicted tenants went to other" test "$(q $db "SELECT calls FROM tenant.stats WHERE kind = 'other'")" -gt 0
check "stats_info counts evictions" test "$(q $db "SELECT evictions FROM tenant.stats_info()")" -ge 22
check_eq "the busiest tenant was never evicted" "160" "$(stat busy calls)"
check_eq "other holds calls and rows of the evicted" "t" \
  "$(q $db "SELECT calls > 0 AND \"rows\" > 0 AND first_seen <= last_seen FROM tenant.stats WHERE kind = 'other'")"

echo "-- restart and crash"
snapshot() { q $db "SELECT string_agg(coalesce(slug, kind) || ':' || calls || ':' || errors || ':' || \"rows\", ',' ORDER BY kind, slug) FROM tenant.stats WHERE kind <> 'none'"; }
before=$(snapshot)
stop fast
check "a clean shutdown saves the file" test -f "$data/pg_stat/pg_tenant_stats.stat"
start
check_eq "a clean restart keeps every row" "$before" "$(snapshot)"
check "the file is removed once loaded" test ! -e "$data/pg_stat/pg_tenant_stats.stat"
stop immediate
check "an immediate shutdown saves nothing" test ! -e "$data/pg_stat/pg_tenant_stats.stat"
start
check_eq "after a crash the counters start again from zero" "0" "$(q $db "SELECT count(*) FROM tenant.stats WHERE kind <> 'none'")"
q $db "SELECT tenant.set('bravo') IS NOT NULL" >/dev/null
check_eq "and count again" "1" "$(stat bravo calls)"
stop fast
# A damaged file (16 bytes changed) is skipped, said so in the log, and removed.
printf 'garbage-garbage!' | dd of="$data/pg_stat/pg_tenant_stats.stat" bs=1 seek=30 conv=notrunc status=none
start
check "a damaged file is reported" grep -q 'skipped the damaged statistics file' "$log"
check_eq "a damaged file loads nothing" "0" "$(stat bravo calls)"
check "a damaged file is removed" test ! -e "$data/pg_stat/pg_tenant_stats.stat"

echo "-- log lines carry the tenant (pg_tenant.log_tenant = slug)"
out=$(psql -X -q -U stats_app -d $db -c "BEGIN" -c "SELECT tenant.set('alpha') IS NOT NULL" \
        -c "INSERT INTO items VALUES ('$bravo_id', 99, 'marker-policy')" 2>&1)
check "the client gets the policy's error" grep -q 'new row violates row-level security policy' <<<"$out"
check "the client sees no tag" test -z "$(grep 'tenant=' <<<"$out")"
psql -X -q -d $db -c "SET log_min_duration_statement = 100" \
  -c "SELECT tenant.set('bravo') IS NOT NULL AS marker_slow, pg_sleep(0.15)" >/dev/null  # autocommit: logged after COMMIT
psql -X -q -d $db -c "SET log_min_duration_statement = 0" -c "SELECT tenant.set_session('alpha')" \
  -c "SELECT 'marker-session'" >/dev/null
psql -X -q -d $db -c "SET log_min_duration_statement = 0" -c "SELECT 'marker-no-tenant'" >/dev/null
alpha_id=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'alpha'")
psql -X -q -d $db -c "SET pg_tenant.log_tenant = id" -c "SET log_min_duration_statement = 0" \
  -c "SELECT tenant.set_session('alpha')" -c "SELECT 'marker-id'" >/dev/null
psql -X -q -d $db -c "SET log_error_verbosity = terse" -c "SET log_min_duration_statement = 0" \
  -c "SELECT tenant.set_session('alpha')" -c "SELECT 'marker-terse'" >/dev/null
wait_until 5 grep -q -F "marker-terse" "$log"  # the logging collector has written the last entry
after() { grep -A"${2:-2}" -F "$1" "$log"; }  # the lines of the entry that mentions $1
check "the policy's ERROR is followed by DETAIL tenant=alpha" grep -q 'DETAIL:  tenant=alpha' <<<"$(after 'violates row-level security policy' 1)"
check "its STATEMENT line follows" grep -q 'marker-policy' <<<"$(after 'violates row-level security policy' 3)"
check "the slow autocommit statement (logged after its COMMIT) carries tenant=bravo" \
  grep -q 'DETAIL:  tenant=bravo' <<<"$(after 'marker_slow' 1)"
check "a session tenant's statement carries tenant=alpha" grep -q 'DETAIL:  tenant=alpha' <<<"$(after "'marker-session'" 1)"
check "a statement with no tenant is not tagged" test -z "$(after "'marker-no-tenant'" 1 | grep 'tenant=')"
check "log_tenant = id writes the uuid" grep -q "DETAIL:  tenant=$alpha_id" <<<"$(after "'marker-id'" 1)"
check "terse: the server-only line gets the tag as a prefix" grep -q "LOG:  tenant=alpha: duration: .*'marker-terse'" "$log"
check_eq "log_tenant is superuser-only" "42501" "$(sqlstate_of "dbname=$db user=stats_app" "SET pg_tenant.log_tenant = off")"
check_eq "pg_tenant.stats is superuser-only" "42501" "$(sqlstate_of "dbname=$db user=stats_app" "SET pg_tenant.stats = off")"

echo "-- pg_tenant.stats = off counts nothing"
before=$(stat alpha calls)
psql -X -q -d $db -c "SET pg_tenant.stats = off" -c "SELECT tenant.set_session('alpha')" -c "SELECT 1" -c "SELECT 2" >/dev/null
check_eq "nothing counted while off" "$before" "$(stat alpha calls)"

stop fast
trap - EXIT
rm -rf "$work"
