#!/usr/bin/env bash
# A streaming read replica (issue 11, "Read replicas"): a hot standby made with pg_basebackup from
# the suite's cluster (PGHOST/PGPORT, as pg_virtualenv sets them), started here on a socket of its
# own. On it: tenant.set() by slug and by id, tenant.current_id(), SET LOCAL, unknown and suspended
# tenants, the generated policies (as an application role), feature flags, and the cache
# invalidation of changes replayed from the primary: a suspension, a resumption, a changed feature
# flag and a new tenant reach a session on the replica at its next transaction.
# (Meters on a replica are tested in meters_cluster.sh.)
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_replica
app=pt_replica_app
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<SQL
CREATE EXTENSION pg_tenant;
DO \$\$ BEGIN CREATE ROLE $app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
INSERT INTO tenant.plans (name, features) VALUES ('pro', '{"reports": true, "export": true}');
SELECT tenant.create('Acme', 'acme', 'pro');
SELECT tenant.create('Globex', 'globex');
SELECT tenant.create('Dormant', 'dormant');
SELECT tenant.suspend(id) FROM tenant.tenants WHERE slug = 'dormant';
CREATE TABLE projects (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('projects');
INSERT INTO projects SELECT t.id, g, t.slug || ' ' || g FROM tenant.tenants t, generate_series(1, 3) g WHERE t.slug = 'acme';
INSERT INTO projects SELECT t.id, g, t.slug || ' ' || g FROM tenant.tenants t, generate_series(11, 12) g WHERE t.slug = 'globex';
GRANT SELECT, INSERT ON projects TO $app;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(),
                          tenant.has_feature(text), tenant.require_feature(text) TO $app;
SQL
acme=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'acme'")
globex=$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'globex'")

# The replica.
work=$(mktemp -d /tmp/pg_tenant-replica.XXXX)
sport=$(free_port)
chown postgres "$work"
cleanup() {
  [ -f "$work/data/postmaster.pid" ] &&
    runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$work/data" -w stop -m fast >/dev/null 2>&1
  rm -rf "$work"
  dropdb --if-exists $db 2>/dev/null
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $app" >/dev/null 2>&1
}
trap cleanup EXIT
runuser -u postgres -- env PGPASSWORD="${PGPASSWORD:-}" pg_basebackup -h 127.0.0.1 -p "${PGPORT:-5432}" \
  -U "${PGUSER:-postgres}" -D "$work/data" -R -X stream -c fast >"$work/basebackup.log" 2>&1 || cat "$work/basebackup.log"
# A hot standby refuses to start with a smaller value of these than its primary's.
standby_minimums=$(psql -X -q -At -d postgres -c "SELECT string_agg(name || ' = ' || setting, E'\\n')
  FROM pg_settings WHERE name IN ('max_connections', 'max_prepared_transactions', 'max_locks_per_transaction',
                                  'max_wal_senders', 'max_worker_processes')")
cat >"$work/data/postgresql.conf" <<CONF
port = $sport
listen_addresses = ''
unix_socket_directories = '$work'
hot_standby = on
shared_preload_libraries = 'pg_tenant'
$standby_minimums
CONF
printf 'local all all trust\n' >"$work/data/pg_hba.conf"
chown -R postgres "$work"
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null ||
  tail -n 20 "$work/log"
R="host=$work port=$sport dbname=$db user=postgres"
RA="host=$work port=$sport dbname=$db user=$app"
last() { psql -X -q -At -d "$1" -c "$2" 2>&1 | tail -n 1; }

check_eq "the replica is a hot standby" "t" "$(q "$R" "SELECT pg_is_in_recovery()")"
check_eq "tenant.set(slug) on the replica returns the id" "$acme" "$(last "$RA" "BEGIN; SELECT tenant.set('acme'); COMMIT")"
check_eq "tenant.set(uuid) on the replica" "$globex" "$(last "$RA" "BEGIN; SELECT tenant.set('$globex'::uuid); COMMIT")"
check_eq "tenant.current_id() after tenant.set, in the transaction" "$acme" \
  "$(last "$RA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT tenant.current_id(); COMMIT")"
check_eq "... and NULL in the next transaction" "null" \
  "$(psql -X -q -At -d "$RA" -c "BEGIN" -c "SELECT tenant.set('acme') IS NOT NULL" -c "COMMIT" \
       -c "SELECT coalesce(tenant.current_id()::text, 'null')" 2>&1 | tail -n 1)"
check_eq "SET LOCAL pg_tenant.tenant_id, then tenant.current_id()" "$acme" \
  "$(last "$RA" "BEGIN; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT tenant.current_id(); COMMIT")"
check_eq "an unknown tenant cannot be entered on the replica (TN001)" "TN001" "$(sqlstate_of "$RA" "SELECT tenant.set('nobody')")"
check_eq "a suspended tenant cannot be entered on the replica (TN002)" "TN002" "$(sqlstate_of "$RA" "SELECT tenant.set('dormant')")"
check_eq "SET LOCAL of a suspended tenant: current_id() refuses it (TN002)" "TN002" \
  "$(sqlstate_of "$RA" "BEGIN; SET LOCAL pg_tenant.tenant_id = '$(q $db "SELECT id FROM tenant.tenants WHERE slug = 'dormant'")'; SELECT tenant.current_id(); COMMIT")"

# The generated policies, as the application role.
check_eq "policies on the replica: no tenant, no rows" "0" "$(last "$RA" "SELECT count(*) FROM projects")"
check_eq "policies on the replica: acme sees its 3 rows" "3" \
  "$(last "$RA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FROM projects; COMMIT")"
check_eq "policies on the replica: globex sees its 2 rows, none of acme's" "2 0" \
  "$(last "$RA" "BEGIN; SELECT tenant.set('globex') IS NOT NULL; SELECT count(*) || ' ' || count(*) FILTER (WHERE tenant_id = '$acme') FROM projects; COMMIT")"
check_eq "a write on the replica is refused as read-only (25006)" "25006" \
  "$(sqlstate_of "$RA" "BEGIN; SELECT tenant.set('acme'); INSERT INTO projects (id) VALUES (99); COMMIT")"

# Feature flags (the plan's, and a tenant's override).
check_eq "has_feature on the replica: acme (plan pro) has reports" "t" \
  "$(last "$RA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT tenant.has_feature('reports'); COMMIT")"
check_eq "has_feature on the replica: globex (plan free) has not" "f" \
  "$(last "$RA" "BEGIN; SELECT tenant.set('globex') IS NOT NULL; SELECT tenant.has_feature('reports'); COMMIT")"
check_eq "require_feature on the replica refuses globex (TN007)" "TN007" \
  "$(sqlstate_of "$RA" "BEGIN; SELECT tenant.set('globex'); SELECT tenant.require_feature('reports'); COMMIT")"

# Changes on the primary, replayed, reach one session on the replica at its next transaction.
cat >"$work/primary.sh" <<SH
#!/usr/bin/env bash
# primary.sh SQL: runs SQL on the primary, then waits until the replica has replayed it.
lsn=\$(psql -X -q -At -d $db -c "\$1" -c "SELECT pg_current_wal_lsn()" | tail -n 1)
for _ in \$(seq 1 100); do
  [ "\$(psql -X -At -d "$R" -c "SELECT pg_last_wal_replay_lsn() >= '\$lsn'")" = t ] && exit 0
  sleep 0.1
done
echo "replica did not replay \$lsn" >&2
exit 1
SH
chmod +x "$work/primary.sh"
# One session on the replica; after each statement that matters it echoes "step SQLSTATE value".
out=$(psql -X -q -At -d "$RA" 2>/dev/null <<SQL
BEGIN;
SELECT tenant.set('acme') AS v \gset
\echo entered :SQLSTATE :v
SELECT tenant.has_feature('reports') AS v \gset
\echo reports :SQLSTATE :v
COMMIT;
\! $work/primary.sh "SELECT tenant.suspend('$acme')"
BEGIN;
SELECT tenant.set('acme');
\echo suspended-set :SQLSTATE
COMMIT;
BEGIN;
SET LOCAL pg_tenant.tenant_id = '$acme';
SELECT tenant.current_id();
\echo suspended-current_id :SQLSTATE
COMMIT;
\! $work/primary.sh "SELECT tenant.resume('$acme')"
BEGIN;
SELECT tenant.set('acme') AS v \gset
\echo resumed :SQLSTATE :v
COMMIT;
\! $work/primary.sh "UPDATE tenant.tenants SET feature_overrides = '{\"export\": false}' WHERE slug = 'acme'"
BEGIN;
SELECT tenant.set('acme') IS NOT NULL;
SELECT tenant.has_feature('export') AS v \gset
\echo override-export :SQLSTATE :v
SELECT tenant.has_feature('reports') AS v \gset
\echo override-reports :SQLSTATE :v
COMMIT;
\! $work/primary.sh "UPDATE tenant.plans SET features = '{\"reports\": false}' WHERE name = 'pro'"
BEGIN;
SELECT tenant.set('acme') IS NOT NULL;
SELECT tenant.has_feature('reports') AS v \gset
\echo plan-reports :SQLSTATE :v
COMMIT;
SELECT tenant.set('initech');
\echo unknown :SQLSTATE
\! $work/primary.sh "SELECT tenant.create('Initech', 'initech')"
BEGIN;
SELECT tenant.set('initech') AS v \gset
\echo created :SQLSTATE :v
COMMIT;
SQL
)
step() { sed -nE "s/^$1 //p" <<<"$out" | head -n 1; }
echo "$out" | grep -E '^[a-z_-]+ [0-9A-Z]{5}' | sed 's/^/    replica session: /'
check_eq "the session enters acme first" "00000 $acme" "$(step entered)"
check_eq "... whose plan has reports" "00000 t" "$(step reports)"
check_eq "a suspension on the primary, replayed, reaches the session at its next transaction: tenant.set (TN002)" \
  "TN002" "$(step suspended-set)"
check_eq "... and SET LOCAL, then tenant.current_id() (TN002)" "TN002" "$(step suspended-current_id)"
check_eq "a resumption on the primary reaches the session at its next transaction" "00000 $acme" "$(step resumed)"
check_eq "a changed feature override reaches the session (export off)" "00000 f" "$(step override-export)"
check_eq "... the plan's other flag is still on (reports)" "00000 t" "$(step override-reports)"
check_eq "a changed plan flag reaches the session (reports off)" "00000 f" "$(step plan-reports)"
check_eq "a tenant unknown to the session (TN001) ..." "TN001" "$(step unknown)"
check_eq "... created on the primary is entered at the session's next transaction" \
  "00000 $(q $db "SELECT id FROM tenant.tenants WHERE slug = 'initech'")" "$(step created)"
