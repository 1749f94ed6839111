#!/usr/bin/env bash
# The DDL door: pg_tenant has exactly one ddl_command_end and one sql_drop event trigger, and
# their steps run in the order src/ddl/ddl.cpp writes. The door logs each step it runs at DEBUG1;
# this reads those lines for a statement every step acts on (a partition of a protected table
# whose rows are counted), checks their order and that each step did its work.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_ddl_door
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT tenant.create('Door A', 'door-a');
CREATE TABLE public.door_items (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
CREATE TABLE public.door_items_0 PARTITION OF public.door_items FOR VALUES WITH (MODULUS 2, REMAINDER 0);
SELECT tenant.protect('public.door_items');
SELECT tenant.limit_rows('public.door_items', 'door_items');
SQL

check_eq "one ddl_command_end and one sql_drop event trigger" "pg_tenant_ddl_command_end ddl_command_end A,pg_tenant_sql_drop sql_drop A" \
  "$(q $db "SELECT string_agg(evtname || ' ' || evtevent || ' ' || evtenabled::text, ',' ORDER BY evtname) FROM pg_event_trigger")"

# steps LOGFILE EVENT: the step names of the door's DEBUG1 lines for EVENT, in order, comma-separated
# (the statement's own steps: not those of DDL the steps themselves run, which are "nested").
steps() { grep -v nested "$1" | sed -nE "s/.*pg_tenant $2 step [0-9]+ of [0-9]+: (.*)$/\1/p" | paste -sd, -; }

log=$(mktemp)
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "SET client_min_messages = debug1" \
  -c "CREATE TABLE public.door_items_1 PARTITION OF public.door_items FOR VALUES WITH (MODULUS 2, REMAINDER 1)" \
  2>"$log" >/dev/null
check_eq "ddl_command_end: guard, then protect new children, then row quotas, then citus policies" \
  "guard,protect new children,row quotas,citus policies" "$(steps "$log" ddl_command_end)"
check "the DDL that protect runs passes the door too (nested)" grep -q "protect new children (nested)" "$log"
check_eq "the new partition was protected in the same statement" "1" \
  "$(q $db "SELECT count(*) FROM tenant.scoped_tables WHERE relid = 'public.door_items_1'::regclass")"
check_eq "... and joined its parent's row quota" "1" \
  "$(q $db "SELECT count(*) FROM tenant.row_quotas WHERE relid = 'public.door_items_1'::regclass AND root = 'public.door_items'::regclass")"

psql -X -q -v ON_ERROR_STOP=1 -d $db -c "SET client_min_messages = debug1" \
  -c "DROP TABLE public.door_items_1" 2>"$log" >/dev/null
check_eq "sql_drop: forget dropped tables, then guard, then row quotas" \
  "forget dropped tables,guard,row quotas" "$(steps "$log" sql_drop)"
check_eq "the dropped partition left tenant.scoped_tables" "0" \
  "$(q $db "SELECT count(*) FROM tenant.scoped_tables WHERE relid::text = 'door_items_1'")"
check_eq "... and tenant.row_quotas (the parent and the other partition stay)" "door_items,door_items_0" \
  "$(q $db "SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM tenant.row_quotas")"

# The guard is the first step: a refused statement reaches no other step.
psql -X -q -d $db -c "SET client_min_messages = debug1" -c "CREATE TABLE public.door_plain (id int)" 2>"$log" >/dev/null
check_eq "a refused CREATE TABLE stops at the guard (TN004)" "guard" "$(steps "$log" ddl_command_end)"
check "... with TN004" grep -q "has no tenant column" "$log"
rm -f "$log"

# The door never turns a statement PostgreSQL accepts into an error (issue 19, item 13): IF EXISTS
# forms naming a table (and a schema) that do not exist are NOTICEs, guard on or off.
for enforce in error off; do
  for statement in "ALTER TABLE IF EXISTS public.door_nothing SET SCHEMA door_no_schema" \
                   "ALTER TABLE IF EXISTS public.door_nothing RENAME TO door_still_nothing" \
                   "ALTER TABLE IF EXISTS public.door_nothing RENAME COLUMN a TO b" \
                   "ALTER TABLE IF EXISTS public.door_nothing ADD COLUMN c int" \
                   "DROP TABLE IF EXISTS public.door_nothing"; do
    check_eq "enforce=$enforce: '$statement' is accepted as PostgreSQL accepts it" "no error" \
      "$(sqlstate_of $db "SET pg_tenant.enforce = $enforce; $statement")"
  done
done
dropdb $db
