#!/usr/bin/env bash
# The Redis meter backend against a real redis-server on a free loopback port (started here):
# counts agree with Redis; 16 clients never pass a limit; two PostgreSQL clusters share one count;
# Redis killed: closed / open / local behave as documented within the timeout; Redis back:
# reconnect and local counts reconciled; AUTH and db number; bad URLs. The URL (it holds a
# password) is set in postgresql.conf (ALTER SYSTEM): ALTER DATABASE/ROLE ... SET is refused.
# Keys name the database: pg_tenant:<database>:<tenant>:<resource>:<window>.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_redis
rport=${PG_TENANT_TEST_REDIS_PORT:-$(free_port)}  # a fixed one when the caller must keep to a range
rdir=$(mktemp -d /tmp/pg_tenant-redis.XXXX)
start_redis() {
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --requirepass redis-test-pw \
    --daemonize yes --pidfile "$rdir/redis.pid" --dir "$rdir" --logfile "$rdir/redis.log"
  for _ in $(seq 1 50); do rcli PING 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  return 1
}
stop_redis() { kill "$(cat "$rdir/redis.pid")" 2>/dev/null; for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 || return 0; sleep 0.1; done; }
rcli() { redis-cli -p "$rport" -a redis-test-pw --no-auth-warning -n 2 "$@"; }
check "redis-server started on 127.0.0.1:$rport" start_redis

url="redis://:redis-test-pw@127.0.0.1:$rport/2"
dropdb --if-exists $db 2>/dev/null
createdb $db
tid=00000000-0000-0000-0000-0000000000aa
psql -X -q -v ON_ERROR_STOP=1 -d $db <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug) VALUES ('$tid', 'Redis tenant', 'redis-tenant');
SELECT tenant.set_limit('free', 'api_calls', 100);
SELECT tenant.set_limit('free', 'burst', 1000);
ALTER DATABASE $db SET pg_tenant.meter_backend = 'redis';
ALTER DATABASE $db SET pg_tenant.redis_command_timeout = 200;
ALTER DATABASE $db SET pg_tenant.redis_connect_timeout = 200;
ALTER SYSTEM SET pg_tenant.redis_url = '$url';
SELECT pg_reload_conf();
SQL
poll_until "$url" 5 q $db "SHOW pg_tenant.redis_url" >/dev/null  # a new session has read the reload
check_eq "ALTER DATABASE ... SET pg_tenant.redis_url is refused (readable by every role there)" "55P02" \
  "$(sqlstate_of $db "ALTER DATABASE $db SET pg_tenant.redis_url = '$url'")"
enter="DO \$\$ BEGIN PERFORM tenant.set('redis-tenant'); END \$\$"
m() {  # SQL run inside the tenant, in one transaction; its output and errors
  psql -X -Atq -d $db -c "BEGIN" -c "$enter" -c "$1" -c "COMMIT" 2>&1
}
key_of() { echo "pg_tenant:$db:$tid:$1:0"; }
# Calls served from a server's lease reach Redis when its worker reports them (every half
# pg_tenant.redis_lease_time, 500 ms): redis_settles KEY VALUE waits up to 3 s for that value.
redis_settles() {
  local value
  for _ in $(seq 1 30); do value=$(rcli GET "$1"); [ "$value" = "$2" ] && break; sleep 0.1; done
  echo "$value"
}

check_eq "meter returns what is left (Redis backend)" "99" "$(m "SELECT tenant.meter('api_calls')")"
check_eq "3 more" "96" "$(m "SELECT tenant.meter('api_calls', 3)")"
check_eq "the count in Redis agrees once reported (redis-cli GET, db 2)" "4" "$(redis_settles "$(key_of api_calls)" 4)"
check_eq "a key with no period never expires" "-1" "$(rcli TTL "$(key_of api_calls)")"
out=$(m "SELECT tenant.meter('api_calls', 97)")
check "an amount over the limit: TN006" grep -q 'limit of "api_calls" reached' <<<"$out"
check_eq "... and Redis counted nothing" "4" "$(rcli GET "$(key_of api_calls)")"
q $db "SELECT tenant.set_limit('free', 'per_minute', 10, 'minute')" >/dev/null
m "SELECT tenant.meter('per_minute')" >/dev/null
ttl=$(rcli --scan --pattern "pg_tenant:$db:$tid:per_minute:*" | head -1 | xargs -r -I{} redis-cli -p "$rport" -a redis-test-pw --no-auth-warning -n 2 TTL {})
check "a windowed key expires with its window (TTL $ttl s <= 61)" test "${ttl:-0}" -gt 0 -a "${ttl:-0}" -le 61

# 16 concurrent clients never pass the limit in Redis.
work=$(mktemp -d)
printf 'BEGIN;\nSELECT tenant.set(%s) IS NOT NULL;\nSELECT tenant.try_meter(%s);\nCOMMIT;\n' "'redis-tenant'" "'burst'" >"$work/burst.pgbench"
pgbench -n -c 16 -j 2 -t 150 -f "$work/burst.pgbench" $db >"$work/out" 2>&1 || tail -5 "$work/out"
check_eq "16 clients x 150 calls ran" "2400" "$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/out")"
check_eq "exactly the limit (1000) counted in Redis" "1000" "$(redis_settles "$(key_of burst)" 1000)"

# A second PostgreSQL cluster pointed at the same Redis shares the count and the limit.
other=$(mktemp -d /tmp/pg_tenant-other.XXXX)
oport=${PG_TENANT_TEST_OTHER_PORT:-$(free_port)}
new_cluster "$other" "$oport" <<<"shared_preload_libraries = 'pg_tenant'"
start_cluster "$other"
runuser -u postgres -- createdb -h "$other" -p "$oport" $db  # servers share a count by database name
oq() { psql -X -Atq -h "$other" -p "$oport" -U postgres -d $db "$@"; }
oq -c "CREATE EXTENSION pg_tenant" \
   -c "INSERT INTO tenant.tenants (id, name, slug) VALUES ('$tid', 'Redis tenant', 'redis-tenant')" \
   -c "SELECT tenant.set_limit('free', 'api_calls', 100)" >/dev/null
om() { oq -c "SET pg_tenant.meter_backend = 'redis'" -c "SET pg_tenant.redis_url = '$url'" -c "BEGIN" \
          -c "$enter" -c "$1" -c "COMMIT" 2>&1; }
check_eq "the second cluster sees the first one's 4 calls" "95" "$(om "SELECT tenant.meter('api_calls')")"
check_eq "and the first sees the second's" "94" "$(m "SELECT tenant.meter('api_calls')")"
# The first server now holds a lease of the units left: the second gets them once that lease has
# expired and the first server's worker returned it (pg_tenant.redis_lease_time, 1 s, + a tick).
# (A refused try_meter counts nothing: it is asked again until the lease is back, at most 5 s.)
check_eq "the rest (94) in one call from the second cluster, once the first's lease is back" "t" \
  "$(poll_until t 5 om "SELECT tenant.try_meter('api_calls', 94)")"
out=$(om "SELECT tenant.meter('api_calls')")
check "one limit for both clusters: the second is refused at 100" grep -q 'limit of "api_calls" reached' <<<"$out"
out=$(m "SELECT tenant.meter('api_calls')")
check "... and so is the first" grep -q 'limit of "api_calls" reached' <<<"$out"
check_eq "Redis holds the shared count" "100" "$(redis_settles "$(key_of api_calls)" 100)"
stop_cluster "$other"
rm -rf "$other"

# Redis down. Every call returns within the timeouts (200 ms) plus a margin.
stop_redis
timed() {  # mode sql -> "elapsed_ms|output"
  local start end out
  start=$(date +%s%N)
  out=$(psql -X -Atq -d $db -c "SET pg_tenant.redis_failure = '$1'" -c "BEGIN" -c "$enter" -c "$2" -c "COMMIT" 2>&1)
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 ))|$out"
}
r=$(timed closed "SELECT tenant.meter('down_test')")
check "closed: TN009 Redis meter backend unavailable" grep -q "Redis meter backend unavailable" <<<"${r#*|}"
check "closed: answered within the timeout (${r%%|*} ms < 1500)" test "${r%%|*}" -lt 1500
r=$(timed open "SELECT tenant.meter('down_test') IS NULL; SELECT tenant.meter('down_test') IS NULL")
check "open: the call goes through" grep -q "^t$" <<<"${r#*|}"
check_eq "open: one WARNING for two calls" "1" "$(grep -c 'WARNING' <<<"${r#*|}")"
check "open: answered within the timeout (${r%%|*} ms < 1500)" test "${r%%|*}" -lt 1500
r=$(timed local "SELECT count(*) FILTER (WHERE tenant.try_meter('down_test')) FROM generate_series(1, 5)")
check_eq "local: counted here while Redis is down" "5" "${r#*|}"
check "local: answered within the timeouts (${r%%|*} ms < 1500)" test "${r%%|*}" -lt 1500

# Redis back: the next call reconnects (after its pause) and adds the local counts to Redis.
start_redis
# Until the pause ends, a call (redis_failure = closed) fails with TN009 and counts nothing.
reconnected() { ! m "SELECT tenant.meter('down_test')" | grep -q "unavailable"; }
check "the first call after the pause reconnects (within 10 s)" wait_until 10 reconnected
check_eq "after the outage: reconnected, local counts reconciled (5 + 1)" "6" "$(rcli GET "$(key_of down_test)")"

# Configuration errors are clear.
out=$(psql -X -Atq -d $db -c "SET pg_tenant.redis_url = 'http://nope'" 2>&1)
check "a malformed URL is refused when set" grep -q "invalid Redis URL" <<<"$out"
out=$(psql -X -Atq -d $db -c "SET pg_tenant.redis_url = 'redis://:wrong@127.0.0.1:$rport'" -c "BEGIN" \
      -c "SELECT tenant.set('redis-tenant')" -c "SELECT tenant.meter('x')" 2>&1)
check "a wrong password: TN009 naming AUTH" grep -q "AUTH failed" <<<"$out"
out=$(psql -X -Atq -d $db -c "SET pg_tenant.redis_url = 'redis://:redis-test-pw@127.0.0.1:$rport/999'" -c "BEGIN" \
      -c "SELECT tenant.set('redis-tenant')" -c "SELECT tenant.meter('x')" 2>&1)
check "a database number Redis does not have: TN009 naming SELECT" grep -q "SELECT 999 failed" <<<"$out"
psql -X -q -c "DROP ROLE IF EXISTS pt_redis_app" 2>/dev/null
psql -X -q -c "CREATE ROLE pt_redis_app LOGIN"
out=$(psql -X -Atq -d $db -c "SET ROLE pt_redis_app" -c "SET pg_tenant.redis_url = 'redis://evil:1'" 2>&1)
check "an application role cannot point the server at another Redis" grep -q "permission denied" <<<"$out"
out=$(psql -X -Atq -d $db -c "SET ROLE pt_redis_app" -c "SHOW pg_tenant.redis_url" 2>&1)
check "... nor read the URL (it holds the password)" grep -q "permission denied\|must be superuser\|privileges of" <<<"$out"

# tenant.purge() deletes the tenant's keys (0.7.0), and only its keys.
other=00000000-0000-0000-0000-0000000000bb
q $db "INSERT INTO tenant.tenants (id, name, slug) VALUES ('$other', 'Other tenant', 'redis-other')" >/dev/null
psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('redis-other')" -c "SELECT tenant.meter('api_calls', 2)" -c "COMMIT" >/dev/null 2>&1
check "before the purge: the tenant has keys" test "$(rcli --scan --pattern "pg_tenant:$db:$tid:*" | wc -l)" -gt 0
q $db "SELECT tenant.suspend('$tid')" >/dev/null
check_eq "tenant.purge() of a tenant with Redis meters" "t" "$(q $db "SELECT count(*) >= 0 FROM tenant.purge('$tid')")"
check_eq "after the purge: none of its keys are left" "0" "$(rcli --scan --pattern "pg_tenant:$db:$tid:*" | wc -l)"
check_eq "the other tenant's key is untouched" "2" "$(rcli GET "pg_tenant:$db:$other:api_calls:0")"

stop_redis
rm -rf "$rdir" "$work"
psql -X -q -c "ALTER SYSTEM RESET pg_tenant.redis_url" -c "SELECT pg_reload_conf()" >/dev/null
dropdb $db
psql -X -q -c "DROP ROLE pt_redis_app"
