#!/usr/bin/env bash
# Redis leases (pg_tenant.meter_backend = redis): two PostgreSQL clusters (the suite's and one
# initdb'd here) share one redis-server on loopback, 16 pgbench clients on each. For limits 7, 100
# and 100,000 the calls granted over both clusters (counted by a sequence on each: sequences are
# not transactional) add up to the limit exactly, never more; leases held by an idle cluster go
# back to Redis after pg_tenant.redis_lease_time, and reach the other cluster within 1.5 s; a window rolls over with its own leases; a
# restarted Redis (AOF) keeps every count; a cluster that crashes holding a lease loses those units
# for the window and nothing goes over; tenant.usage() shows the count of both clusters; most calls
# make no round trip; the lease GUCs refuse bad values.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_lease
tid=00000000-0000-0000-0000-0000000000cc
rport=${PG_TENANT_TEST_REDIS_PORT:-$(free_port)}
rdir=$(mktemp -d /tmp/pg_tenant-lease-redis.XXXX)
rcli() { redis-cli -p "$rport" "$@"; }
start_redis() {  # append-only file, fsync always: a restart keeps every count
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --daemonize yes --pidfile "$rdir/redis.pid" --dir "$rdir" --logfile "$rdir/redis.log"
  for _ in $(seq 1 50); do rcli PING 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  return 1
}
check "redis-server (appendonly) started on 127.0.0.1:$rport" start_redis
url="redis://127.0.0.1:$rport"

# Cluster A: the one in PGHOST/PGPORT. Cluster B: initdb'd here.
other=$(mktemp -d /tmp/pg_tenant-lease-b.XXXX)
oport=${PG_TENANT_TEST_OTHER_PORT:-$(free_port)}
new_cluster "$other" "$oport" <<CONF
shared_preload_libraries = 'pg_tenant'
pg_tenant.redis_url = '$url'
CONF
start_cluster "$other"
psql -X -q -c "ALTER SYSTEM SET pg_tenant.redis_url = '$url'" -c "SELECT pg_reload_conf()" >/dev/null

setup="CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug) VALUES ('$tid', 'Lease tenant', 'lease-tenant');
SELECT tenant.set_limit('free', 'small', 7);
SELECT tenant.set_limit('free', 'medium', 100);
SELECT tenant.set_limit('free', 'large', 100000);
SELECT tenant.set_limit('free', 'per_second', 20, 'second');
SELECT tenant.set_limit('free', 'restart', 100);
SELECT tenant.set_limit('free', 'crash', 100);
SELECT tenant.set_limit('free', 'trips', 1000000);
SELECT tenant.set_limit('free', 'down_lease', 100);
SELECT tenant.set_limit('free', 'fair', 100);
ALTER DATABASE $db SET pg_tenant.meter_backend = 'redis';"
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "$setup" >/dev/null
dropdb -h "$other" -p "$oport" -U postgres --if-exists $db 2>/dev/null
createdb -h "$other" -p "$oport" -U postgres $db  # servers share a count by database name
psql -X -q -v ON_ERROR_STOP=1 -h "$other" -p "$oport" -U postgres -d $db -c "$setup" >/dev/null
qa() { psql -X -Atq -d $db "$@" 2>&1; }
qb() { psql -X -Atq -h "$other" -p "$oport" -U postgres -d $db "$@" 2>&1; }
enter="DO \$\$ BEGIN PERFORM tenant.set('lease-tenant'); END \$\$"
key_of() { echo "pg_tenant:$db:$tid:$1:0"; }
settles() { poll_until "$2" 8 rcli GET "$1"; }  # KEY VALUE: the workers' reports (after an outage: their back-off)
leased() { local v; v=$(rcli HGET "$1:leases" _total); echo "${v:-0}"; }
leases_back() { poll_until 0 4 leased "$1"; }  # KEY: until no server holds units of KEY
# granted RESOURCE: "SELECT ... nextval" of the calls granted in one statement of N attempts
attempts() { echo "SELECT count(nextval('granted_$1')) FROM generate_series(1, $2) WHERE tenant.try_meter('$1')"; }
granted_on() {  # q-function RESOURCE: the calls granted on that cluster so far
  $1 -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM granted_$2"
}

work=$(mktemp -d /tmp/pg_tenant-lease-work.XXXX)
for res in small medium large; do
  for q in qa qb; do $q -c "CREATE SEQUENCE granted_$res" >/dev/null; done
  printf 'BEGIN;\nSELECT tenant.set(%s) IS NOT NULL;\nSELECT CASE WHEN tenant.try_meter(%s) THEN nextval(%s) END;\nCOMMIT;\n' \
    "'lease-tenant'" "'$res'" "'granted_$res'" >"$work/$res.pgbench"
done
run_both() {  # RESOURCE TRANSACTIONS: 16 clients on each cluster at once
  pgbench -n -c 16 -j 2 -t "$2" -f "$work/$1.pgbench" $db >"$work/a.out" 2>&1 &
  local a=$!
  pgbench -n -h "$other" -p "$oport" -U postgres -c 16 -j 2 -t "$2" -f "$work/$1.pgbench" $db >"$work/b.out" 2>&1
  wait $a
  local ran
  ran=$(( $(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/a.out") +
          $(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/b.out") ))
  check_eq "$1: 2 clusters x 16 clients x $2 calls ran" "$(( 32 * $2 ))" "$ran"
}
for pair in small:60 medium:60 large:3500; do
  res=${pair%:*} limit=$(q $db "SELECT \"limit\" FROM tenant.effective_limit('$tid', '$res')")
  run_both "$res" "${pair#*:}"
  sum=$(( $(granted_on qa "$res") + $(granted_on qb "$res") ))
  check "$res (limit $limit): at most the limit granted over both clusters ($sum)" test "$sum" -le "$limit"
  # Idle clusters give their leases back (lease time 1 s + a worker tick): the units are not lost.
  check_eq "$res: every lease back in Redis within the lease time" "0" "$(leases_back "$(key_of "$res")")"
  left=$(( limit - sum ))
  got=$(qb -c "BEGIN" -c "$enter" -c "$(attempts "$res" $(( left + 20 )))" -c "COMMIT" | tail -1)
  sum=$(( $(granted_on qa "$res") + $(granted_on qb "$res") ))
  check_eq "$res: the units left ($left) granted on cluster B, then no more: exactly the limit" "$limit" "$sum"
  check_eq "$res: Redis counts exactly the limit" "$limit" "$(settles "$(key_of "$res")" "$limit")"
  check_eq "$res: tenant.usage() on cluster A shows both clusters' calls" "$limit" \
    "$(qa -c "BEGIN" -c "$enter" -c "SELECT used FROM tenant.usage() WHERE resource = '$res'" -c "COMMIT" | tail -1)"
done

# A window rolls over with leases of its own: 20 a second, in two seconds.
window_calls() {  # starts just after a second begins; 30 attempts in one statement
  while [ "$(( 10#$(date +%N) / 1000000 ))" -gt 300 ]; do sleep 0.02; done
  qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('per_second')) FROM generate_series(1, 30)" \
     -c "COMMIT" | tail -1
}
check_eq "per_second: 20 of 30 granted in one second" "20" "$(window_calls)"
second=$(date +%s)
next_second() { test "$(date +%s)" != "$second"; }
wait_until 3 next_second  # the next second (window_calls waits for its start)
check_eq "per_second: 20 more in the next second (no lease crosses a window)" "20" "$(window_calls)"

# Most calls make no round trip: with leases, 2,000 calls cost a few; without (lease_max 0), one each.
trips() { rcli INFO commandstats | awk -F'[:=,]' '$1 == "cmdstat_evalsha" {print $3}'; }
before=$(trips)
qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FROM generate_series(1, 2000) WHERE tenant.try_meter('trips')" -c "COMMIT" >/dev/null
with=$(( $(trips) - before ))
check "2,000 calls with leases: at most 10 round trips ($with)" test "$with" -le 10
before=$(trips)
qa -c "SET pg_tenant.redis_lease_max = 0" -c "BEGIN" -c "$enter" \
   -c "SELECT count(*) FROM generate_series(1, 2000) WHERE tenant.try_meter('trips')" -c "COMMIT" >/dev/null
without=$(( $(trips) - before ))
check "2,000 calls with pg_tenant.redis_lease_max = 0: one round trip each ($without)" test "$without" -ge 2000 -a "$without" -le 2005

# Redis restarts (killed, AOF): the counts and the leases come back; the limit holds exactly.
restart_key=$(key_of restart)
qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FROM generate_series(1, 10) WHERE tenant.try_meter('restart')" -c "COMMIT" >/dev/null
kill -9 "$(cat "$rdir/redis.pid")"
for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 || break; sleep 0.1; done
check "redis-server restarted" start_redis
sleep 0.3
a=$(qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('restart')) FROM generate_series(1, 60)" -c "COMMIT" | tail -1)
# B asks until A's lease is back (it expires after redis_lease_time); never more than the limit.
b=0
deadline=$((SECONDS + 10))
while [ $((10 + a + b)) -lt 100 ] && [ $SECONDS -lt $deadline ]; do
  b=$(( b + $(qb -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('restart')) FROM generate_series(1, 60)" -c "COMMIT" | tail -1) ))
done
check_eq "after the restart: 10 + $a + $b granted = the limit" "100" "$(( 10 + a + b ))"
check_eq "... and Redis counts 100" "100" "$(settles "$restart_key" 100)"

# Cluster B crashes holding a lease (its lease time raised so that it cannot return it first):
# those units are lost for the window, and nothing is granted over the limit.
echo "pg_tenant.redis_lease_time = '60s'" >>"$other/data/postgresql.conf"
qb -c "SELECT pg_reload_conf()" >/dev/null
poll_until 1min 5 qb -c "SHOW pg_tenant.redis_lease_time" >/dev/null
qb -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('crash')" -c "COMMIT" >/dev/null
held=$(leased "$(key_of crash)")
check "cluster B holds a lease of crash ($held units)" test "$held" -gt 0
stop_cluster "$other" immediate
a=$(qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('crash')) FROM generate_series(1, 120)" -c "COMMIT" | tail -1)
check_eq "crash: cluster A gets what B's dead lease leaves (100 - 1 - $held)" "$(( 99 - held ))" "$a"
check_eq "crash: B's units stay leased in Redis for the window (safe)" "$held" "$(leased "$(key_of crash)")"
sed -i '/pg_tenant.redis_lease_time/d' "$other/data/postgresql.conf"
start_cluster "$other"
out=$(qb -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('crash')" -c "COMMIT" | tail -1)
check_eq "crash: B restarted is refused too (never over the limit)" "f" "$out"

# Fairness: units idle in cluster A's lease reach cluster B within the lease time and a worker
# tick (1 s + 0.5 s).
qa -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('fair')" -c "COMMIT" >/dev/null
held=$(leased "$(key_of fair)")
start=$(date +%s%N)
b=$(qb -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('fair')) FROM generate_series(1, 99)" -c "COMMIT" | tail -1)
check_eq "fair: cluster B first gets what A's lease ($held) leaves" "$(( 99 - held ))" "$b"
while [ "$(qb -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('fair')" -c "COMMIT" | tail -1)" != t ]; do
  [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 5000 ] && break
  sleep 0.05
done
waited=$(( ($(date +%s%N) - start) / 1000000 ))
check "fair: then A's idle units within 1.5 s (+ 0.5 s margin): $waited ms" test "$waited" -le 2000
b=$(qb -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('fair')) FROM generate_series(1, 99)" -c "COMMIT" | tail -1)
check_eq "fair: all of them: 1 on A, 100 - 1 on B" "$(( held - 1 ))" "$b"

# A meter without a limit counts here; the workers add the sums to Redis every half lease time.
for q in qa qb; do
  $q -c "BEGIN" -c "$enter" -c "SELECT count(*) FROM generate_series(1, 50) WHERE tenant.try_meter('unlimited')" -c "COMMIT" >/dev/null
done
check_eq "no limit: 50 calls on each cluster reach Redis within half a lease time" "100" \
  "$(settles "$(key_of unlimited)" 100)"
check_eq "no limit: tenant.usage() on cluster B shows both clusters' calls" "100" \
  "$(qb -c "BEGIN" -c "$enter" -c "SELECT used FROM tenant.usage() WHERE resource = 'unlimited'" -c "COMMIT" | tail -1)"

# A meter without a limit near the largest bigint: the call that would pass it is refused as before
# leases (TN009 naming it, pg_tenant.redis_failure = closed), counted nowhere, and the worker goes
# on reporting the other meters.
out=$(qa -c "BEGIN" -c "$enter" -c "SELECT tenant.meter('huge', 5000000000000000000) IS NULL" \
         -c "SELECT tenant.meter('huge', 5000000000000000000)" -c "COMMIT")
check "no limit: a call past the largest bigint is refused" grep -q "would pass the largest bigint" <<<"$out"
check_eq "... and Redis holds the first one only" "5000000000000000000" "$(settles "$(key_of huge)" 5000000000000000000)"
qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FROM generate_series(1, 10) WHERE tenant.try_meter('after_huge')" -c "COMMIT" >/dev/null
check_eq "... and other meters are still reported" "10" "$(settles "$(key_of after_huge)" 10)"

# Redis down: units already leased here are still served (Redis granted them), then TN009.
qa -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('down_lease')" -c "COMMIT" >/dev/null
held=$(leased "$(key_of down_lease)")
kill -9 "$(cat "$rdir/redis.pid")"
for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 || break; sleep 0.1; done
out=$(qa -c "BEGIN" -c "$enter" -c "SELECT count(*) FILTER (WHERE tenant.try_meter('down_lease')) FROM generate_series(1, $held)" \
         -c "COMMIT" | tail -1)
check_eq "Redis down: the $held units leased to cluster A are still served" "$held" "$out"
out=$(qa -c "BEGIN" -c "$enter" -c "SELECT tenant.try_meter('down_lease')" -c "COMMIT")
check "... and the next call is TN009 (pg_tenant.redis_failure = closed)" grep -q "Redis meter backend unavailable" <<<"$out"
check "redis-server back" start_redis
check_eq "Redis back: cluster A's worker reports them (1 + $held)" "$(( 1 + held ))" \
  "$(settles "$(key_of down_lease)" $(( 1 + held )))"

# The lease GUCs refuse bad values.
check_eq "pg_tenant.redis_lease_max = -1: 22023" "22023" "$(sqlstate_of $db "SET pg_tenant.redis_lease_max = -1")"
check_eq "pg_tenant.redis_lease_time = 0: 22023" "22023" "$(sqlstate_of $db "ALTER SYSTEM SET pg_tenant.redis_lease_time = 0")"
check_eq "pg_tenant.redis_lease_time is per server: SET refused (55P02)" "55P02" \
  "$(sqlstate_of $db "SET pg_tenant.redis_lease_time = '2s'")"
psql -X -q -c "DROP ROLE IF EXISTS pt_lease_app" -c "CREATE ROLE pt_lease_app" 2>/dev/null
check_eq "an application role cannot change pg_tenant.redis_lease_max (42501)" "42501" \
  "$(sqlstate_of $db "SET ROLE pt_lease_app; SET pg_tenant.redis_lease_max = 5")"

stop_cluster "$other"
kill "$(cat "$rdir/redis.pid")" 2>/dev/null
psql -X -q -c "ALTER SYSTEM RESET pg_tenant.redis_url" -c "SELECT pg_reload_conf()" -c "DROP ROLE pt_lease_app" >/dev/null
dropdb $db
rm -rf "$other" "$rdir" "$work"
