#!/usr/bin/env bash
# Least privilege (0.10.0, issue 19): no role gains rights, reads a secret or picks a tenant
# through pg_tenant. Each part is an attack that worked on 0.9.0:
#  1. a role with no grants attaches tenant._tenant_key_check() to its own table with a bigint or
#     text "tenant column" (a SIGSEGV and a read past the value), or to a table that is not
#     scoped (it locked a tenant's registry row and blocked its purge);
#  2. a table owner's trigger, deferred trigger, cast to json and index expression ran as the
#     extension owner in purge, export and import (ALTER ROLE ... SUPERUSER worked);
#  3. a provisioning hook's deferred trigger fired at COMMIT as the caller of tenant.create();
#     a LANGUAGE sql ... RETURNS void hook made every tenant.create() fail;
#  4. a role under require_signed_context entered a tenant through startup options (PGOPTIONS),
#     ALTER ROLE ... SET or a function's SET clause;
#  5. pg_monitor members read the signing secret and the Redis password;
#  7. parallel queries failed in a signed context (TN013 in the workers);
#  8. the owner replaced the tenant key in place (CREATE OR REPLACE TRIGGER, DISABLE TRIGGER);
#  9. protect, ATTACH PARTITION and INHERIT let rows of unregistered tenants in with a filled table;
# 10. a role with no grants flooded the statistics with made-up tenant ids;
# Every piece of user code records current_user and tries ALTER ROLE ... SUPERUSER.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_least_privilege
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
DO $$ BEGIN
  CREATE ROLE lp_owner LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE lp_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE lp_nobody LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE lp_hook LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE lp_signed LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE lp_monitor LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER ROLE lp_owner NOSUPERUSER; ALTER ROLE lp_hook NOSUPERUSER;
-- The suite's cluster asks for passwords over TCP.
DO $$ DECLARE r text; BEGIN
  FOREACH r IN ARRAY ARRAY['lp_owner', 'lp_app', 'lp_nobody', 'lp_hook', 'lp_signed', 'lp_monitor'] LOOP
    EXECUTE format('ALTER ROLE %I PASSWORD %L', r, 'lp-test-password');
  END LOOP; END $$;
GRANT CREATE ON SCHEMA public TO lp_owner, lp_hook;
-- A schema the guard does not watch, for the test's own tables.
CREATE SCHEMA lp_free;
GRANT USAGE, CREATE ON SCHEMA lp_free TO PUBLIC;
-- What user code saw: who ran it, and whether ALTER ROLE worked.
CREATE TABLE lp_free.lp_log (who name, what text);
GRANT INSERT, SELECT ON lp_free.lp_log TO PUBLIC;
-- The trap every piece of user code calls: record current_user, then try to become superuser.
CREATE FUNCTION public.lp_trap(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lp_free.lp_log VALUES (current_user, what);
  BEGIN
    EXECUTE 'ALTER ROLE lp_owner SUPERUSER';
    EXECUTE 'ALTER ROLE lp_hook SUPERUSER';
    INSERT INTO lp_free.lp_log VALUES (current_user, what || ': ALTER ROLE worked');
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO lp_free.lp_log VALUES (current_user, what || ': refused ' || SQLSTATE);
  END;
END $$;
GRANT EXECUTE ON FUNCTION public.lp_trap(text) TO PUBLIC;
SELECT tenant.create('LP A', 'lp-a'), tenant.create('LP B', 'lp-b');
SQL
a=$(q "$db" "SELECT id FROM tenant.tenants WHERE slug = 'lp-a'")
b=$(q "$db" "SELECT id FROM tenant.tenants WHERE slug = 'lp-b'")
superusers() { q "$db" "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolsuper AND rolname LIKE 'lp\_%'"; }
as_role() { local role=$1; shift; PGPASSWORD=lp-test-password psql -X -At -v ON_ERROR_STOP=1 -U "$role" -d "$db" "$@"; }

# --- 1. the tenant key's trigger function, attached by a role with no grants ---------------------
before_start=$(q "$db" "SELECT pg_postmaster_start_time()")
for type in bigint text int4 uuid; do
  state=$(PGPASSWORD=lp-test-password psql -X -At -U lp_nobody -d "$db" -v VERBOSITY=sqlstate 2>&1 <<SQL | sed -nE 's/^(psql:[^ ]* )?ERROR: +([0-9A-Z]{5}).*/\2/p' | head -n 1
CREATE TEMP TABLE lp_mine (tenant_id $type);
CREATE TRIGGER k AFTER INSERT ON lp_mine FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('tenant_id');
INSERT INTO lp_mine VALUES ($( [ $type = uuid ] && echo "'$a'" || echo 12345 ));
SQL
)
  # A uuid column of a table that is not scoped: refused before any registry row is locked.
  expected=42804; [ "$type" = uuid ] && expected=42501
  check_eq "1: _tenant_key_check on a no-grant role's $type column is refused ($expected)" "$expected" "${state:-no error}"
done
# The registry's erase trigger, attached by a superuser to another table (found by fuzz.sh: an
# int "id" was read as a uuid, SIGSEGV): refused, 39P01.
check_eq "1: _tenant_key_erase on a table that is not tenant.tenants is refused (39P01)" "39P01" \
  "$(sqlstate_of "$db" "CREATE TEMP TABLE lp_ids (id int); INSERT INTO lp_ids VALUES (1);
     CREATE TRIGGER e AFTER UPDATE ON lp_ids FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_erase();
     UPDATE lp_ids SET id = 2")"
check_eq "1: the server did not restart" "$before_start" "$(q "$db" "SELECT pg_postmaster_start_time()")"
# The error names no bytes of the value.
out=$(PGPASSWORD=lp-test-password psql -X -At -U lp_nobody -d "$db" 2>&1 <<'SQL'
CREATE TEMP TABLE lp_mine (tenant_id text);
CREATE TRIGGER k AFTER INSERT ON lp_mine FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('tenant_id');
INSERT INTO lp_mine VALUES ('secret-bytes-of-a-row');
SQL
)
check "1: the error shows nothing of the row's value" bash -c '! grep -q "secret-bytes" <<<"$1"' _ "$out"
# A stranger's trigger on a uuid column holds no lock on the tenant's registry row: purge does not wait.
PGPASSWORD=lp-test-password psql -X -q -U lp_nobody -d "$db" >/dev/null 2>&1 <<SQL &
CREATE TEMP TABLE lp_lock (tenant_id uuid);
CREATE TRIGGER k AFTER INSERT ON lp_lock FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('tenant_id');
BEGIN; INSERT INTO lp_lock VALUES ('$b'); SELECT pg_sleep(3); COMMIT;
SQL
locker=$!
q "$db" "SELECT tenant.create('LP C', 'lp-c')" >/dev/null
c=$(q "$db" "SELECT id FROM tenant.tenants WHERE slug = 'lp-c'")
check_eq "1: no stranger's lock on a registry row (FOR KEY SHARE): nothing waits on it" "0" \
  "$(q "$db" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE s.usename = 'lp_nobody' AND l.relation = 'tenant.tenants'::regclass")"
wait "$locker"

# --- 2. the table owner's code in purge, export and import --------------------------------------
PGPASSWORD=lp-test-password psql -X -q -v ON_ERROR_STOP=1 -U lp_owner -d "$db" >/dev/null <<'SQL'
CREATE TYPE public.lp_mood AS ENUM ('calm', 'loud');
CREATE FUNCTION public.lp_mood_json(m public.lp_mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap('cast'); RETURN to_json(m::text); END $$;
CREATE CAST (public.lp_mood AS json) WITH FUNCTION public.lp_mood_json(public.lp_mood);
CREATE FUNCTION public.lp_row_trap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap(TG_NAME || ' ' || TG_OP); RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$;
-- An index expression: IMMUTABLE (a lie the owner may tell), so it cannot write; it says who ran it.
CREATE FUNCTION public.lp_index_trap(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RAISE NOTICE 'lp index expression ran as %', current_user; RETURN id; END $$;
-- A generated column's expression (IMMUTABLE, the same lie) and a domain's CHECK, both computed
-- again by import.
CREATE FUNCTION public.lp_generated_trap(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RAISE NOTICE 'lp generated column ran as %', current_user; RETURN id * 2; END $$;
CREATE FUNCTION public.lp_check_trap(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap('domain check'); RETURN true; END $$;
CREATE DOMAIN public.lp_note AS text CHECK (public.lp_check_trap(VALUE));
CREATE TABLE public.lp_items (tenant_id uuid, id int, mood public.lp_mood DEFAULT 'calm',
  twice int GENERATED ALWAYS AS (public.lp_generated_trap(id)) STORED, note public.lp_note DEFAULT 'n');
CREATE TRIGGER lp_before BEFORE INSERT OR DELETE ON public.lp_items FOR EACH ROW EXECUTE FUNCTION public.lp_row_trap();
CREATE TRIGGER lp_after AFTER INSERT OR DELETE ON public.lp_items FOR EACH ROW EXECUTE FUNCTION public.lp_row_trap();
CREATE INDEX lp_items_expr ON public.lp_items (public.lp_index_trap(id));
SQL
q "$db" "GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name), tenant.set(text) TO lp_owner" >/dev/null
as_role lp_owner -c "SELECT tenant.protect('public.lp_items')" >/dev/null
# The owner's rows, inserted by the owner (a superuser's INSERT would run the traps as the superuser).
as_role lp_owner -q -c "SET client_min_messages = warning" -c "BEGIN" -c "SELECT tenant.set('lp-a')" \
  -c "INSERT INTO public.lp_items (id) SELECT g FROM generate_series(1, 3) g" -c "COMMIT" >/dev/null
q "$db" "TRUNCATE lp_free.lp_log" >/dev/null
export_text=$(q "$db" "SELECT string_agg(line, E'\n') FROM tenant.export('$a') AS line")
check_eq "2: export ran the owner's cast to json as the owner" "lp_owner" \
  "$(q "$db" "SELECT string_agg(DISTINCT who, ',') FROM lp_free.lp_log WHERE what LIKE 'cast%'")"
check_eq "2: export has the tenant's 3 rows" "3" "$(grep -c '"table"' <<<"$export_text")"
q "$db" "TRUNCATE lp_free.lp_log" >/dev/null
import_out=$(psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "SELECT inserted FROM tenant.import('$c', \$x\$${export_text}\$x\$)" 2>&1)
check_eq "2: import inserted the 3 rows" "3" "$(grep -E '^[0-9]+$' <<<"$import_out" | head -n 1)"
check "2: import ran the owner's index expression as the owner" grep -q "lp index expression ran as lp_owner" <<<"$import_out"
check "2: and never as the superuser" bash -c '! grep -q "lp index expression ran as postgres" <<<"$1"' _ "$import_out"
check "2: import computed the owner's generated column as the owner" grep -q "lp generated column ran as lp_owner" <<<"$import_out"
check "2: ... never as the superuser" bash -c '! grep -q "lp generated column ran as postgres" <<<"$1"' _ "$import_out"
check_eq "2: import ran the owner's domain CHECK as the owner" "lp_owner" \
  "$(q "$db" "SELECT string_agg(DISTINCT who, ',') FROM lp_free.lp_log WHERE what LIKE 'domain check%'")"
check_eq "2: import ran the owner's triggers as the owner" "lp_owner" \
  "$(q "$db" "SELECT string_agg(DISTINCT who, ',') FROM lp_free.lp_log WHERE what LIKE 'lp\_%INSERT'")"
q "$db" "TRUNCATE lp_free.lp_log" >/dev/null
purge_out=$(psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "SELECT rel || '=' || deleted FROM tenant.purge('$a', true)" 2>&1)
check_eq "2: purge deleted the tenant's 3 rows" "lp_items=3" "$(grep -E '=' <<<"$purge_out" | head -n 1)"
check_eq "2: purge ran the owner's triggers as the owner only" "lp_owner" \
  "$(q "$db" "SELECT string_agg(DISTINCT who, ',') FROM lp_free.lp_log")"
check_eq "2: and ALTER ROLE ... SUPERUSER was refused each time" "0" \
  "$(q "$db" "SELECT count(*) FROM lp_free.lp_log WHERE what LIKE '%ALTER ROLE worked'")"
check_eq "2: the other tenant's rows are untouched" "3" \
  "$(q "$db" "BEGIN; SELECT tenant.set('lp-c') IS NULL; SELECT count(*) FROM public.lp_items; COMMIT;" | sed -n 2p)"
# A deferred trigger of the owner cannot wait for the caller's COMMIT: purge refuses (42501), nothing erased.
PGPASSWORD=lp-test-password psql -X -q -v ON_ERROR_STOP=1 -U lp_owner -d "$db" >/dev/null <<'SQL'
CREATE FUNCTION public.lp_deferred_trap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap('deferred ' || TG_OP); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER lp_deferred AFTER DELETE ON public.lp_items DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION public.lp_deferred_trap();
SQL
q "$db" "TRUNCATE lp_free.lp_log" >/dev/null
check_eq "2: purge with the owner's deferred trigger is refused" "42501" \
  "$(sqlstate_of "$db" "SELECT count(*) FROM tenant.purge('$c', true)")"
check_eq "2: nothing of the tenant was erased" "3|1" \
  "$(q "$db" "SELECT (SELECT count(*) FROM public.lp_items WHERE tenant_id = '$c') || '|' || (SELECT count(*) FROM tenant.tenants WHERE id = '$c')")"
check_eq "2: the deferred trigger never ran as the caller" "0" \
  "$(q "$db" "SELECT count(*) FROM lp_free.lp_log WHERE what LIKE 'deferred%' AND who <> 'lp_owner'")"
check_eq "2: no lp_ role became superuser" "" "$(superusers)"

# --- 3. provisioning hooks ------------------------------------------------------------------
PGPASSWORD=lp-test-password psql -X -q -v ON_ERROR_STOP=1 -U lp_hook -d "$db" >/dev/null <<'SQL'
CREATE TABLE lp_free.lp_hook_rows (tenant uuid);
CREATE FUNCTION public.lp_hook_deferred() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap('hook deferred'); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER lp_hook_later AFTER INSERT ON lp_free.lp_hook_rows DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION public.lp_hook_deferred();
CREATE FUNCTION public.lp_hook_plain(tenant uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN PERFORM public.lp_trap('hook'); END $$;
CREATE FUNCTION public.lp_hook_queue(tenant uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN INSERT INTO lp_free.lp_hook_rows VALUES (tenant); END $$;
-- The shape README shows: LANGUAGE sql ... RETURNS void (its result is NULL).
CREATE FUNCTION public.lp_hook_sql(tenant uuid) RETURNS void LANGUAGE sql AS $$
  INSERT INTO lp_free.lp_log VALUES (current_user, 'sql hook ' || tenant::text) $$;
SQL
q "$db" "TRUNCATE lp_free.lp_log; SELECT tenant.on_create('public.lp_hook_plain(uuid)'), tenant.on_create('public.lp_hook_sql(uuid)')" >/dev/null
check_eq "3/12: tenant.create() with a LANGUAGE sql RETURNS void hook works" "no error" \
  "$(sqlstate_of "$db" "SELECT tenant.create('LP D', 'lp-d')")"
check_eq "3: hooks ran as their owner" "lp_hook" "$(q "$db" "SELECT string_agg(DISTINCT who, ',') FROM lp_free.lp_log")"
check_eq "3: the hook could not become superuser" "0" \
  "$(q "$db" "SELECT count(*) FROM lp_free.lp_log WHERE what LIKE '%ALTER ROLE worked'")"
q "$db" "SELECT tenant.on_create('public.lp_hook_queue(uuid)')" >/dev/null
q "$db" "TRUNCATE lp_free.lp_log" >/dev/null
check_eq "3: a hook that queues a deferred trigger makes tenant.create() fail (42501)" "42501" \
  "$(sqlstate_of "$db" "SELECT tenant.create('LP E', 'lp-e')")"
check_eq "3: ... and the tenant is not created" "0" "$(q "$db" "SELECT count(*) FROM tenant.tenants WHERE slug = 'lp-e'")"
check_eq "3: the deferred trigger never ran as the caller" "0" \
  "$(q "$db" "SELECT count(*) FROM lp_free.lp_log WHERE what LIKE 'hook deferred%'")"
check_eq "3: no lp_ role became superuser" "" "$(superusers)"
q "$db" "SELECT tenant.remove_hook('public.lp_hook_queue(uuid)'), tenant.remove_hook('public.lp_hook_plain(uuid)'), tenant.remove_hook('public.lp_hook_sql(uuid)')" >/dev/null

# --- 4 and 7. require_signed_context, whatever path sets the tenant ----------------------------
secret="k1:$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)"
q "$db" "ALTER SYSTEM SET pg_tenant.context_secret = '$secret'" >/dev/null
q "$db" "SELECT pg_reload_conf()" >/dev/null
q "$db" "ALTER ROLE lp_signed SET pg_tenant.require_signed_context = on" >/dev/null
q "$db" "GRANT EXECUTE ON FUNCTION tenant.set_signed(text) TO lp_signed; GRANT SELECT ON public.lp_items TO lp_signed" >/dev/null
as_role lp_owner -q -c "SET client_min_messages = warning" -c "DROP TRIGGER lp_before ON public.lp_items" \
  -c "DROP TRIGGER lp_after ON public.lp_items" -c "DROP TRIGGER lp_deferred ON public.lp_items" -c "DROP INDEX public.lp_items_expr" -c "BEGIN" \
  -c "SELECT tenant.set('lp-c')" -c "INSERT INTO public.lp_items (id) SELECT g FROM generate_series(4, 20000) g" -c "COMMIT" >/dev/null
q "$db" "ANALYZE public.lp_items" >/dev/null
# poll: the reload reaches new backends
deadline=$((SECONDS + 10))
until [ "$(q "$db" "SELECT tenant.sign('$c', '1 hour') IS NOT NULL" 2>/dev/null)" = t ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
token=$(q "$db" "SELECT tenant.sign('$c', '1 hour')")
check_eq "4: startup options cannot enter a tenant under require_signed_context" "|0" \
  "$(PGOPTIONS="-c pg_tenant.tenant_id=$c" as_role lp_signed -c "SELECT coalesce(tenant.current_id()::text, '') || '|' || count(*) FROM public.lp_items")"
check_eq "4: ... nor the hidden signed setting in startup options" "refused" \
  "$(PGOPTIONS="-c pg_tenant.tenant_id=$c -c pg_tenant.signed_tenant_id=$c" as_role lp_signed -c "SELECT count(*) FROM public.lp_items" >/dev/null 2>&1 && echo accepted || echo refused)"
q "$db" "ALTER ROLE lp_signed SET pg_tenant.tenant_id = '$c'" >/dev/null
check_eq "4: ALTER ROLE ... SET pg_tenant.tenant_id enters no tenant" "|0" \
  "$(as_role lp_signed -c "SELECT coalesce(tenant.current_id()::text, '') || '|' || count(*) FROM public.lp_items" 2>/dev/null | tail -n 1)"
q "$db" "ALTER ROLE lp_signed RESET pg_tenant.tenant_id" >/dev/null
q "$db" "CREATE FUNCTION public.lp_in_tenant() RETURNS text LANGUAGE sql SET pg_tenant.tenant_id = '$c' AS \$\$
           SELECT coalesce(tenant.current_id()::text, '') || '|' || count(*) FROM public.lp_items \$\$;
         GRANT EXECUTE ON FUNCTION public.lp_in_tenant() TO lp_signed" >/dev/null
check_eq "4: a function's SET clause enters no tenant" "refused or empty" \
  "$(r=$(as_role lp_signed -c "SELECT public.lp_in_tenant()" 2>/dev/null); [ -z "$r" ] || [ "$r" = "|0" ] && echo "refused or empty" || echo "$r")"
check_eq "4: set_config of the hidden signed setting is refused (42501)" "42501" \
  "$(PGPASSWORD=lp-test-password PGUSER=lp_signed sqlstate_of "$db" "SELECT set_config('pg_tenant.signed_tenant_id', '$c', false)")"
check_eq "4: a signed token enters the tenant" "$c|20000" \
  "$(as_role lp_signed -c "BEGIN" -c "SELECT tenant.set_signed('$token') IS NOT NULL" -c "SELECT tenant.current_id() || '|' || count(*) FROM public.lp_items" -c "COMMIT" | sed -n 3p)"
parallel="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
          SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;"
plan=$(as_role lp_signed -c "$parallel" -c "BEGIN" -c "SELECT tenant.set_signed('$token') IS NOT NULL" \
  -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM public.lp_items" -c "COMMIT" 2>&1)
check "7: a parallel query in a signed context launches workers" grep -qE "Workers Launched: [1-9]" <<<"$plan"
check_eq "7: ... and counts the tenant's rows in them" "rows=20000" \
  "$(as_role lp_signed -c "$parallel" -c "BEGIN" -c "SELECT tenant.set_signed('$token') IS NOT NULL" \
       -c "SELECT 'rows=' || count(*) FROM public.lp_items" -c "COMMIT" 2>&1 | grep '^rows=')"
check_eq "7: a parallel query under an unsigned startup tenant counts nothing, in the workers too" "rows=0" \
  "$(PGOPTIONS="-c pg_tenant.tenant_id=$c" as_role lp_signed -c "$parallel" -c "SELECT 'rows=' || count(*) FROM public.lp_items" 2>&1 | grep '^rows=')"

# --- 5. secrets are shown to superusers only ---------------------------------------------------
q "$db" "ALTER SYSTEM SET pg_tenant.redis_url = 'redis://:hunter2-password@127.0.0.1:6379'" >/dev/null
q "$db" "SELECT pg_reload_conf()" >/dev/null
deadline=$((SECONDS + 10))
until [ "$(q "$db" "SHOW pg_tenant.redis_url")" != "" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
for setting in pg_tenant.context_secret pg_tenant.redis_url; do
  check_eq "5: a pg_monitor member sees $setting masked (SHOW)" "********" "$(as_role lp_monitor -c "SHOW $setting")"
  check_eq "5: ... and in current_setting()" "********" "$(as_role lp_monitor -c "SELECT current_setting('$setting')")"
  check_eq "5: ... and pg_settings has no row of it" "0" \
    "$(as_role lp_monitor -c "SELECT count(*) FROM pg_settings WHERE name = '$setting'")"
  check "5: ... nor SHOW ALL" bash -c '! grep -q "$1" <<<"$2"' _ "$setting" "$(as_role lp_monitor -c "SHOW ALL")"
done
check_eq "5: the application role cannot read the secret (42501)" "42501" \
  "$(PGPASSWORD=lp-test-password PGUSER=lp_app sqlstate_of "$db" "SHOW pg_tenant.context_secret")"
check_eq "5: a superuser sees it" "$secret" "$(q "$db" "SHOW pg_tenant.context_secret")"
# The server log: the postmaster's standard error (pg_ctl -l, pg_virtualenv), read through /proc.
postmaster=$(head -n 1 "$(q "$db" "SELECT current_setting('data_directory')")/postmaster.pid" 2>/dev/null)
log=$(readlink "/proc/$postmaster/fd/2" 2>/dev/null)
if [ -f "$log" ]; then
  deadline=$((SECONDS + 10))
  until grep -q 'parameter "pg_tenant.redis_url" changed' "$log" || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
  check "5: the reload logged the change of pg_tenant.redis_url" grep -q 'parameter "pg_tenant.redis_url" changed to "\*\*\*\*\*\*\*\*"' "$log"
  check "5: ... with the password masked" bash -c '! grep -q "hunter2-password" "$1"' _ "$log"
else
  echo "  (the server log is not readable here: the reload log line was not checked)"
fi
q "$db" "ALTER SYSTEM RESET pg_tenant.redis_url" >/dev/null
q "$db" "ALTER SYSTEM RESET pg_tenant.context_secret" >/dev/null
q "$db" "SELECT pg_reload_conf()" >/dev/null
q "$db" "ALTER ROLE lp_signed RESET ALL" >/dev/null

# --- 8. the owner cannot put a trigger that checks nothing in the tenant key's place -------------
key_def() { q "$db" "SELECT pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger WHERE tgrelid = 'public.lp_items'::regclass AND tgname = 'tenant_key'"; }
key_before=$(key_def)
check "8: the table has its tenant key" test -n "$key_before"
as_role lp_owner -q -c "CREATE FUNCTION public.lp_noop() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NULL; END \$\$" >/dev/null
while IFS='|' read -r what statement; do
  check_eq "8: the owner's $what is refused (TN005)" "TN005" \
    "$(PGPASSWORD=lp-test-password PGUSER=lp_owner sqlstate_of "$db" "$statement")"
done <<'CASES'
CREATE OR REPLACE TRIGGER of a no-op function, statement level|CREATE OR REPLACE TRIGGER tenant_key AFTER INSERT ON public.lp_items FOR EACH STATEMENT EXECUTE FUNCTION public.lp_noop()
CREATE OR REPLACE TRIGGER ... WHEN (false)|CREATE OR REPLACE TRIGGER tenant_key AFTER INSERT OR UPDATE OF tenant_id ON public.lp_items FOR EACH ROW WHEN (false) EXECUTE FUNCTION tenant._tenant_key_check('tenant_id')
CREATE OR REPLACE TRIGGER ... INSERT only|CREATE OR REPLACE TRIGGER tenant_key AFTER INSERT ON public.lp_items FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('tenant_id')
CREATE OR REPLACE TRIGGER ... of another column|CREATE OR REPLACE TRIGGER tenant_key AFTER INSERT OR UPDATE OF id ON public.lp_items FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('id')
DISABLE TRIGGER tenant_key|ALTER TABLE public.lp_items DISABLE TRIGGER tenant_key
ENABLE REPLICA TRIGGER tenant_key|ALTER TABLE public.lp_items ENABLE REPLICA TRIGGER tenant_key
CASES
check_eq "8: the tenant key is as protect made it" "$key_before" "$(key_def)"
# With the guard off (a superuser's choice), the audit reports the replaced key and protect repairs it.
q "$db" "SET pg_tenant.enforce = off; CREATE OR REPLACE TRIGGER tenant_key AFTER INSERT ON public.lp_items FOR EACH STATEMENT EXECUTE FUNCTION public.lp_noop()" >/dev/null
check_eq "8: the audit reports a tenant key replaced by a no-op" "no_tenant_foreign_key" \
  "$(q "$db" "SELECT rule FROM tenant.audit() WHERE object = 'public.lp_items' AND rule = 'no_tenant_foreign_key'")"
check_eq "8: tenant.protect() puts the key back" "$key_before" "$(q "$db" "SELECT tenant.protect('public.lp_items')" >/dev/null; key_def)"
check_eq "8: and the audit is quiet about it" "0" \
  "$(q "$db" "SELECT count(*) FROM tenant.audit() WHERE object = 'public.lp_items' AND rule = 'no_tenant_foreign_key'")"

# --- 9. rows of unregistered tenants do not come in with a filled table ----------------------------
stranger=00000000-0000-0000-0000-00000000dead
known=$(q "$db" "SELECT id FROM tenant.tenants ORDER BY id LIMIT 1")
as_role lp_owner -q >/dev/null <<SQL
CREATE TABLE public.lp_filled (tenant_id uuid NOT NULL, id int);
INSERT INTO public.lp_filled VALUES ('$known', 1), ('$stranger', 2);
CREATE TABLE public.lp_parted (tenant_id uuid NOT NULL, id int) PARTITION BY RANGE (id);
SELECT tenant.protect('public.lp_parted');
CREATE TABLE public.lp_part (tenant_id uuid NOT NULL, id int);
INSERT INTO public.lp_part VALUES ('$known', 1), ('$stranger', 2);
CREATE TABLE public.lp_base (tenant_id uuid NOT NULL, id int);
SELECT tenant.protect('public.lp_base');
CREATE TABLE public.lp_kid (tenant_id uuid NOT NULL, id int);
INSERT INTO public.lp_kid VALUES ('$known', 1), ('$stranger', 2);
SQL
owner_state() { PGPASSWORD=lp-test-password PGUSER=lp_owner sqlstate_of "$db" "$1"; }
check_eq "9: tenant.protect() of a table holding a row of an unregistered tenant is 23503" "23503" \
  "$(owner_state "SELECT tenant.protect('public.lp_filled')")"
check_eq "9: ATTACH PARTITION of such a table is 23503" "23503" \
  "$(owner_state "ALTER TABLE public.lp_parted ATTACH PARTITION public.lp_part FOR VALUES FROM (0) TO (100)")"
check_eq "9: INHERIT of such a table is 23503" "23503" "$(owner_state "ALTER TABLE public.lp_kid INHERIT public.lp_base")"
refusal=$(PGPASSWORD=lp-test-password psql -X -At -U lp_owner -d "$db" -c "SELECT tenant.protect('public.lp_filled')" 2>&1)
check "9: the error names the table and the tenant" grep -q "lp_filled.*$stranger" <<<"$(tr '\n' ' ' <<<"$refusal")"
check_eq "9: nothing was protected, linked or lost" "0|0|0|2|2|2" "$(q "$db" "SELECT
  (SELECT count(*) FROM tenant.scoped_tables WHERE relid IN ('public.lp_filled'::regclass, 'public.lp_part'::regclass, 'public.lp_kid'::regclass))
  || '|' || (SELECT count(*) FROM pg_inherits WHERE inhrelid IN ('public.lp_part'::regclass, 'public.lp_kid'::regclass))
  || '|' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.lp_filled'::regclass)
  || '|' || (SELECT count(*) FROM public.lp_filled) || '|' || (SELECT count(*) FROM public.lp_part) || '|' || (SELECT count(*) FROM public.lp_kid)")"
as_role lp_owner -q -c "DELETE FROM public.lp_filled WHERE tenant_id = '$stranger'" -c "DELETE FROM public.lp_part WHERE tenant_id = '$stranger'" \
  -c "DELETE FROM public.lp_kid WHERE tenant_id = '$stranger'"
check_eq "9: with only registered tenants' rows, protect, ATTACH and INHERIT work" "no error|no error|no error" \
  "$(owner_state "SELECT tenant.protect('public.lp_filled')")|$(owner_state "ALTER TABLE public.lp_parted ATTACH PARTITION public.lp_part FOR VALUES FROM (0) TO (100)")|$(owner_state "ALTER TABLE public.lp_kid INHERIT public.lp_base")"
check_eq "9: ... and the three are protected" "3" \
  "$(q "$db" "SELECT count(*) FROM tenant.scoped_tables WHERE relid IN ('public.lp_filled'::regclass, 'public.lp_part'::regclass, 'public.lp_kid'::regclass)")"

# --- 10. made-up tenant ids take no statistics rows -----------------------------------------------
psql -X -q -d "$db" -c "SELECT tenant.set('$known')" -c "SELECT 1" >/dev/null  # a registered tenant's statements
# (Rows of tenants deleted earlier in this script stay: they were registered when they came.)
strays() { q "$db" "SELECT count(*) FROM $1 s WHERE s.kind = 'tenant' AND NOT EXISTS (SELECT 1 FROM tenant.tenants t WHERE t.$2 = s.$3)"; }
strays_before="$(strays tenant.stats id tenant_id)|$(strays "tenant.top_tenants(50)" id tenant_id)|$(strays "tenant.stats_for_export(50)" slug tenant)"
q "$db" "SELECT format('SET pg_tenant.tenant_id = %L; SELECT 1;', gen_random_uuid()) FROM generate_series(1, 300)" >"/tmp/lp-made-up.$$.sql"
as_role lp_nobody -q -f "/tmp/lp-made-up.$$.sql" >/dev/null 2>&1
rm -f "/tmp/lp-made-up.$$.sql"
check_eq "10: 300 statements under made-up tenant ids took no tenant row, in stats, top_tenants() or the exporter's labels" \
  "$strays_before" "$(strays tenant.stats id tenant_id)|$(strays "tenant.top_tenants(50)" id tenant_id)|$(strays "tenant.stats_for_export(50)" slug tenant)"
check "10: ... and were counted in the row 'unregistered'" test "$(q "$db" "SELECT coalesce(sum(calls), 0) FROM tenant.stats WHERE kind = 'unregistered'")" -ge 300
check "10: a registered tenant still has its own row" test "$(q "$db" "SELECT count(*) FROM tenant.stats WHERE kind = 'tenant' AND tenant_id = '$known'")" = 1

# --- 11. a regclass naming no relation is 42P01, never XX000 -----------------------------------
for f in "tenant.protect(123456789::regclass)" "tenant.policy_sql(123456789::regclass)" \
         "tenant._table_tree(123456789::regclass)" "tenant.protect(0::regclass)" "tenant.policy_sql(0::regclass)"; do
  check_eq "11: $f is 42P01" "42P01" "$(sqlstate_of "$db" "SELECT * FROM $f")"
done

check_eq "no lp_ role is superuser at the end" "" "$(superusers)"
dropdb "$db"
for role in lp_owner lp_app lp_nobody lp_hook lp_signed lp_monitor; do
  q postgres "DROP OWNED BY $role CASCADE" >/dev/null 2>&1
  q postgres "DROP ROLE IF EXISTS $role" >/dev/null 2>&1
done
