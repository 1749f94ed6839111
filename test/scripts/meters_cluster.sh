#!/usr/bin/env bash
# Meter persistence, in a cluster of its own (scripts/test.sh starts it with
# pg_tenant.flush_interval = 200ms and pg_tenant.max_meters = 64): a clean restart loses nothing;
# a crash (kill -9 of a backend) loses at most one flush interval; no tenant can take the table
# from the others (pg_tenant.max_meters_per_tenant); a full meter table is a clear error; ended
# windows are freed in every database, and only after the flush that saved them committed; a
# failing flush is logged and retried by the same worker; a counter never wraps around; a
# streaming replica (pg_basebackup) counts on its own and never writes, and once promoted never
# writes a count lower than the one saved.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=postgres  # pg_tenant.database: the database whose meters the worker persists
psql -X -q -v ON_ERROR_STOP=1 -d $db <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_tenant;
SELECT tenant.set_limit('free', 'api_calls', 1000000);
SQL
tenant=$(q $db "SELECT tenant.create('Persist', 'persist')")
meter() {  # n -> counts n calls for the tenant in one session
  q $db "SELECT tenant.set('persist') IS NOT NULL; SELECT count(tenant.meter('api_calls')) FROM generate_series(1, $1)" | tail -n 1
}
used() { q $db "SELECT coalesce(sum(used), 0) FROM tenant._meter_usage('$tenant') WHERE resource = 'api_calls'"; }
flushed() { q $db "SELECT coalesce(sum(used), 0) FROM tenant.meter_counts WHERE tenant_id = '$tenant' AND resource = 'api_calls'"; }
wait_ready() { wait_until 20 pg_isready -q; }
worker_pid() { q $db "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_tenant meter flusher'"; }
# Every wait below is on a condition, with a deadline (test/lib.sh poll_until, wait_until).

check_eq "worker is running" "1" "$(q $db "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_tenant meter flusher'")"
meter 10 >/dev/null
check_eq "10 calls counted" "10" "$(used)"
check_eq "flushed to tenant.meter_counts within the interval" "10" "$(poll_until 10 5 flushed)"

# Clean restart: the worker flushes at shutdown and loads at start.
meter 5 >/dev/null
# pg_virtualenv's cluster, or one of the caller's (PGDATA set, its owner's pg_ctl, its log in
# $PGDATA/server.log)
if [ -n "${PGDATA:-}" ]; then as_pg "$(pg_config --bindir)/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w restart >/dev/null
else pg_ctlcluster "$PGVERSION" regress restart; fi
wait_ready
check_eq "clean restart loses nothing (15)" "15" "$(poll_until 15 10 used)"

# Crash: counts since the last flush may be lost, nothing before it.
meter 20 >/dev/null
poll_until 35 5 flushed >/dev/null
meter 7 >/dev/null
psql -X -q -d $db -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
sleeper() { q $db "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' LIMIT 1" | grep .; }
wait_until 5 sleeper
victim=$(sleeper)
worker_before_crash=$(worker_pid)
kill -9 "$victim"
# The postmaster's crash restart is over when a new flusher runs (it loads the saved counts).
new_worker() { local pid; pid=$(worker_pid) && [ -n "$pid" ] && [ "$pid" != "$worker_before_crash" ]; }
wait_until 20 new_worker
at_least_35() { test "$(used)" -ge 35; }
wait_until 10 at_least_35
after=$(used)
check "crash loses at most one flush interval (35 <= $after <= 42)" test "$after" -ge 35 -a "$after" -le 42
wait

# Window rollover in the table: second windows flush as separate rows.
q $db "SELECT tenant.set_limit('free', 'per_second', 1000, 'second')" >/dev/null
first_second=$(q $db "SELECT tenant.set('persist') IS NOT NULL; SELECT tenant.meter('per_second'), floor(extract(epoch FROM clock_timestamp()))::bigint" | tail -n 1 | cut -d'|' -f2)
next_second() { test "$(q $db "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint")" -gt "$first_second"; }
wait_until 3 next_second
q $db "SELECT tenant.set('persist') IS NOT NULL; SELECT tenant.meter('per_second')" >/dev/null
two_windows() { test "$(q $db "SELECT count(*) FROM tenant.meter_counts WHERE tenant_id = '$tenant' AND resource = 'per_second'")" -ge 2; }
check "each second is a window row of its own" wait_until 5 two_windows

# 16 concurrent clients on one tenant never pass the limit: exactly 1,000 of 3,200 calls count.
q $db "SELECT tenant.set_limit('free', 'burst', 1000)" >/dev/null
work=$(mktemp -d)
cat >"$work/burst.pgbench" <<PGB
BEGIN;
SELECT tenant.set('persist') IS NOT NULL;
SELECT tenant.try_meter('burst');
COMMIT;
PGB
pgbench -n -c 16 -j 2 -t 200 -f "$work/burst.pgbench" $db >"$work/out" 2>&1
check_eq "16 clients x 200 try_meter: all ran" "3200" "$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/out")"
check_eq "exactly the limit was counted" "1000" \
  "$(q $db "SELECT coalesce(sum(used), 0) FROM tenant._meter_usage('$tenant') WHERE resource = 'burst'")"
rm -rf "$work"

# No tenant can take the table from the others: one tenant metering ever new resource names
# (each an entry that never ends) is refused past its share, while another keeps metering.
q $db "ALTER SYSTEM SET pg_tenant.max_meters_per_tenant = 8" >/dev/null
q $db "SELECT pg_reload_conf()" >/dev/null
poll_until 8 5 q $db "SHOW pg_tenant.max_meters_per_tenant" >/dev/null  # a new session has read the reload
q $db "SELECT tenant.create('Greedy', 'greedy'), tenant.create('Modest', 'modest')" >/dev/null
out=$(q $db "SELECT tenant.set('greedy') IS NOT NULL; SELECT count(tenant.meter('name_' || i)) FROM generate_series(1, 1000) AS i" 2>&1)
check "a tenant past its share of the meter table gets 53400 (its own error)" \
  grep -q "the tenant holds its whole share of the meter table" <<<"$out"
check_eq "... holding no more than its share (8 entries)" "8" \
  "$(q $db "SELECT count(*) FROM tenant._meter_usage((SELECT id FROM tenant.tenants WHERE slug = 'greedy'))")"
check_eq "another tenant keeps metering meanwhile" "3" \
  "$(q $db "SELECT tenant.set('modest') IS NOT NULL; SELECT count(tenant.meter('api_calls')) FROM generate_series(1, 3)" | tail -n 1)"

# A counter never wraps around: an unlimited one stops at the largest bigint (22003).
check_eq "an unlimited meter takes the largest bigint" "" \
  "$(q $db "SELECT tenant.set('modest') IS NOT NULL; SELECT tenant.meter('huge', 9223372036854775807)" | tail -n 1)"
check_eq "one more is refused with 22003, not wrapped" "22003" \
  "$(sqlstate_of $db "SELECT tenant.set('modest'); SELECT tenant.meter('huge', 1)")"
check_eq "... and the counter still holds the largest bigint" "9223372036854775807" \
  "$(q $db "SELECT used FROM tenant._meter_usage((SELECT id FROM tenant.tenants WHERE slug = 'modest')) WHERE resource = 'huge'")"


# Ended windows are freed in every database. A database other than pg_tenant.database counts in
# memory only; its second windows end and leave the table at the next flush.
psql -X -q -d $db -c "ALTER SYSTEM SET pg_tenant.max_meters_per_tenant = 64" -c "SELECT pg_reload_conf()" >/dev/null
createdb pt_other_db
psql -X -q -v ON_ERROR_STOP=1 -d pt_other_db -c "CREATE EXTENSION pg_tenant" \
  -c "SELECT tenant.create('Elsewhere', 'elsewhere')" -c "SELECT tenant.set_limit('free', 'per_second', 1000, 'second')" >/dev/null
entries() { q $db "SELECT entries FROM tenant.meter_info()"; }
# The rollover test's last second may still be open (what ran since can take less than a second):
# wait until it has ended and a flush that began after the free of its entry has committed, so
# that before_other counts only entries that stay.
open_seconds() { q $db "SELECT count(*) FROM tenant._meter_usage('$tenant') WHERE resource = 'per_second'"; }
flushed_after() { q $db "SELECT coalesce(tenant._meters_flushed_until() > '$1', false)"; }
poll_until 0 3 open_seconds >/dev/null
ended_at=$(q $db "SELECT clock_timestamp()")
poll_until t 5 flushed_after "$ended_at" >/dev/null
freed_at=$(q $db "SELECT clock_timestamp()")
poll_until t 5 flushed_after "$freed_at" >/dev/null
before_other=$(entries)
q pt_other_db "SELECT tenant.set('elsewhere') IS NOT NULL; SELECT count(tenant.meter('per_second')) FROM generate_series(1, 3)" >/dev/null
check_eq "another database's meter takes an entry" "$((before_other + 1))" "$(entries)"
check_eq "... freed once its window has ended" "$before_other" "$(poll_until "$before_other" 5 entries)"
dropdb pt_other_db

# A flush that fails is logged, its ended windows stay in memory until a flush saves them, and the
# same worker goes on (no FATAL, no restart).
pid_before=$(worker_pid)
if [ -n "${PGDATA:-}" ]; then server_log=$PGDATA/server.log  # a cluster of the caller's, logging there
else server_log=$(pg_lsclusters -h | awk '$2 == "regress" {print $NF}'); fi
q $db "ALTER TABLE tenant.meter_counts ADD CONSTRAINT pt_refuse_flush CHECK (resource <> 'fragile')" >/dev/null
q $db "SELECT tenant.set('persist') IS NOT NULL; SELECT count(tenant.meter('fragile')) FROM generate_series(1, 5)" >/dev/null
q $db "SELECT tenant.set_limit('free', 'fragile', 1000, 'second')" >/dev/null
fragile_second=$(q $db "SELECT tenant.set('persist') IS NOT NULL; SELECT count(tenant.meter('fragile')), floor(extract(epoch FROM clock_timestamp()))::bigint FROM generate_series(1, 4)" | tail -n 1 | cut -d'|' -f2)
# The second window has ended, and a flush has failed on the constraint since.
window_ended() { test "$(q $db "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint")" -gt "$fragile_second"; }
wait_until 3 window_ended
log_lines=$(grep -c "pt_refuse_flush" "$server_log")
failed_again() { test "$(grep -c "pt_refuse_flush" "$server_log")" -gt "$log_lines"; }
wait_until 5 failed_again
check_eq "a failing flush saved nothing" "0" "$(q $db "SELECT count(*) FROM tenant.meter_counts WHERE resource = 'fragile'")"
check_eq "the same worker is still running (errors are caught, not FATAL)" "$pid_before" "$(worker_pid)"
check "the flush error is in the server log" grep -q "pt_refuse_flush" "$server_log"
q $db "ALTER TABLE tenant.meter_counts DROP CONSTRAINT pt_refuse_flush" >/dev/null
check_eq "the ended window was kept in memory and saved by the next flush (4 calls)" "4" \
  "$(poll_until 4 5 q $db "SELECT used FROM tenant.meter_counts WHERE resource = 'fragile' AND period = 'second'")"
check_eq "... with the open-ended one (5 calls)" "5" \
  "$(q $db "SELECT used FROM tenant.meter_counts WHERE resource = 'fragile' AND period = 'none'")"

# A full meter table is an error with a SQLSTATE, not a crash; the backend lives on. Tenants that
# each stay within their share fill it.
out=$(q $db "SELECT count(tenant.create('Filler ' || i, 'filler-' || i)) FROM generate_series(1, 12) AS i;
             DO \$\$ BEGIN
               FOR i IN 1..12 LOOP
                 PERFORM tenant.set('filler-' || i);
                 PERFORM tenant.meter('fill_' || j) FROM generate_series(1, 7) AS j;
               END LOOP;
             END \$\$" 2>&1)
check "a full meter table raises 53400" grep -q "the meter table is full" <<<"$out"
check_eq "the backend is alive after it" "1" "$(q $db 'SELECT 1')"
check "tenant.meter_info() shows the table full ($(q $db "SELECT entries || '/' || capacity FROM tenant.meter_info()"))" \
  test "$(q $db "SELECT entries = capacity FROM tenant.meter_info()")" = t

# A streaming replica (pg_basebackup) counts meters in its own shared memory, starting from what
# the primary had flushed, and never writes (its tables are read-only); the primary is untouched.
standby=$(mktemp -d /tmp/pg_tenant-standby.XXXX)
sport=${PG_TENANT_TEST_OTHER_PORT:-$(free_port)}
chown postgres "$standby"
before_primary=$(flushed)
runuser -u postgres -- env PGPASSWORD="${PGPASSWORD:-}" pg_basebackup -h 127.0.0.1 -p "${PGPORT:-5432}" \
  -U "${PGUSER:-postgres}" -D "$standby/data" -R -X stream >/dev/null 2>&1
cat >"$standby/data/postgresql.conf" <<CONF
port = $sport
listen_addresses = ''
unix_socket_directories = '$standby'
hot_standby = on
shared_preload_libraries = 'pg_tenant'
pg_tenant.flush_interval = 200ms
CONF
printf 'local all all trust\n' >"$standby/data/pg_hba.conf"
chown -R postgres "$standby"
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$standby/data" -l "$standby/log" -w start >/dev/null
sq() { psql -X -Atq -h "$standby" -p "$sport" -U postgres -d $db -c "$1"; }
check_eq "the replica is a hot standby" "t" "$(sq 'SELECT pg_is_in_recovery()')"
check_eq "the replica's meter worker runs" "1" "$(sq "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_tenant meter flusher'")"
# The replica's worker has loaded the counts the primary had flushed.
poll_until "$before_primary" 10 sq "SELECT coalesce(sum(used), 0) FROM tenant._meter_usage('$tenant') WHERE resource = 'api_calls'" >/dev/null
sq "SELECT tenant.set('persist') IS NOT NULL; SELECT count(tenant.meter('api_calls')) FROM generate_series(1, 4)" >/dev/null
standby_used=$(sq "SELECT coalesce(sum(used), 0) FROM tenant._meter_usage('$tenant') WHERE resource = 'api_calls'")
check_eq "the replica counts on top of what it loaded ($before_primary + 4)" "$((before_primary + 4))" "$standby_used"
sleep 0.6  # three flush intervals: an absence has no condition to wait on
check_eq "the replica never flushed (its worker is still alive)" "1" "$(sq "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_tenant meter flusher'")"
check_eq "the primary's table is untouched by the replica" "$before_primary" "$(flushed)"
# The primary counts on; its flushed count reaches the replica, whose memory holds less. Promoted,
# the replica flushes, and the greater count stays.
meter 10 >/dev/null
check_eq "the primary flushed 10 more" "$((before_primary + 10))" "$(poll_until "$((before_primary + 10))" 5 flushed)"
for _ in $(seq 1 50); do
  [ "$(sq "SELECT used FROM tenant.meter_counts WHERE tenant_id = '$tenant' AND resource = 'api_calls'")" = "$((before_primary + 10))" ] && break
  sleep 0.1
done
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$standby/data" -w promote >/dev/null
check_eq "the promoted replica writes" "f" "$(poll_until f 10 sq 'SELECT pg_is_in_recovery()')"
sleep 0.6  # three flush intervals of the promoted replica: its flush must not lower the count
check_eq "its flush keeps the greater count ($before_primary + 10, not its own $before_primary + 4)" "$((before_primary + 10))" \
  "$(sq "SELECT used FROM tenant.meter_counts WHERE tenant_id = '$tenant' AND resource = 'api_calls'")"
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$standby/data" -w stop -m fast >/dev/null
rm -rf "$standby"
