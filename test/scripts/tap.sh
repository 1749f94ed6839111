#!/usr/bin/env bash
# pg_tenant_tap (tap/): installed with `make -C tap install`, created in a throwaway database next
# to pgtap and pg_tenant; its pgTAP suite (tap/test/*.sql, every assertion failing on a broken
# schema and passing on a sound one) runs with pg_prove, one pass/fail line per TAP line; then
# the extension's own shape: the script's \echo guard, pinned search_path, no SECURITY DEFINER.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_tap_$$
if ! make -s -C tap install >/tmp/pg_tenant-tap-install.out 2>&1; then
  cat /tmp/pg_tenant-tap-install.out
  fail "tap: make -C tap install failed"
  exit 0
fi
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pg_tenant" \
  -c "CREATE EXTENSION pg_tenant_tap"
check_eq "tap: CREATE EXTENSION pg_tenant_tap (schema tenant_tap, version 0.1.0)" "tenant_tap 0.1.0" \
  "$(q $db "SELECT extnamespace::regnamespace || ' ' || extversion FROM pg_extension WHERE extname = 'pg_tenant_tap'")"

out=$(mktemp)
pg_prove -v -d $db tap/test/*.sql >"$out" 2>&1
rc=$?
grep -vE '^\s*ok [0-9]+' "$out"
while read -r line; do
  case "$line" in
    "not ok "*) fail "tap ${line#not ok }" ;;
    "ok "*) pass "tap ${line#ok }" ;;
  esac
done < <(sed -nE 's/^\s*((not )?ok [0-9]+.*)/\1/p' "$out")
grep -qE '^\s*(not )?ok [0-9]+' "$out" || fail "tap: pg_prove ran no test"
if [ $rc -ne 0 ] && ! grep -qE '^\s*not ok' "$out"; then
  fail "tap: pg_prove exited $rc (bad plan or a file died)"
fi
rm -f "$out"

script="$(pg_config --sharedir)/extension/pg_tenant_tap--0.1.0.sql"
guard=$(psql -X -q -d $db -f "$script" 2>&1 | head -n 1)
check_eq "tap: the install script run by psql only says how to load it" \
  'Use "CREATE EXTENSION pg_tenant_tap" to load this file.' "$guard"
check_eq "tap: every function pins its search_path" 0 \
  "$(q $db "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant_tap'::regnamespace
             AND NOT coalesce(proconfig::text LIKE '%search_path=tenant_tap, %', false)")"
check_eq "tap: no function is SECURITY DEFINER" 0 \
  "$(q $db "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant_tap'::regnamespace AND prosecdef")"
check "tap: DROP EXTENSION pg_tenant_tap leaves pg_tenant and pgtap in place" \
  psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -d $db -c "DROP EXTENSION pg_tenant_tap" \
       -c "SELECT 'tenant.set(text)'::regprocedure, 'ok(boolean,text)'::regprocedure"
dropdb $db
