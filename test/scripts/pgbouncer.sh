#!/usr/bin/env bash
# Pooler safety: a real pgbouncer in transaction pooling mode in front of the test cluster.
# 16 clients share 3 server connections, each switching among 8 tenants; every transaction
# checks that it sees exactly the tenant it set, and the next transaction (often on another
# server connection, often on one another client just used) checks that it sees none.
# A control run with the session-wide form shows that the check does catch a leak.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_bouncer
here=test/scripts/pgbouncer
dropdb --if-exists $db 2>/dev/null
psql -X -q -c "DROP ROLE IF EXISTS pt_pool_app" 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db <<'SQL'
CREATE EXTENSION pg_tenant;
CREATE ROLE pt_pool_app LOGIN PASSWORD 'pool-test-password';
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid),
                          tenant.set_session(text), tenant.reset() TO pt_pool_app;
SELECT tenant.exempt('public.pool_tenants', 'test fixture: tenant ids by number');
CREATE TABLE public.pool_tenants (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO public.pool_tenants SELECT i, tenant.create('Pool ' || i, 'pool-' || i) FROM generate_series(1, 8) AS i;
GRANT SELECT ON public.pool_tenants TO pt_pool_app;
CREATE FUNCTION public.expect_tenant(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF tenant.current_id() IS DISTINCT FROM (SELECT id FROM public.pool_tenants p WHERE p.n = $1) THEN
        RAISE EXCEPTION 'LEAK: expected tenant %, saw %', $1, tenant.current_id();
    END IF;
END $$;
CREATE FUNCTION public.expect_no_tenant() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF tenant.current_id() IS NOT NULL THEN
        RAISE EXCEPTION 'LEAK: expected no tenant, saw %', tenant.current_id();
    END IF;
END $$;
SQL

port=$(free_port)
work=$(mktemp -d)
cat >"$work/pgbouncer.ini" <<INI
[databases]
$db = host=127.0.0.1 port=${PGPORT:-5432} dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = plain
auth_file = $work/userlist.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 64
server_reset_query =
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
echo '"pt_pool_app" "pool-test-password"' >"$work/userlist.txt"
chown -R postgres "$work"
runuser -u postgres -- pgbouncer -d "$work/pgbouncer.ini"
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

run_clients() {  # script -> pgbench exit code; output in $work/pgbench.out
  PGPASSWORD=pool-test-password pgbench -n -h 127.0.0.1 -p "$port" -U pt_pool_app \
    -c 16 -j 2 -t 150 -f "$here/$1" $db >"$work/pgbench.out" 2>&1
}

run_clients transaction_local.pgbench
rc=$?
check_eq "16 clients x 150 tenant switches through pgbouncer: no leak" 0 "$rc"
[ $rc -ne 0 ] && tail -n 20 "$work/pgbench.out"
check_eq "all 2400 transactions ran" 2400 "$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$work/pgbench.out")"
server_conns=$(q $db "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pt_pool_app'")
check "pgbouncer multiplexed 16 clients onto at most 3 server connections (saw $server_conns)" \
  test "$server_conns" -ge 1 -a "$server_conns" -le 3

# Control: the session-wide form is not pooler-safe, and the same checks catch it.
run_clients session_wide.pgbench
rc=$?
check "control: session-wide context through a transaction pooler is caught as a leak" \
  grep -q "LEAK" "$work/pgbench.out"

bouncer=$(cat "$work/pgbouncer.pid")
kill "$bouncer" 2>/dev/null
wait_until 5 bash -c "! kill -0 $bouncer"
rm -rf "$work"
dropdb $db
psql -X -q -c "DROP ROLE pt_pool_app"
