#!/usr/bin/env bash
# The library is preloaded for the whole server: in a database without the extension, its hooks
# must stay out of the way, whatever pg_tenant's settings are (0.7.0's ExecutorStart check).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_no_extension
dropdb --if-exists $db 2>/dev/null
createdb $db
q $db "CREATE TABLE items (id int); INSERT INTO items VALUES (1)" >/dev/null
check_eq "pg_tenant.missing_context = error: a database without pg_tenant still answers" "1" \
  "$(psql -X -q -At -v ON_ERROR_STOP=1 -d $db -c "SET pg_tenant.missing_context = error" -c "SELECT count(*) FROM items" 2>&1)"
check_eq "a tenant id set: writes in a database without pg_tenant still work" "2" \
  "$(psql -X -At -v ON_ERROR_STOP=1 -d $db -c "SET pg_tenant.tenant_id = '00000000-0000-4000-8000-000000000001'" \
       -c "INSERT INTO items VALUES (2)" -c "SELECT count(*) FROM items" 2>&1 | tail -n 1)"
dropdb $db
