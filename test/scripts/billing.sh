#!/usr/bin/env bash
# Usage that billing can trust (0.9.0), in a cluster of its own (pg_tenant.database is the test's database, a
# short flush interval) and a real redis-server on loopback: alert levels crossed by 16
# concurrent pgbench clients give exactly one row of tenant.usage_alerts and one NOTIFY
# pg_tenant_usage per tenant, resource, window and level, for hard and soft limits, in both meter
# backends; a crossing call rolled back still alerts (its count stays); the JSON payload; a full
# queue (the worker held back) makes the callers write their alerts themselves, none lost or
# doubled; the application role reads no alert; tenant.closed_windows() exports a window once it
# has ended and been flushed; idempotency keys: 16 clients repeating the same 50 keys count each
# once and all get the same answer, at a hard limit too, in both backends. Two clusters sharing
# the Redis (section 7, issue 15): over both clusters' outboxes each level once, at or past its
# threshold, and a level that only a report sees recorded within a worker tick and a flush.
# BILLING_OTHER_PORT chooses the second cluster's port.
# BILLING_PORT and BILLING_REDIS_PORT choose the ports (default: free ones); BILLING_DIR the
# directory's prefix.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

bin=$(pg_config --bindir)
work=$(mktemp -d "${BILLING_DIR:-/tmp/pg_tenant-billing}.XXXX")
[ "$(id -u)" = 0 ] && chown postgres "$work"
export PGHOST=$work PGPORT=${BILLING_PORT:-$(free_port)} PGUSER=postgres PGDATABASE=pt_alerts
unset PGPASSWORD PGSERVICE
db=pt_alerts
new_cluster "$work" "$PGPORT" <<CONF
shared_preload_libraries = 'pg_tenant'
pg_tenant.database = '$db'
pg_tenant.flush_interval = 100
pg_tenant.max_meters_per_tenant = 200
max_connections = 60
CONF
rport=${BILLING_REDIS_PORT:-$(free_port)}
rcli() { redis-cli -h 127.0.0.1 -p "$rport" "$@"; }
# counter_key PREFIX: the meter counter PREFIX<window start>, not the keys next to it (<counter>:leases,
# <counter>:alert:<level> that claims a usage alert for one server).
counter_key() { rcli --raw KEYS "$1[0-9]*" | grep -E '^[^ ]*:[0-9]+$' | grep -v ':alert:' | head -n 1; }
cleanup() {
  stop_cluster "$work" immediate
  if [ -f "$work/redis.pid" ]; then
    local pid; pid=$(cat "$work/redis.pid")
    kill "$pid" 2>/dev/null
    wait_until 5 bash -c "! kill -0 $pid"  # redis-server has let go of its files
  fi
  rm -rf "$work"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
start_cluster "$work" || { fail "billing: the cluster did not start"; exit 0; }
createdb $db

a=00000000-0000-0000-0000-0000000a1e01
b=00000000-0000-0000-0000-0000000a1e02
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.plans (name) VALUES ('metered');
INSERT INTO tenant.tenants (id, name, slug, plan) VALUES ('$a', 'Alpha', 'alpha', 'metered'), ('$b', 'Bravo', 'bravo', 'metered');
SELECT tenant.set_limit('metered', 'api', 1600, 'day', 'hard', '{50,80,100}');
SELECT tenant.set_limit('metered', 'soft_api', 1000, 'day', 'soft', '{100,150}');
SELECT tenant.set_limit('metered', 'rolled', 10, 'day', 'hard', '{50}');
SELECT tenant.set_limit('metered', 'ticks', 100, 'second');
SELECT tenant.set_limit('metered', 'idem_hard', 30, 'day');
CREATE ROLE alerts_app LOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(text), tenant.meter(text, bigint), tenant.try_meter(text, bigint),
    tenant.meter(text, bigint, text), tenant.try_meter(text, bigint, text) TO alerts_app;
-- What each keyed call answered (the test's own table, not a tenant's).
SELECT tenant.exempt('public.answers', 'test: the answers of keyed meter calls');
CREATE TABLE public.answers (backend text, client int, key int, answer text);
GRANT INSERT ON public.answers TO alerts_app;
SQL

# The worker connects to pg_tenant.database (restarted every 5 s until it exists).
flusher_up() {
  for _ in $(seq 1 100); do
    [ "$(q $db "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_tenant meter flusher'")" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
check "the meter flusher is connected to $db" flusher_up

# eventually EXPECTED COMMAND...: COMMAND's output once it is EXPECTED (the flusher writes within
# pg_tenant.flush_interval), or its last output after 5 s.
eventually() { local want=$1; shift; poll_until "$want" 5 "$@"; }

# listen SECONDS FILE: a session that LISTENs for that long; psql prints each notification.
listen() {
  psql -X -d $db -c "LISTEN pg_tenant_usage" -c "SELECT pg_sleep($1), 'listen'" >"$2" 2>&1 &
  # Listening once its pg_sleep runs (the LISTEN came first in the same session).
  wait_until 10 listening "$1"
}
listening() { test "$(q $db "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($1), ''listen''' AND state = 'active'")" -ge 1; }
notified() { grep -c '^Asynchronous notification "pg_tenant_usage" with payload' "$1"; }
alerts() { q $db "SELECT coalesce(string_agg(level || '@' || used, ',' ORDER BY level), 'none') FROM tenant.usage_alerts
                   WHERE tenant_id = '$1' AND resource = '$2'"; }

# 1. Shared memory, 16 clients: 3,200 tries at a hard limit of 1,600 and 1,600 calls of a soft one.
cat >"$work/meter.sql" <<'SQL'
BEGIN;
SELECT tenant.set('alpha');
SELECT tenant.try_meter('api');
SELECT tenant.meter('soft_api');
COMMIT;
SQL
listen 8 "$work/listen1.out"
pgbench -n -U alerts_app -c 16 -j 4 -t 200 -f "$work/meter.sql" $db >"$work/pgbench1.out" 2>&1
check "16 pgbench clients ran 3,200 transactions" grep -q "number of transactions actually processed: 3200/3200" "$work/pgbench1.out"
check_eq "hard limit: each level once, at the count that crossed it" "50@800,80@1280,100@1600" \
  "$(eventually "50@800,80@1280,100@1600" alerts $a api)"
check_eq "soft limit passed: each level once (150% too)" "100@1000,150@1500" "$(eventually "100@1000,150@1500" alerts $a soft_api)"
check_eq "the counts: 1,600 at the hard limit, 3,200 past the soft one" "api=1600,soft_api=3200" \
  "$(q $db "SELECT string_agg(resource || '=' || used, ',' ORDER BY resource) FROM tenant._meter_usage('$a')")"
wait
check_eq "16 clients: one NOTIFY per alert (5)" "5" "$(notified "$work/listen1.out")"
payload=$(sed -nE 's/^Asynchronous notification "pg_tenant_usage" with payload "(.*)" received.*/\1/p' "$work/listen1.out" \
  | grep '"level" : 80' | head -n 1)
check_eq "the JSON payload: tenant, resource, window, level, used, limit" \
  "$a|api|day|80|1280|1600|hard|$(q $db "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")" \
  "$(q $db "SELECT concat_ws('|', p->>'tenant', p->>'resource', p->>'period', p->>'level', p->>'used', p->>'limit',
                                 p->>'enforcement', (p->>'window_start')::timestamptz) FROM (SELECT \$j\$$payload\$j\$::json AS p) x")"

# 2. The crossing call's transaction rolls back: the count stays, and so does the alert.
psql -X -q -U alerts_app -d $db -c "BEGIN" -c "SELECT tenant.set('bravo')" -c "SELECT tenant.meter('rolled', 6)" \
  -c "ROLLBACK" >/dev/null
check_eq "a crossing rolled back still alerts (the meter is not transactional)" "50@6" "$(eventually 50@6 alerts $b rolled)"

# 3. The application role reads no alert (another tenant's usage) and writes none.
check_eq "the application role cannot read tenant.usage_alerts" "42501" \
  "$(sqlstate_of "$db" "SET ROLE alerts_app; SELECT * FROM tenant.usage_alerts")"
check_eq "the application role cannot write an alert" "42501" \
  "$(sqlstate_of "$db" "SET ROLE alerts_app; SELECT tenant._usage_alert('$a', 'api', now(), 'day', 1, 1, 1, 'hard')")"

# 4. A full queue: the worker is held (an hour's flush interval) while 1,128 levels are crossed
#    (141 tenants, 8 levels each); past the 1,024 the queue holds, the callers write their own.
#    The first tenant is purged before the worker comes back: its queued alerts are not written.
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
INSERT INTO tenant.plans (name) VALUES ('many');
SELECT tenant.set_limit('many', 'q', 8, 'day', 'hard', '{13,25,38,50,63,75,88,100}');
INSERT INTO tenant.tenants (id, name, slug, plan)
SELECT ('00000000-0000-0000-0001-' || lpad(i::text, 12, '0'))::uuid, 'Many ' || i, 'many-' || i, 'many'
  FROM generate_series(1, 140) AS i;
INSERT INTO tenant.tenants (id, name, slug, plan) VALUES ('00000000-0000-0000-0002-000000000001', 'Doomed', 'doomed', 'many');
ALTER SYSTEM SET pg_tenant.flush_interval = '1h';
SELECT pg_reload_conf();
SQL
poll_until 1h 5 q $db "SHOW pg_tenant.flush_interval" >/dev/null
sleep 0.3  # the worker reads the reload at its next wake-up (100 ms); nothing shows it has
listen 10 "$work/listen4.out"
# First a tenant whose 8 alerts are queued, then purged before the worker writes them.
psql -X -q -U alerts_app -d $db -c "BEGIN" -c "SELECT tenant.set('doomed')" -c "SELECT tenant.meter('q') FROM generate_series(1, 8)" \
  -c "COMMIT" >/dev/null
q $db "SELECT count(*) >= 0 FROM tenant.purge('00000000-0000-0000-0002-000000000001', force => true)" >/dev/null
for i in $(seq 1 140); do
  echo "BEGIN; SELECT tenant.set('many-$i'); SELECT tenant.meter('q') FROM generate_series(1, 8); COMMIT;"
done | psql -X -q -U alerts_app -d $db >/dev/null
many() { q $db "SELECT count(*) || '/' || count(DISTINCT (tenant_id, level)) FROM tenant.usage_alerts WHERE resource = 'q'"; }
check_eq "queue full: the calls past it wrote their alerts themselves (1,128 - 1,024)" "104/104" "$(many)"
q $db "ALTER SYSTEM SET pg_tenant.flush_interval = 100" >/dev/null; q $db "SELECT pg_reload_conf()" >/dev/null
check_eq "the worker back: every alert once (1,120), none of the purged tenant" "1120/1120" "$(eventually 1120/1120 many)"
check_eq "thresholds round up: 13% and 25% of 8 at 2, 38% and 50% at 4, ..." "13@2,25@2,38@4,50@4,63@6,75@6,88@8,100@8" \
  "$(alerts 00000000-0000-0000-0001-000000000001 q)"
wait
check_eq "... and one NOTIFY each" "1120" "$(notified "$work/listen4.out")"

# 5. The export: a window of one second ends and is flushed, then it is exported, once.
psql -X -q -U alerts_app -d $db -c "BEGIN" -c "SELECT tenant.set('bravo')" \
  -c "SELECT tenant.meter('ticks') FROM generate_series(1, 5)" -c "COMMIT" >/dev/null
check_eq "an open window is not exported" "0" \
  "$(q $db "SELECT count(*) FROM tenant.closed_windows() WHERE tenant_id = '$b' AND resource = 'ticks'")"
check_eq "closed_windows(): the ended second with its count" "5|00:00:01" \
  "$(poll_until "5|00:00:01" 5 q $db "SELECT used || '|' || (window_end - window_start) FROM tenant.closed_windows() WHERE tenant_id = '$b' AND resource = 'ticks'")"
check_eq "closed_windows(since its end): nothing again" "0" \
  "$(q $db "SELECT count(*) FROM tenant.closed_windows((SELECT max(window_end) FROM tenant.closed_windows()))")"

# idempotent BACKEND TENANT: 16 clients x 4 transactions, each metering the same 50 keys of
# 'idem' (no limit) and trying the same 50 of 'idem_hard' (limit 30); every answer is recorded.
idempotent() {
  cat >"$work/idem.sql" <<SQL
BEGIN;
SELECT tenant.set('$2');
INSERT INTO public.answers SELECT '$1', :client_id, g, coalesce(tenant.meter('idem', 1, 'evt-' || g)::text, 'null')
  FROM generate_series(1, 50) AS g;
INSERT INTO public.answers SELECT '$1-hard', :client_id, g, tenant.try_meter('idem_hard', 1, 'evt-' || g)::text
  FROM generate_series(1, 50) AS g;
COMMIT;
SQL
  pgbench -n -U alerts_app -c 16 -j 4 -t 4 -f "$work/idem.sql" $db >"$work/pgbench-idem-$1.out" 2>&1
  check "$1 idempotency: 16 clients ran 64 transactions" grep -q "processed: 64/64" "$work/pgbench-idem-$1.out"
  local counts
  if [ "$1" = redis ]; then
    counts="$(rcli --raw GET "pg_tenant:$db:$3:idem:0")|$(rcli --raw GET "$(rcli --raw KEYS "pg_tenant:$db:$3:idem_hard:[0-9]*")")"
  else
    counts=$(q $db "SELECT (SELECT used FROM tenant._meter_usage('$3') WHERE resource = 'idem')
                     || '|' || (SELECT used FROM tenant._meter_usage('$3') WHERE resource = 'idem_hard')")
  fi
  check_eq "$1 idempotency: 3,200 keyed calls of 50 keys counted 50 (and 30 at the limit of 30)" "50|30" "$counts"
  check_eq "$1 idempotency: every repeat got its key's first answer" "3200|50|3200|50|30" \
    "$(q $db "SELECT count(*) FILTER (WHERE backend = '$1') || '|' || count(DISTINCT (key, answer)) FILTER (WHERE backend = '$1')
                        || '|' || count(*) FILTER (WHERE backend = '$1-hard')
                        || '|' || count(DISTINCT (key, answer)) FILTER (WHERE backend = '$1-hard')
                        || '|' || count(DISTINCT key) FILTER (WHERE backend = '$1-hard' AND answer = 'true')
                FROM public.answers WHERE backend IN ('$1', '$1-hard')")"
}
idempotent shmem alpha $a

# 5b. Every tenant has its share of the idempotency keys (0.10.0, issue 19 item 6): one tenant
# making up keys fills its share (pg_tenant.max_idempotency_keys_per_tenant, default 1,000 of
# the 10,000), and is refused (53400), while another tenant's keys still count; a horizon
# shortened on reload forgets the keys older than it at once (on 0.9.0 a key kept the horizon it
# was made with: the flood kept every tenant out for the old horizon).
c=00000000-0000-0000-0000-0000000a1e03
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<SQL
INSERT INTO tenant.tenants (id, name, slug, plan) VALUES ('$c', 'Charlie', 'charlie', 'metered');
SELECT tenant.set_limit('metered', 'flood', 1000000, 'day');
SQL
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
-- tenant, n keys of a prefix: how many counted, then the SQLSTATE of the first refusal (or none).
CREATE FUNCTION public.flood(t uuid, n int, prefix text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE counted int := 0;
BEGIN
  PERFORM tenant.set(t);
  FOR g IN 1..n LOOP
    BEGIN
      PERFORM tenant.meter('flood', 1, prefix || g);
      counted := counted + 1;
    EXCEPTION WHEN OTHERS THEN
      RETURN counted || '|' || SQLSTATE;
    END;
  END LOOP;
  RETURN counted || '|none';
END $$;
SQL
check_eq "keys: a tenant making up 1,100 keys is refused after its share of 1,000 (53400)" "1000|53400" \
  "$(q $db "SELECT public.flood('$c', 1100, 'made-up-')")"
check_eq "keys: another tenant's keyed calls still count" "50|none" "$(q $db "SELECT public.flood('$b', 50, 'b-')")"
check_eq "keys: the refused tenant's repeat of a key it holds still gets its answer (what the limit left)" "999999" \
  "$(q $db "SELECT tenant.set('$c'); SELECT tenant.meter('flood', 1, 'made-up-1')" | tail -n 1)"
q $db "ALTER SYSTEM SET pg_tenant.idempotency_horizon = '1s'" >/dev/null; q $db "SELECT pg_reload_conf()" >/dev/null
# Once the reload is seen and a second has passed, the flood's keys are older than the horizon.
# (A remembered key answers what its first call left, 999,999; a forgotten one counts again.)
forgotten() { q $db "SELECT tenant.set('$c'); SELECT tenant.meter('flood', 1, 'made-up-1') < 999999" | tail -n 1; }
check_eq "keys: a horizon shortened on reload forgets the keys older than it (a key counts again)" "t" \
  "$(eventually t forgotten)"
check_eq "keys: and gives the tenant's share back (new keys count)" "100|none" \
  "$(q $db "SELECT public.flood('$c', 100, 'later-')")"
q $db "ALTER SYSTEM RESET pg_tenant.idempotency_horizon" >/dev/null; q $db "SELECT pg_reload_conf()" >/dev/null

# 6. The Redis backend: the same levels from Redis's counts, 16 clients.
if ! command -v redis-server >/dev/null; then
  fail "billing: redis-server is not installed"; exit 0
fi
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log"
for _ in $(seq 1 50); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<SQL
SELECT tenant.set_limit('metered', 'redis_api', 800, 'day', 'hard', '{50,100}');
ALTER ROLE alerts_app SET pg_tenant.meter_backend = 'redis';
ALTER SYSTEM SET pg_tenant.redis_url = 'redis://127.0.0.1:$rport/0';
SELECT pg_reload_conf();
SQL
poll_until "redis://127.0.0.1:$rport/0" 5 q $db "SHOW pg_tenant.redis_url" >/dev/null
cat >"$work/redis.sql" <<'SQL'
BEGIN;
SELECT tenant.set('bravo');
SELECT tenant.try_meter('redis_api');
COMMIT;
SQL
listen 6 "$work/listen6.out"
pgbench -n -U alerts_app -c 16 -j 4 -t 100 -f "$work/redis.sql" $db >"$work/pgbench6.out" 2>&1
check "redis: 16 pgbench clients ran 1,600 transactions" grep -q "number of transactions actually processed: 1600/1600" "$work/pgbench6.out"
check_eq "redis: the count stopped at the limit" "800" "$(rcli --raw GET "$(counter_key "pg_tenant:pt_alerts:$b:redis_api:")")"
# With leases a call's count is its server's view, and concurrent calls raise the server's mark in
# any order: the row's used is at or past the threshold, by less than the 16 calls in flight.
redis_levels() { q $db "SELECT string_agg(level::text, ',' ORDER BY level) || '|' || bool_and(used >= level * 8 AND used < level * 8 + 16)::text
                        FROM tenant.usage_alerts WHERE tenant_id = '$b' AND resource = 'redis_api'"; }
check_eq "redis: each level once, at or just past its threshold (400, 800)" "50,100|true" "$(eventually '50,100|true' redis_levels)"
wait
check_eq "redis: one NOTIFY each" "2" "$(notified "$work/listen6.out")"
idempotent redis bravo $b
check_eq "redis: the idempotency keys are in Redis, with the horizon as their TTL" "50|300" \
  "$(rcli --raw KEYS 'pg_tenant:pt_alerts:*:idem:once:*' | wc -l | tr -d ' ')|$(rcli --raw TTL \
     "$(rcli --raw KEYS 'pg_tenant:pt_alerts:*:idem:once:evt-1')" | awk '{print ($1 > 290 && $1 <= 300) ? 300 : $1}')"
q $db "ALTER ROLE alerts_app RESET pg_tenant.meter_backend" >/dev/null

# 7. Two servers share the Redis (issue 15): cluster B, initdb'd here, meters the same tenant's
#    limits while this one does, 16 pgbench clients on each. Each server serves calls from its
#    leases, so its view of the count jumps when the other's usage arrives; still, over both
#    clusters' tenant.usage_alerts together, each level is recorded exactly once, with a used count
#    at or past its threshold. A level crossed globally by a last call that no server's own view
#    crossed is recorded by the worker's report (within a worker tick and a flush).
other=$work/b
oport=${BILLING_OTHER_PORT:-$(free_port)}
new_cluster "$other" "$oport" <<CONF
shared_preload_libraries = 'pg_tenant'
pg_tenant.database = '$db'
pg_tenant.flush_interval = 100
pg_tenant.redis_url = 'redis://127.0.0.1:$rport/0'
max_connections = 60
CONF
start_cluster "$other" || fail "billing: cluster B did not start"
trap '[ -n "${KEEP:-}" ] || { stop_cluster "$other" immediate; cleanup; }' EXIT
qb() { psql -X -v ON_ERROR_STOP=1 -Atq -h "$other" -p "$oport" -d $db -c "$1"; }
createdb -h "$other" -p "$oport" $db
servers_setup="
SELECT tenant.set_limit('metered', 'two_small', 100, 'day', 'hard', '{50,80,100}');
SELECT tenant.set_limit('metered', 'two_large', 100000, 'day', 'hard', '{50,80,100}');
SELECT tenant.set_limit('metered', 'two_late', 1000000, 'day', 'hard', '{10}');
ALTER ROLE alerts_app SET pg_tenant.meter_backend = 'redis';"
psql -X -q -v ON_ERROR_STOP=1 -h "$other" -p "$oport" -d $db >/dev/null <<SQL
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.plans (name) VALUES ('metered');
INSERT INTO tenant.tenants (id, name, slug, plan) VALUES ('$b', 'Bravo', 'bravo', 'metered');
CREATE ROLE alerts_app LOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(text), tenant.meter(text, bigint), tenant.try_meter(text, bigint) TO alerts_app;
$servers_setup
SQL
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "$servers_setup" >/dev/null
for_b() { PGHOST=$other PGPORT=$oport "$@"; }
check "cluster B's meter flusher is connected to $db" for_b flusher_up
# both RESOURCE: alerts over both clusters, "level@used" by level, one per row.
both() {
  { q $db "SELECT level || '@' || used FROM tenant.usage_alerts WHERE tenant_id = '$b' AND resource = '$1'"
    qb "SELECT level || '@' || used FROM tenant.usage_alerts WHERE tenant_id = '$b' AND resource = '$1'"; } |
    sort -t@ -k1,1n -k2,2n | paste -sd, -
}
levels_of() { echo "$1" | tr ',' '\n' | cut -d@ -f1 | paste -sd, -; }
at_or_past() {  # ALERTS LIMIT: every row's used is at or past its level's threshold
  local row
  for row in $(echo "$1" | tr ',' ' '); do
    [ "${row#*@}" -ge $(( ($2 * ${row%@*} + 99) / 100 )) ] || return 1
  done
}
for pair in two_small:100:2 two_large:100000:170; do
  res=${pair%%:*} rest=${pair#*:}; limit=${rest%%:*} tx=${rest#*:}
  printf 'BEGIN;\nSELECT tenant.set(%s);\nSELECT count(*) FROM generate_series(1, 20) WHERE tenant.try_meter(%s);\nCOMMIT;\n' \
    "'bravo'" "'$res'" >"$work/$res.sql"
  pgbench -n -U alerts_app -c 16 -j 2 -t "$tx" -f "$work/$res.sql" $db >"$work/$res-a.out" 2>&1 &
  pid=$!
  for_b pgbench -n -U alerts_app -c 16 -j 2 -t "$tx" -f "$work/$res.sql" $db >"$work/$res-b.out" 2>&1
  wait $pid
  check "$res: 2 clusters x 16 clients ran" grep -q "actually processed: $(( 16 * tx ))/$(( 16 * tx ))" "$work/$res-a.out" "$work/$res-b.out"
  # Calls can be refused while units sit in the other cluster's lease: once the leases are back
  # (a lease time), cluster B takes what is left, so that the count reaches the limit.
  counter=$(counter_key "pg_tenant:$db:$b:$res:")
  for _ in $(seq 1 40); do [ -z "$(rcli --raw HGET "$counter:leases" _total)" ] && break; sleep 0.1; done
  left=$(( limit - $(rcli --raw GET "$counter") ))
  psql -X -q -U alerts_app -h "$other" -p "$oport" -d $db -c "BEGIN" -c "SELECT tenant.set('bravo')" \
    -c "SELECT count(*) FROM generate_series(1, $left + 20) WHERE tenant.try_meter('$res')" -c "COMMIT" >/dev/null
  check_eq "$res: Redis counts the limit ($limit)" "$limit" \
    "$(eventually "$limit" eval 'rcli --raw GET "$(counter_key "pg_tenant:$db:$b:$res:")"')"
  got=$(eventually "50,80,100" eval 'levels_of "$(both "$res")"')
  check_eq "$res (limit $limit, 2 servers): each level recorded once over both clusters ($(both "$res"))" "50,80,100" "$got"
  check "$res: each row's used is at or past its threshold" at_or_past "$(both "$res")" "$limit"
done

# The last calls cross a level that no server's own view reaches: leases of up to 100,000 units
# kept for a minute, so that calls are served with no round trip. A counts 60,000 and B 30,000
# (each a round trip), then A 20,000 more from its lease: A sees 80,000, B 90,000, Redis will
# have 110,000 once A's worker reports, past the level (10% of 1,000,000 = 100,000).
qa() { q $db "$1"; }
for run in qa qb; do
  $run "ALTER SYSTEM SET pg_tenant.redis_lease_max = 100000" >/dev/null
  $run "ALTER SYSTEM SET pg_tenant.redis_lease_time = '60s'" >/dev/null
  $run "SELECT pg_reload_conf()" >/dev/null
  poll_until 1min 5 $run "SHOW pg_tenant.redis_lease_time" >/dev/null
done
late() { psql -X -q -v ON_ERROR_STOP=1 -U alerts_app -h "$1" -p "$2" -d $db -c "BEGIN" -c "SELECT tenant.set('bravo')" \
           -c "SELECT tenant.meter('two_late', $3)" -c "COMMIT" >/dev/null; }
late "$PGHOST" "$PGPORT" 60000
late "$other" "$oport" 30000
late "$PGHOST" "$PGPORT" 20000
start=$(date +%s%N)
got=$(eventually "10" eval 'levels_of "$(both two_late)"')
waited=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "two_late: the level crossed by the last call, seen by no call, recorded once ($(both two_late))" "10" "$got"
check "two_late: ... within a worker tick and a flush (0.2 s here; waited $waited ms, 1 s allowed)" test "$waited" -le 1000
check "two_late: ... at or past its threshold" at_or_past "$(both two_late)" 1000000
for run in qa qb; do
  $run "ALTER SYSTEM RESET pg_tenant.redis_lease_max" >/dev/null
  $run "ALTER SYSTEM RESET pg_tenant.redis_lease_time" >/dev/null
  $run "SELECT pg_reload_conf()" >/dev/null
done
q $db "ALTER ROLE alerts_app RESET pg_tenant.meter_backend" >/dev/null
