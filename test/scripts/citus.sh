#!/usr/bin/env bash
# pg_tenant on Citus (issue 11, "What to build"): a coordinator and two workers on loopback, built
# here with initdb/pg_ctl (shared_preload_libraries = 'citus,pg_tenant' on every node), then every
# bullet of the issue as assertions: the registry as reference tables read by every node, the
# context reaching the workers (tenant.set() and SET LOCAL), protect before and after
# create_distributed_table/create_reference_table with its policies on every shard (the lost
# AS RESTRICTIVE), the guard and Citus's own DDL (shards, reference tables, exempted tables, shard
# moves), row quotas and meters (shared memory per node, Redis cluster-wide). It prints the figures
# of a router query and a multi-shard count under pg_tenant against an explicit WHERE (same
# cluster, one run; printed, not asserted). Everything it starts is stopped and removed at the end.
#
# Citus is not in Debian's archive: when it is not installed (no citus.so in pg_config
# --pkglibdir), this prints one line saying so and exits 0 with no assertion.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

if [ ! -f "$(pg_config --pkglibdir)/citus.so" ]; then
  echo "citus.sh: not run: Citus is not installed on this machine (see README, section Citus)"
  exit 0
fi

bindir=$(pg_config --bindir)
base=$(mktemp -d /tmp/pg_tenant-citus.XXXX)
chown postgres "$base"
cleanup() {
  for n in coord w1 w2; do
    [ -f "$base/$n/postmaster.pid" ] && runuser -u postgres -- "$bindir/pg_ctl" -D "$base/$n" -w -m immediate stop >/dev/null 2>&1
  done
  [ -f "$base/redis.pid" ] && kill "$(cat "$base/redis.pid")" 2>/dev/null
  rm -rf "$base"
}
trap cleanup EXIT

# --- the cluster ------------------------------------------------------------------------------
# citus.propagate_set_commands = 'local' is part of the procedure (Citus sends SET LOCAL to the
# workers only then); the test also tries Citus's default, 'none', where no row may be seen.
declare -A port
start_node() {  # name
  local n=$1
  port[$n]=$(free_port)
  runuser -u postgres -- "$bindir/initdb" -D "$base/$n" -U postgres -A trust --no-sync >/dev/null || return 1
  cat >>"$base/$n/postgresql.conf" <<CONF
port = ${port[$n]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base'
shared_preload_libraries = 'citus,pg_tenant'
max_connections = 100
max_prepared_transactions = 100
wal_level = logical
fsync = off
pg_tenant.database = 'app'
pg_tenant.flush_interval = 200ms
citus.propagate_set_commands = 'local'
CONF
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' \
    >"$base/$n/pg_hba.conf"
  runuser -u postgres -- "$bindir/pg_ctl" -D "$base/$n" -l "$base/$n.log" -w start >/dev/null ||
    { tail -n 5 "$base/$n.log"; return 1; }
}
for n in coord w1 w2; do start_node $n || { fail "citus: node $n did not start"; exit 0; }; done
cs() { echo "host=127.0.0.1 port=${port[$1]} dbname=app user=${2:-postgres}"; }  # conninfo: node [role]
C=$(cs coord); CA=$(cs coord app); W1=$(cs w1); W2=$(cs w2); W1A=$(cs w1 app); W2A=$(cs w2 app)
for n in coord w1 w2; do
  psql -X -q -h 127.0.0.1 -p "${port[$n]}" -U postgres -d postgres -c "CREATE DATABASE app" \
    && q "$(cs $n)" "CREATE EXTENSION citus" >/dev/null
done
q "$C" "SELECT citus_set_coordinator_host('127.0.0.1', ${port[coord]})" >/dev/null
q "$C" "SELECT citus_add_node('127.0.0.1', ${port[w1]}), citus_add_node('127.0.0.1', ${port[w2]})" >/dev/null
echo "  Citus $(q "$C" "SELECT extversion FROM pg_extension WHERE extname = 'citus'") on coordinator :${port[coord]}, workers :${port[w1]} :${port[w2]}"
check_eq "citus: a coordinator and two active workers" "2" \
  "$(q "$C" "SELECT count(*) FROM pg_dist_node WHERE isactive AND groupid <> 0")"

# err CONNINFO SQL: the message of the first error (empty when none); shown on failure.
err() {
  psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=default -v SHOW_CONTEXT=never -d "$1" -c "$2" 2>&1 >/dev/null |
    sed -nE 's/^(psql:[^ ]* )?ERROR: +//p' | head -n 1
}
# last CONNINFO SQL: the last line of output (psql prints every result of a multi-statement -c).
last() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>/dev/null | tail -n 1; }
# steps CONNINFO SQL...: the statements sent one by one; the last line of output. Citus passes a
# SET LOCAL to the workers as the whole query string it came in (all of a multi-statement -c),
# so an application sends SET LOCAL as a statement of its own (README, section Citus).
steps() {
  local conn=$1 args=(); shift
  for statement in "$@"; do args+=(-c "$statement"); done
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$conn" "${args[@]}" 2>/dev/null | tail -n 1
}

# --- 1. CREATE EXTENSION on the coordinator; the registry as reference tables ------------------
q "$C" "CREATE EXTENSION pg_tenant" >/dev/null
for w in w1 w2; do
  check_eq "CREATE EXTENSION pg_tenant on the coordinator reaches $w" "1" \
    "$(q "$(cs $w)" "SELECT count(*) FROM pg_extension WHERE extname = 'pg_tenant'")"
done
# Tenants registered before the registry is distributed ('early' is suspended after it).
acme=$(q "$C" "SELECT tenant.create('Acme', 'acme')")
globex=$(q "$C" "SELECT tenant.create('Globex', 'globex')")
early=$(q "$C" "SELECT tenant.create('Early', 'early')")
registry_tables="'tenant.tenants','tenant.plans','tenant.plan_limits','tenant.tenant_limits'"
reference_count() {
  q "$C" "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'n' AND repmodel = 't'
            AND logicalrelid::text IN ($registry_tables)"
}
how="automatically (CREATE EXTENSION)"
if [ "$(reference_count)" != 4 ]; then
  if [ "$(q "$C" "SELECT to_regprocedure('tenant.distribute_registry()') IS NOT NULL")" = t ]; then
    how="tenant.distribute_registry()"
    out=$(err "$C" "SELECT tenant.distribute_registry()")
    [ -n "$out" ] && echo "    tenant.distribute_registry(): $out"
  else
    how="nothing (tenant.distribute_registry() does not exist)"
  fi
fi
check_eq "the registry (tenants, plans, plan_limits, tenant_limits) is made reference tables by $how" "4" "$(reference_count)"
if [ "$(reference_count)" != 4 ]; then
  # What a DBA has to do today, so that the rest can be tried: the registry's triggers and
  # foreign keys stop create_reference_table (XX000, then 42P07, then a distributed deadlock in
  # the plans trigger) unless it all goes in one transaction with these two settings.
  echo "    (distributing the registry by hand to go on: one transaction, citus.enable_unsafe_triggers = on,"
  echo "     citus.enable_local_reference_table_foreign_keys = off)"
  psql -X -q -v ON_ERROR_STOP=1 -d "$C" >/dev/null 2>"$base/manual.err" <<'SQL' || sed 's/^/    /' "$base/manual.err"
BEGIN;
SET LOCAL citus.enable_unsafe_triggers = on;
SET LOCAL citus.enable_local_reference_table_foreign_keys = off;
SELECT create_reference_table('tenant.plans');
SELECT create_reference_table('tenant.tenants');
SELECT create_reference_table('tenant.plan_limits');
SELECT create_reference_table('tenant.tenant_limits');
COMMIT;
SQL
fi
psql -X -q -d "$C" >/dev/null 2>&1 <<'SQL'
CREATE ROLE app LOGIN;
CREATE ROLE migrator LOGIN;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(), tenant.meter(text, bigint),
                          tenant.try_meter(text, bigint) TO app;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name), tenant.unprotect(regclass), tenant.audit() TO migrator;
GRANT CREATE ON SCHEMA public TO migrator;
-- Citus does not pass GRANTs on an extension's functions to the workers: the procedure runs them
-- on every node.
SELECT run_command_on_workers($$GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(),
    tenant.meter(text, bigint), tenant.try_meter(text, bigint) TO app$$);
SQL

# set_status ID STATUS: tenant.suspend()/resume(); when that fails, the row is written directly
# (and, when that deadlocks in a trigger on the registry's shards, with session_replication_role =
# replica, propagated as SET LOCAL), so that the rest can be tried.
set_status() {
  local fn=suspend; [ "$2" = active ] && fn=resume
  [ -z "$(err "$C" "SELECT tenant.$fn('$1')")" ] && return 0
  [ -z "$(err "$C" "UPDATE tenant.tenants SET status = '$2' WHERE id = '$1'")" ] && return 0
  err "$C" "BEGIN; SET LOCAL session_replication_role = replica; UPDATE tenant.tenants SET status = '$2' WHERE id = '$1'; COMMIT"
}

# The registry after distribution: new tenants and plans, a suspension.
out=$(err "$C" "SELECT tenant.create('Later', 'later')")
check_eq "tenant.create() after the registry is distributed${out:+ ($out)}" "" "$out"
later=$(q "$C" "SELECT id FROM tenant.tenants WHERE slug = 'later'")
if [ -z "$later" ]; then  # to go on: the row as tenant.create() would write it
  later=$(q "$C" "INSERT INTO tenant.tenants (name, slug) VALUES ('Later', 'later') RETURNING id")
fi
out=$(err "$C" "SELECT tenant.suspend('$early')")
check_eq "tenant.suspend() after the registry is distributed${out:+ ($out)}" "" "$out"
[ -n "$out" ] && set_status "$early" suspended
out=$(err "$C" "INSERT INTO tenant.plans (name) VALUES ('pro')")
check_eq "a plan is added after distribution (INSERT INTO tenant.plans)${out:+ ($out)}" "" "$out"
out=$(err "$C" "SELECT tenant.create('Pro customer', 'pro-customer', 'pro')")
check_eq "a plan added after distribution is seen by tenant.create()${out:+ ($out)}" "" "$out"

for n in coord w1 w2; do
  out=$(err "$(cs $n)" "SELECT tenant.set('later')")
  check_eq "a tenant registered after distribution is entered on $n (tenant.set)${out:+ ($out)}" "$later" \
    "$(last "$(cs $n)" "BEGIN; SELECT tenant.set('later'); COMMIT")"
done
for w in w1 w2; do
  out=$(err "$(cs $w)" "SELECT tenant.set('acme')")
  check_eq "a tenant registered before distribution is entered on $w (tenant.set)${out:+ ($out)}" "$acme" \
    "$(last "$(cs $w)" "BEGIN; SELECT tenant.set('acme'); COMMIT")"
  check_eq "SET LOCAL pg_tenant.tenant_id, then tenant.current_id() on $w" "$acme" \
    "$(last "$(cs $w)" "BEGIN; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT tenant.current_id(); COMMIT")"
done
for n in coord w1 w2; do
  check_eq "a tenant suspended after distribution cannot be entered on $n (TN002)" "TN002" \
    "$(sqlstate_of "$(cs $n)" "SELECT tenant.set('early')")"
done

# A suspension committed on the coordinator reaches a session on each node at its next
# transaction: the session first enters 'later' (caching it), then the coordinator suspends it.
{ declare -f err set_status; echo "C='$C'"; } >"$base/set_status.sh"
for n in coord w1 w2; do
  out=$(psql -X -q -At -v VERBOSITY=sqlstate -d "$(cs $n)" 2>&1 <<SQL
BEGIN; SET LOCAL pg_tenant.tenant_id = '$later'; SELECT 'before:' || tenant.current_id(); COMMIT;
\! bash -c ". $base/set_status.sh; set_status $later suspended" >/dev/null
BEGIN; SET LOCAL pg_tenant.tenant_id = '$later'; SELECT 'after:' || tenant.current_id(); COMMIT;
SQL
)
  set_status "$later" active >/dev/null
  check "a suspension committed on the coordinator is seen on $n at its next transaction (entered before, TN002 after: $(tr '\n' ' ' <<<"$out"))" \
    grep -qzE "before:$later.*ERROR: +TN002" <<<"$out"
done

# --- 2. tenant-scoped tables: protect before and after distribution ---------------------------
psql -X -q -d "$C" >/dev/null 2>&1 <<SQL
CREATE TABLE projects (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, PRIMARY KEY (tenant_id, id));
CREATE TABLE projects_before (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE settings (tenant_id uuid NOT NULL, key text NOT NULL, value text, PRIMARY KEY (tenant_id, key));
CREATE TABLE settings_before (tenant_id uuid NOT NULL, key text NOT NULL, PRIMARY KEY (tenant_id, key));
SQL
q "$C" "SELECT create_distributed_table('projects', 'tenant_id')" >/dev/null
q "$C" "SELECT create_reference_table('settings')" >/dev/null
# protect_distributed TABLE: tenant.protect; when Citus refuses its SET DEFAULT on the distribution
# column (what protect does today), the default is set on the coordinator's table alone
# (citus.enable_ddl_propagation = off) and protect runs again, so that the rest can be tried.
protect_distributed() {
  local out
  out=$(err "$C" "SELECT tenant.protect('$1')")
  if [ -n "$out" ]; then
    q "$C" "SET citus.enable_ddl_propagation = off; ALTER TABLE $1 ALTER COLUMN tenant_id SET DEFAULT tenant.current_id()" >/dev/null 2>&1
    q "$C" "SELECT tenant.protect('$1')" >/dev/null 2>&1
  fi
  echo "$out"
}
out=$(protect_distributed projects)
check_eq "protect after create_distributed_table${out:+ ($out)}" "" "$out"
[ -n "$out" ] && echo "    (protected by hand to go on: SET DEFAULT with citus.enable_ddl_propagation = off, then protect)"
out=$(err "$C" "SELECT tenant.protect('settings')")
check_eq "protect after create_reference_table${out:+ ($out)}" "" "$out"

got=$(q "$C" "SELECT string_agg(p::text, ',') FROM tenant.protect('projects_before') p" 2>&1)
check_eq "protect before create_distributed_table returns the table itself (not a shard)" "projects_before" "$got"
out=$(err "$C" "SELECT create_distributed_table('projects_before', 'tenant_id')")
check_eq "... then create_distributed_table succeeds${out:+ ($out)}" "" "$out"
q "$C" "SELECT tenant.protect('settings_before')" >/dev/null 2>&1
out=$(err "$C" "SELECT create_reference_table('settings_before')")
check_eq "protect before create_reference_table, then create_reference_table succeeds${out:+ ($out)}" "" "$out"
check_eq "tenant.scoped_tables records the Citus tables, never a shard" "" \
  "$(q "$C" "SELECT string_agg(s.relid::text, ',' ORDER BY s.relid::text) FROM tenant.scoped_tables s
              WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = s.relid)")"
check_eq "the distributed and reference tables are protected (tenant._protection on the coordinator)" "4" \
  "$(q "$C" "SELECT count(*) FROM unnest('{projects,projects_before,settings,settings_before}'::regclass[]) r,
                    tenant._protection(r, 'tenant_id') p
              WHERE p.rls_forced AND p.isolation_policy = 'current' AND p.guard_policy = 'current'")"

# Every shard carries both policies as protect made them: tenant_isolation permissive,
# tenant_isolation_guard restrictive (Citus's CreatePolicyCommandForPolicy drops AS RESTRICTIVE).
shard_policies() {  # table -> "shards in total / shards with both policies right"
  q "$C" "SELECT count(*) || ' shards, ' || count(*) FILTER (WHERE result = 'ok') || ' with both policies right'
            FROM run_command_on_shards('$1', \$cmd\$SELECT CASE WHEN count(*) FILTER (WHERE polname = 'tenant_isolation' AND polpermissive) = 1
                                                  AND count(*) FILTER (WHERE polname = 'tenant_isolation_guard' AND NOT polpermissive) = 1
                                                 THEN 'ok' ELSE string_agg(polname || ':' || polpermissive, ',') END
                                         FROM pg_policy WHERE polrelid = '%s'::regclass\$cmd\$)"
}
for t in projects projects_before settings settings_before; do
  got=$(shard_policies $t)
  check "$t: every shard has tenant_isolation (permissive) and tenant_isolation_guard (restrictive) ($got)" \
    test -n "$got" -a "${got%% *}" = "$(sed -E 's/^[0-9]+ shards, ([0-9]+) .*/\1/' <<<"$got")" -a "${got%% *}" != 0
done

# Rows: acme 10, globex 5 (written by the superuser, who is not subject to row level security).
q "$C" "INSERT INTO projects SELECT '$acme', g, 'acme ' || g FROM generate_series(1, 10) g" >/dev/null
q "$C" "INSERT INTO projects SELECT '$globex', g, 'globex ' || g FROM generate_series(101, 105) g" >/dev/null
q "$C" "INSERT INTO settings VALUES ('$acme', 'color', 'red'), ('$globex', 'color', 'blue')" >/dev/null
q "$C" "GRANT SELECT, INSERT, UPDATE, DELETE ON projects, projects_before, settings TO app" >/dev/null

# --- 3. the context on the workers --------------------------------------------------------------
check_eq "no tenant: the application role sees no rows (multi-shard count)" "0" "$(last "$CA" "SELECT count(*) FROM projects")"
check_eq "no tenant: ... on a worker too (query from w1)" "0" "$(last "$W1A" "SELECT count(*) FROM projects")"
check_eq "tenant.set('acme') in a transaction: multi-shard count is acme's 10 rows" "10" \
  "$(last "$CA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FROM projects; COMMIT")"
out=$(err "$CA" "BEGIN; SELECT tenant.set('acme'); SELECT count(*) FROM projects; COMMIT"); [ -n "$out" ] && echo "    $out"
check_eq "tenant.set('acme'): a router query (WHERE id = 3) returns acme's row" "acme 3" \
  "$(last "$CA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT coalesce((SELECT name FROM projects WHERE id = 3), 'none'); COMMIT")"
check_eq "tenant.set('acme'): a router query on globex's id returns nothing" "none" \
  "$(last "$CA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT coalesce(string_agg(name, ','), 'none') FROM projects WHERE id = 101; COMMIT")"
check_eq "tenant.set('acme') after the transaction already reached the workers: count is 10" "10" \
  "$(last "$CA" "BEGIN; SELECT count(*) FROM projects; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FROM projects; COMMIT")"
out=$(err "$CA" "BEGIN; SELECT tenant.set('acme'); INSERT INTO projects (id, name) VALUES (11, 'acme 11'); COMMIT")
check_eq "tenant.set('acme'): INSERT without tenant_id (default and WITH CHECK on the shard)${out:+ ($out)}" "" "$out"
n=$(q "$C" "SELECT count(*) FROM projects WHERE tenant_id = '$acme'")
check_eq "SET LOCAL pg_tenant.tenant_id: multi-shard count is acme's rows" "${n:-?}" \
  "$(steps "$CA" "BEGIN" "SET LOCAL pg_tenant.tenant_id = '$acme'" "SELECT count(*) FROM projects" "COMMIT")"
check_eq "SET LOCAL pg_tenant.tenant_id: a router query returns acme's row" "acme 3" \
  "$(steps "$CA" "BEGIN" "SET LOCAL pg_tenant.tenant_id = '$acme'" "SELECT coalesce((SELECT name FROM projects WHERE id = 3), 'none')" "COMMIT")"
got=$(last "$CA" "BEGIN; SET LOCAL citus.propagate_set_commands = none; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT count(*) FROM projects; COMMIT")
check "never fail open: citus.propagate_set_commands = none, SET LOCAL: acme's rows or none, never more (got '${got}')" \
  test "${got:-0}" -le "${n:-0}"
got=$(last "$CA" "BEGIN; SET LOCAL citus.propagate_set_commands = none; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FROM projects; COMMIT")
check "never fail open: citus.propagate_set_commands = none, tenant.set(): acme's rows or none, never more (got '${got}')" \
  test "${got:-0}" -le "${n:-0}"
check_eq "the reference table settings: tenant.set('acme') reads only acme's settings" "1" \
  "$(last "$CA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FROM settings; COMMIT")"
check_eq "the reference table settings read on w1: SET LOCAL, only acme's settings" "1" \
  "$(last "$W1A" "BEGIN; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT count(*) FROM settings; COMMIT")"

# --- 4. the lost AS RESTRICTIVE: a second permissive policy --------------------------------------
out=$(sqlstate_of "$C" "CREATE POLICY anyone ON projects USING (true)")
echo "  CREATE POLICY anyone ON projects USING (true): ${out}"
check_eq "after the owner's CREATE POLICY ... USING (true): no tenant still sees no rows" "0" \
  "$(last "$CA" "SELECT count(*) FROM projects")"
check_eq "... and tenant acme sees only its own rows (no globex row)" "0" \
  "$(steps "$CA" "BEGIN" "SET LOCAL pg_tenant.tenant_id = '$acme'" "SELECT count(*) FROM projects WHERE tenant_id = '$globex'" "COMMIT")"
check "a second permissive policy on a scoped distributed table is refused (TN005) or the shards keep the restrictive guard" \
  test "$out" = TN005 -o "$(shard_policies projects | sed -E 's/^([0-9]+) shards, ([0-9]+) .*/\1=\2/' | awk -F= '{print ($1==$2 && $1>0)}')" = 1
q "$C" "DROP POLICY IF EXISTS anyone ON projects" >/dev/null 2>&1

# The audit reads the shards: a shard whose restrictive policy is dropped on a worker is found.
q "$C" "CREATE TABLE audit_probe (tenant_id uuid NOT NULL, id int);
        SELECT create_distributed_table('audit_probe', 'tenant_id')" >/dev/null 2>&1
protect_distributed audit_probe >/dev/null
shard=$(q "$C" "SELECT shard_name('audit_probe'::regclass, shardid) FROM pg_dist_shard_placement
                  JOIN pg_dist_shard USING (shardid) WHERE logicalrelid = 'audit_probe'::regclass AND nodeport = ${port[w1]}
                 ORDER BY shardid LIMIT 1")
findings() { q "$C" "SELECT count(*) || ' (' || coalesce(string_agg(rule, ','), '') || ')' FROM tenant.audit() WHERE (object::text || ' ' || detail) ~ 'audit_probe'"; }
before=$(findings)
q "$W1" "SET pg_tenant.enforce = off; DROP POLICY IF EXISTS tenant_isolation_guard ON $shard" >/dev/null 2>&1
after=$(findings)
check "tenant.audit() on the coordinator reports a shard that lost its restrictive policy on a worker ($shard: findings $before before, $after after)" \
  test "${after%% *}" -gt "${before%% *}"

# --- 5. the guard and Citus's own DDL --------------------------------------------------------------
q "$C" "SELECT tenant.exempt('public.countries', 'shared reference data');
        CREATE TABLE countries (code text PRIMARY KEY, name text)" >/dev/null
out=$(err "$C" "SELECT create_reference_table('countries')")
check_eq "an exempted shared table becomes a reference table${out:+ ($out)}" "" "$out"
q "$C" "SELECT tenant.exempt('public.events', 'shared, distributed by id');
        CREATE TABLE events (id bigint PRIMARY KEY, payload text)" >/dev/null
out=$(err "$C" "SELECT create_distributed_table('events', 'id')")
check_eq "an exempted shared table becomes a distributed table${out:+ ($out)}" "" "$out"
out=$(err "$C" "ALTER TABLE projects ADD COLUMN note text")
check_eq "ALTER TABLE ... ADD COLUMN on a protected distributed table${out:+ ($out)}" "" "$out"
out=$(err "$C" "CREATE INDEX ON projects (name)")
check_eq "CREATE INDEX on a protected distributed table${out:+ ($out)}" "" "$out"
move() {  # table role: moves the table's first shard on w1 to w2 (block_writes) as role; prints the error
  local out
  out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$(cs coord "$2")" 2>&1 -c "
    SELECT 'moved' FROM (SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
                           JOIN pg_dist_node n USING (groupid)
                          WHERE s.logicalrelid = '$1'::regclass AND n.nodeport = ${port[w1]} ORDER BY s.shardid LIMIT 1) x,
           LATERAL citus_move_shard_placement(x.shardid, '127.0.0.1', ${port[w1]}, '127.0.0.1', ${port[w2]}, 'block_writes')")
  case "$out" in
    moved) ;;
    "") echo "no shard of $1 on w1 to move" ;;
    *) echo "$(sed -nE 's/^(psql:[^ ]* )?ERROR: +//p' <<<"$out" | head -n 1)$(sed -nE 's/^(CONTEXT|LOCATION): +(.*)/; \2/p' <<<"$out" | head -n 2 | tr -d '\n')" ;;
  esac
}
out=$(move projects postgres)
check_eq "a shard move of a protected distributed table${out:+ ($out)}" "" "$out"
check "... the moved shard keeps both policies right ($(shard_policies projects))" \
  test "$(shard_policies projects | sed -E 's/^([0-9]+) shards, ([0-9]+) .*/\1=\2/' | awk -F= '{print ($1==$2 && $1>0)}')" = 1
out=$(move events postgres)
check_eq "a shard move of an exempted distributed table${out:+ ($out)}" "" "$out"
check_eq "the guard still refuses a table without the tenant column (TN004)" "TN004" \
  "$(sqlstate_of "$C" "CREATE TABLE no_tenant_column (x int)")"
check_eq "the guard still refuses DISABLE ROW LEVEL SECURITY on a distributed table (TN005)" "TN005" \
  "$(sqlstate_of "$C" "ALTER TABLE projects DISABLE ROW LEVEL SECURITY")"
check_eq "the guard still refuses DROP POLICY tenant_isolation_guard on a distributed table (TN005)" "TN005" \
  "$(sqlstate_of "$C" "DROP POLICY tenant_isolation_guard ON projects")"
check_eq "the guard still refuses a materialized view over a distributed table (TN005)" "TN005" \
  "$(sqlstate_of "$C" "CREATE MATERIALIZED VIEW all_projects AS SELECT * FROM projects")"
shard=$(q "$C" "SELECT shard_name('projects'::regclass, shardid) FROM pg_dist_shard_placement
                  JOIN pg_dist_shard USING (shardid) WHERE logicalrelid = 'projects'::regclass AND nodeport = ${port[w2]}
                 ORDER BY shardid LIMIT 1")
out=$(sqlstate_of "$W2" "ALTER TABLE $shard NO FORCE ROW LEVEL SECURITY")
check_eq "on a worker, the guard refuses NO FORCE ROW LEVEL SECURITY on a shard of a protected table ($shard)" "TN005" "$out"
[ "$out" = "no error" ] && q "$W2" "ALTER TABLE $shard FORCE ROW LEVEL SECURITY" >/dev/null 2>&1

# The table owner (not a superuser) protects, distributes and moves its own tables.
mig=$(cs coord migrator)
q "$C" "CREATE TABLE owned (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
        CREATE TABLE owned_after (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
        ALTER TABLE owned OWNER TO migrator; ALTER TABLE owned_after OWNER TO migrator" >/dev/null
out=$(err "$mig" "SELECT tenant.protect('owned')")
check_eq "the owner protects its table before distribution${out:+ ($out)}" "" "$out"
out=$(err "$mig" "SELECT create_distributed_table('owned', 'tenant_id')")
check_eq "the owner distributes its protected table${out:+ ($out)}" "" "$out"
out=$(err "$mig" "SELECT create_distributed_table('owned_after', 'tenant_id', colocate_with => 'none')")
check_eq "the owner distributes its table${out:+ ($out)}" "" "$out"
out=$(err "$mig" "SELECT tenant.protect('owned_after')")
check_eq "the owner protects its distributed table${out:+ ($out)}" "" "$out"
if [ -n "$out" ]; then
  q "$mig" "SET citus.enable_ddl_propagation = off; ALTER TABLE owned_after ALTER COLUMN tenant_id SET DEFAULT tenant.current_id()" >/dev/null 2>&1
  q "$mig" "SELECT tenant.protect('owned_after')" >/dev/null 2>&1
fi
out=$(move owned_after migrator)
check_eq "the owner moves a shard of its protected distributed table${out:+ ($out)}" "" "$out"

# --- 6. figures: a router query and a multi-shard count, pg_tenant's policy against an explicit WHERE
# Same cluster, one run, 5 s each with pgbench (one client); printed, not asserted.
q "$C" "INSERT INTO projects (tenant_id, id, name)
        SELECT t.id, g, 'bulk' FROM tenant.tenants t, generate_series(1000, 1999) g WHERE t.slug IN ('acme', 'globex')" >/dev/null 2>&1
bench() {  # label user expected script: tps of the script (pgbench, one client, 5 s) once it returns expected
  printf '%s\n' "$4" >"$base/bench.sql"
  local out got
  got=$(psql -X -q -At -h 127.0.0.1 -p "${port[coord]}" -U "$2" -d app -f "$base/bench.sql" 2>&1 | tail -n 1)
  if [ "$got" != "$3" ]; then
    got=$(psql -X -q -At -h 127.0.0.1 -p "${port[coord]}" -U "$2" -d app -f "$base/bench.sql" 2>&1 | grep -m1 ERROR || echo "$got")
    [[ "$got" =~ ^[0-9a-f-]{36}$ ]] && got="no row"
    printf '  figure: %-62s not measurable: returns %s instead of %s\n' "$1" "'$(sed -E 's/.*ERROR: +//' <<<"$got" | cut -c1-70)'" "'$3'"
    return
  fi
  out=$(pgbench -n -T 5 -c 1 -h 127.0.0.1 -p "${port[coord]}" -U "$2" -f "$base/bench.sql" app 2>&1)
  if grep -q '^tps' <<<"$out" && ! grep -qE 'ERROR|aborted' <<<"$out"; then
    printf '  figure: %-62s %6s tps\n' "$1" "$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1 | cut -d. -f1)"
  else
    printf '  figure: %-62s not measurable: %s\n' "$1" "$(grep -m1 -E 'ERROR|error|aborted' <<<"$out" | sed -E 's/.*ERROR: +//' | cut -c1-100)"
  fi
}
tasks() { psql -X -At -d "$2" -c "$3" 2>/dev/null | sed -nE 's/.*Task Count: ([0-9]+).*/\1/p' | head -n 1; }
echo "  figures (Citus, 32 shards, one client, 5 s each; explicit WHERE as the superuser, who bypasses row level security):"
n=$(q "$C" "SELECT count(*) FROM projects WHERE tenant_id = '$acme'")
bench "router, explicit WHERE tenant_id = acme AND id = 3" postgres "acme 3" \
  "BEGIN; SELECT name FROM projects WHERE tenant_id = '$acme' AND id = 3; COMMIT;"
bench "router under pg_tenant: tenant.set('acme'); WHERE id = 3" app "acme 3" \
  "BEGIN; SELECT tenant.set('acme'); SELECT name FROM projects WHERE id = 3; COMMIT;"
bench "router under pg_tenant: SET LOCAL pg_tenant.tenant_id; WHERE id = 3" app "acme 3" \
  "BEGIN; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT name FROM projects WHERE id = 3; COMMIT;"
bench "router, WHERE id = 3 alone (32 shards: what a policy-only query fans out to)" postgres "acme 3" \
  "BEGIN; SELECT name FROM projects WHERE id = 3; COMMIT;"
bench "count, explicit WHERE tenant_id = acme" postgres "$n" \
  "BEGIN; SELECT count(*) FROM projects WHERE tenant_id = '$acme'; COMMIT;"
bench "count, WHERE tenant_id::text = acme (32 shards, not pruned)" postgres "$n" \
  "BEGIN; SELECT count(*) FROM projects WHERE tenant_id::text = '$acme'; COMMIT;"
bench "count under pg_tenant: tenant.set('acme'); no WHERE" app "$n" \
  "BEGIN; SELECT tenant.set('acme'); SELECT count(*) FROM projects; COMMIT;"
bench "count under pg_tenant: SET LOCAL pg_tenant.tenant_id; no WHERE" app "$n" \
  "BEGIN; SET LOCAL pg_tenant.tenant_id = '$acme'; SELECT count(*) FROM projects; COMMIT;"
echo "  figure: tasks (shards queried): explicit WHERE $(tasks x "$C" "EXPLAIN SELECT count(*) FROM projects WHERE tenant_id = '$acme'")," \
  "policy only $(tasks x "$CA" "EXPLAIN SELECT count(*) FROM projects")," \
  "policy + WHERE tenant_id = tenant.current_id() $(tasks x "$CA" "EXPLAIN SELECT count(*) FROM projects WHERE tenant_id = tenant.current_id()")"

# --- 7. row quotas and meters ---------------------------------------------------------------------
out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$C" -c "SELECT tenant.limit_rows('projects', 'projects')" 2>&1)
if grep -q ERROR <<<"$out"; then
  code=$(sed -nE 's/^ERROR: +([0-9A-Z]{5}).*/\1/p' <<<"$out" | head -n 1)
  check "limit_rows on a distributed table is refused with a clear error naming the alternative (got $code: $(grep -m1 ERROR <<<"$out" | cut -c1-120))" \
    test "$code" != XX000 -a -n "$(grep -iE '^(ERROR|HINT|DETAIL).*(distributed|citus)' <<<"$out")" -a -n "$(grep -E '^HINT' <<<"$out")"
else
  n=$(q "$C" "SELECT count(*) FROM projects WHERE tenant_id = '$acme'")
  q "$C" "SELECT tenant.set_limit('free', 'projects', $((n + 2)))" >/dev/null
  got=$(for i in 1 2 3; do
    psql -X -q -At -d "$CA" -c "BEGIN; SELECT tenant.set('acme') IS NOT NULL; INSERT INTO projects (id) VALUES (5000 + $i); COMMIT" 2>&1
  done)
  check "limit_rows on a distributed table is exact: acme stops at its limit ($((n + 2)) rows) across shards, then TN006" \
    test "$(q "$C" "SELECT count(*) FROM projects WHERE tenant_id = '$acme'")" = $((n + 2)) -a -n "$(grep TN006 <<<"$got")"
fi

q "$C" "SELECT tenant.set_limit('free', 'api_calls', 3)" >/dev/null 2>&1
meter_out=$(psql -X -q -At -d "$CA" -c "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT tenant.meter('api_calls'); COMMIT" 2>&1)
check "shared-memory meters on a Citus node warn or refuse and point to the Redis backend ($(tr '\n' ' ' <<<"$meter_out" | cut -c1-100))" \
  grep -qi 'redis' <<<"$meter_out"
q "$C" "SELECT tenant.set_limit('free', 'coord_calls', 2)" >/dev/null 2>&1
calls_coord=$(last "$CA" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FILTER (WHERE tenant.try_meter('coord_calls')) FROM generate_series(1, 3); COMMIT")
check_eq "a limit set after distribution is enforced on the coordinator (2 of 3 calls let through)" "2" "$calls_coord"
calls() {  # conninfo n resource -> how many of n tenant.try_meter calls for acme were let through (empty on an error)
  local out
  out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" \
        -c "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT count(*) FILTER (WHERE tenant.try_meter('$3')) FROM generate_series(1, $2); COMMIT" \
        2>/dev/null) || return 0
  tail -n 1 <<<"$out"
}
q "$C" "SELECT tenant.set_limit('free', 'shm_calls', 3)" >/dev/null 2>&1
a=$(calls "$CA" 3 shm_calls); b=$(calls "$W1A" 3 shm_calls)
refused=$(err "$W1A" "BEGIN; SELECT tenant.set('acme') IS NOT NULL; SELECT tenant.try_meter('shm_calls'); COMMIT")
echo "  shared memory, limit 3: coordinator let ${a:-?} of 3 through, w1 ${b:-none (refused: $refused)} of 3"
check "shared-memory meters never let a tenant pass its limit across nodes (coordinator + w1: ${a:-?} + ${b:-0} <= 3)" \
  test -n "$a" -a "$(( ${a:-0} + ${b:-0} ))" -le 3 -a \( -n "$b" -o -n "$(grep -i 'refused on a Citus worker' <<<"$refused")" \)

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$base/redis.pid" --dir "$base" --logfile "$base/redis.log" >/dev/null
for _ in $(seq 1 50); do redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
for n in coord w1 w2; do
  q "$(cs $n)" "ALTER SYSTEM SET pg_tenant.redis_url = 'redis://127.0.0.1:$rport/3'" >/dev/null
  q "$(cs $n)" "ALTER SYSTEM SET pg_tenant.meter_backend = 'redis'" >/dev/null
  q "$(cs $n)" "SELECT pg_reload_conf()" >/dev/null
done
for n in coord w1 w2; do poll_until redis 5 q "$(cs $n)" "SHOW pg_tenant.meter_backend" >/dev/null; done
q "$C" "SELECT tenant.set_limit('free', 'redis_calls', 3)" >/dev/null 2>&1
a=$(calls "$CA" 2 redis_calls); b=$(calls "$W1A" 2 redis_calls); c=$(calls "$W2A" 1 redis_calls)
echo "  Redis, limit 3: coordinator let ${a:-?} of 2 through, w1 ${b:-?} of 2, w2 ${c:-?} of 1; Redis holds $(redis-cli -p "$rport" -n 3 --scan --pattern 'pg_tenant:*redis_calls*' | head -n 1 | xargs -r redis-cli -p "$rport" -n 3 GET)"
check_eq "with Redis, calls on the coordinator and the workers add up to one limit (3 of 5 let through)" "3" \
  "$(( ${a:-0} + ${b:-0} + ${c:-0} ))"

exit 0
