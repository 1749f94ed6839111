#!/usr/bin/env bash
# Without shared_preload_libraries: CREATE EXTENSION works and the context works, loading the
# library on first use. Run by scripts/test.sh in a cluster of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_no_preload
dropdb --if-exists $db 2>/dev/null
createdb $db
check_eq "shared_preload_libraries is empty" "" "$(q $db 'SHOW shared_preload_libraries')"
check "CREATE EXTENSION without preloading" q $db "CREATE EXTENSION pg_tenant"
id=$(q $db "SELECT tenant.create('Acme', 'acme')")
check_eq "tenant.set + current_id in one transaction" "t" \
  "$(psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT tenant.current_id() = '$id'" -c "COMMIT" | sed -n 2p)"
# SET LOCAL before the library is loaded in this backend: the value is taken over and validated.
check_eq "SET LOCAL before the library loads" "$id" \
  "$(psql -X -Atq -d $db -c "BEGIN" -c "SET LOCAL pg_tenant.tenant_id = '$id'" -c "SELECT tenant.current_id()" -c "COMMIT")"
# A bad value set before loading is refused with a WARNING when the library loads: no context.
out=$(psql -X -Atq -d $db -c "BEGIN" -c "SET LOCAL pg_tenant.tenant_id = 'garbage'" \
      -c "SELECT coalesce(tenant.current_id()::text, 'no tenant')" -c "COMMIT" 2>&1)
check_eq "bad placeholder value means no tenant" "no tenant" "$(echo "$out" | grep -vE '^(WARNING|HINT):' | grep -v '^$')"
check "bad placeholder value is reported" grep -q 'invalid tenant id: "garbage"' <<<"$out"
# Features that need shared memory say so.
out=$(psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT tenant.meter('api_calls')" 2>&1)
check "tenant.meter without preloading: a clear error naming the fix" \
  grep -q "tenant meters need pg_tenant in shared_preload_libraries" <<<"$out"
out=$(psql -X -Atq -d $db -c "SELECT * FROM tenant.stats" 2>&1)
check "tenant.stats without preloading: a clear error naming the fix (55000)" \
  grep -q "tenant statistics need pg_tenant in shared_preload_libraries" <<<"$out"
check_eq "tenant.stats_reset() without preloading: 55000" "55000" "$(sqlstate_of $db "SELECT tenant.stats_reset()")"
check_eq "statements run (and log) without preloading, with pg_tenant.log_tenant set" "1" \
  "$(psql -X -Atq -d $db -c "SET pg_tenant.log_tenant = slug" -c "BEGIN" -c "SELECT tenant.set('acme') IS NOT NULL" \
       -c "SELECT count(*) FROM tenant.tenants WHERE slug = 'acme'" -c "COMMIT" | sed -n 2p)"
check_eq "feature flags work without preloading" "f" \
  "$(psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT tenant.has_feature('x')" -c "COMMIT" | sed -n 2p)"
dropdb $db

# The extension creates and owns schema "tenant": a schema planted beforehand makes CREATE
# EXTENSION fail (nobody can prepare objects in it), and DROP EXTENSION removes it.
createdb pt_planted
q pt_planted "CREATE SCHEMA tenant" >/dev/null
out=$(psql -X -At -d pt_planted -c "CREATE EXTENSION pg_tenant" 2>&1)
check "CREATE EXTENSION refuses a pre-existing schema tenant" grep -q 'schema "tenant" already exists' <<<"$out"
q pt_planted "DROP SCHEMA tenant" >/dev/null
q pt_planted "CREATE EXTENSION pg_tenant" >/dev/null
q pt_planted "DROP EXTENSION pg_tenant" >/dev/null
check_eq "DROP EXTENSION removes schema tenant" "0" "$(q pt_planted "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant'")"
dropdb pt_planted
