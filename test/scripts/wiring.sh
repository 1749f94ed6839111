#!/usr/bin/env bash
# The wiring (src/wiring/, src/executor/door.cpp): every setting is registered in one file and
# README lists exactly those, in that order; no other file registers a setting or takes a hook;
# the executor door's steps run in the order door.cpp writes (it logs each step it reaches at
# DEBUG2), and another extension's executor hook loaded after pg_tenant still runs around it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

# --- settings: one place, and the docs list exactly them ---------------------------------------
registered=$(tr -d '\n' <src/wiring/settings.cpp | grep -oE 'Define[A-Za-z]+Variable\( *"pg_tenant\.[a-z_]+"' | grep -oE 'pg_tenant\.[a-z_]+' | paste -sd, -)
documented=$(sed -nE 's/^\| `(pg_tenant\.[a-z_]+)` \| `.*/\1/p' README.md | paste -sd, -)
check_eq "README's settings table lists the registered settings, in their order" "$registered" "$documented"
check "28 settings are registered" test "$(tr , '\n' <<<"$registered" | wc -l)" -eq 28
others=$(grep -rlE 'DefineCustom[A-Za-z]+Variable|MarkGUCPrefixReserved' src --include=*.cpp | grep -v '^src/wiring/settings.cpp$' | paste -sd, -)
check_eq "no other file registers a setting" "" "$others"
hooks=$(grep -rlE '(ExecutorStart|ExecutorRun|ExecutorFinish|ExecutorEnd|ProcessUtility|planner|shmem_request|shmem_startup|emit_log)_hook *=[^=]|Register(Sub)?XactCallback|CacheRegister(Relcache|Syscache)Callback|RegisterBackgroundWorker\(' src --include=*.cpp | paste -sd, -)
# meters register their purge callbacks lazily (meters/purge.cpp), at a tenant's first purge in
# a backend (hooks.cpp says so); the flusher registers itself when hooks.cpp asks it to.
check_eq "hooks and callbacks are taken in src/wiring/hooks.cpp and the executor door only" \
  "src/executor/door.cpp,src/meters/flusher.cpp,src/meters/purge.cpp,src/wiring/hooks.cpp" "$(tr , '\n' <<<"$hooks" | sort | paste -sd, -)"
check "pg_settings shows the registered settings (those not hidden)" test -z "$(comm -3 \
  <(q postgres "SELECT name FROM pg_settings WHERE name LIKE 'pg\_tenant.%' ORDER BY 1") \
  <(tr , '\n' <<<"$registered" | grep -vxE 'pg_tenant\.(signed_tenant_id|context_secret|redis_url)' | sort))"

# --- the executor door -------------------------------------------------------------------------
db=pt_wiring
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT tenant.create('Wiring A', 'wiring-a');
CREATE TABLE public.wiring_items (tenant_id uuid NOT NULL DEFAULT tenant.current_id(), id int);
SELECT tenant.protect('public.wiring_items');
SELECT tenant.limit_rows('public.wiring_items', 'wiring_items');
DO $$ BEGIN CREATE ROLE pt_wiring_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA tenant TO pt_wiring_app;
GRANT SELECT, INSERT ON public.wiring_items TO pt_wiring_app;
GRANT EXECUTE ON FUNCTION tenant.set(text) TO pt_wiring_app;
SQL

# steps LOGFILE ENTRY: the step names of the door's DEBUG2 lines for ENTRY, in order, comma-separated.
steps() { sed -nE "s/.*pg_tenant executor $2 step [0-9]+ of [0-9]+: (.*)$/\1/p" "$1" | paste -sd, -; }

log=$(mktemp)
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "BEGIN" -c "SELECT tenant.set('wiring-a')" \
  -c "INSERT INTO public.wiring_items (id) VALUES (1)" -c "SET LOCAL client_min_messages = debug2" \
  -c "SELECT count(*) FROM tenant.row_counts" -c "COMMIT" 2>"$log" >/dev/null
first_start=$(steps "$log" ExecutorStart | cut -d, -f1-4)
check_eq "ExecutorStart: statistics, strict context, quota ledger, then PostgreSQL" \
  "statistics,strict context,quota ledger,PostgreSQL" "$first_start"
check_eq "ExecutorRun: statistics" "statistics" "$(steps "$log" ExecutorRun | cut -d, -f1)"
check_eq "ExecutorFinish: statistics" "statistics" "$(steps "$log" ExecutorFinish | cut -d, -f1)"
check_eq "ExecutorEnd: statistics" "statistics" "$(steps "$log" ExecutorEnd | cut -d, -f1)"
check "each step line says how many steps its entry has" grep -q "pg_tenant executor ExecutorStart step 4 of 4: PostgreSQL" "$log"
# The ledger step acted: the statement read the count the transaction had pending.
check_eq "the quota ledger step wrote the pending count before the statement read it" "2" \
  "$(psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('wiring-a') IS NULL" -c "INSERT INTO public.wiring_items (id) VALUES (2)" \
     -c "SELECT rows FROM tenant.row_counts WHERE resource = 'wiring_items'" -c "ROLLBACK" | tail -n 1)"

# Step 1 wraps step 2: a statement strict context refuses is counted (a call and an error of "none").
before=$(q $db "SELECT coalesce(sum(errors), 0) FROM tenant.stats WHERE kind = 'none'")
check_eq "strict context refuses (TN008)" "TN008" \
  "$(sqlstate_of $db "SET pg_tenant.missing_context = error; SET ROLE pt_wiring_app; SELECT * FROM public.wiring_items")"
check_eq "... and the statistics, around it, counted the refusal" "1" \
  "$(q $db "SELECT coalesce(sum(errors), 0) - $before FROM tenant.stats WHERE kind = 'none'")"

# Another extension's executor hook, loaded after pg_tenant, runs around the door; both work.
out=$(psql -X -q -d $db 2>&1 -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
  -c "SET client_min_messages = log" -c "SET pg_tenant.missing_context = error" -c "SET ROLE pt_wiring_app" \
  -c "BEGIN" -c "SELECT tenant.set('wiring-a')" -c "SELECT count(*) FROM public.wiring_items" -c "RESET pg_tenant.tenant_id" \
  -c "SELECT count(*) FROM public.wiring_items" -c "ROLLBACK")
check "auto_explain (loaded after pg_tenant) logs the plan of a tenant's statement" grep -q "Query Text: SELECT count(\*) FROM public.wiring_items" <<<"$out"
check "... and the door still refuses a statement without a tenant (TN008)" grep -q "no tenant is set" <<<"$out"
dropdb $db
q postgres "DROP ROLE pt_wiring_app" >/dev/null
