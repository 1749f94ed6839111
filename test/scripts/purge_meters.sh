#!/usr/bin/env bash
# tenant.purge() and what shared memory holds of a tenant: its meters (0.7.0) go when the purge
# commits, not before (a purge rolled back, whole or to a savepoint, forgets nothing), never
# another tenant's, and the flusher does not write them back; its statistics row (0.8.0) goes too.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_purge_meters
dropdb --if-exists $db 2>/dev/null
createdb $db
a=00000000-0000-0000-0000-00000000a001
b=00000000-0000-0000-0000-00000000b001
psql -X -q -v ON_ERROR_STOP=1 -d $db <<SQL >/dev/null
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.tenants (id, name, slug) VALUES ('$a', 'Purged', 'purged'), ('$b', 'Kept', 'kept');
SQL
if [ "$(q $db "SELECT current_setting('shared_preload_libraries') LIKE '%pg_tenant%'")" != t ]; then
  fail "purge_meters: pg_tenant is not preloaded in the test cluster"; exit 0
fi
meter() { psql -X -Atq -d $db -c "BEGIN" -c "SELECT tenant.set('$1')" -c "SELECT tenant.meter('$2', $3)" -c "COMMIT" >/dev/null; }
usage() { q $db "SELECT coalesce(string_agg(resource || '=' || used, ',' ORDER BY resource), 'none') FROM tenant._meter_usage('$1')"; }
meter purged calls 3
meter purged uploads 2
meter kept calls 1
check_eq "the tenant's counters before the purge" "calls=3,uploads=2" "$(usage $a)"
entries=$(q $db "SELECT entries FROM tenant.meter_info()")

stats_rows() { q $db "SELECT count(*) FROM tenant.stats WHERE tenant_id = '$1'"; }
check_eq "the tenant has a statistics row before the purge" "1" "$(stats_rows $a)"
q $db "SELECT tenant.suspend('$a')" >/dev/null
psql -X -Atq -d $db -c "BEGIN" -c "SAVEPOINT s" -c "SELECT count(*) FROM tenant.purge('$a')" -c "ROLLBACK TO s" \
  -c "COMMIT" >/dev/null
check_eq "a purge rolled back to a savepoint forgets nothing" "calls=3,uploads=2" "$(usage $a)"
psql -X -Atq -d $db -c "BEGIN" -c "SELECT count(*) FROM tenant.purge('$a')" -c "ROLLBACK" >/dev/null
check_eq "a purge rolled back forgets nothing" "calls=3,uploads=2" "$(usage $a)"

q $db "INSERT INTO tenant.usage_alerts (tenant_id, resource, window_start, period, level, used, \"limit\", enforcement)
        VALUES ('$a', 'calls', now(), 'day', 80, 8, 10, 'hard'), ('$b', 'calls', now(), 'day', 80, 8, 10, 'hard')" >/dev/null
check_eq "tenant.purge() commits" "t" "$(q $db "SELECT count(*) >= 0 FROM tenant.purge('$a')")"
check_eq "after the purge: the tenant has no counter in shared memory" "none" "$(usage $a)"
check_eq "the other tenant's counter is untouched" "calls=1" "$(usage $b)"
check_eq "after the purge: the tenant's usage alerts are gone, the other's kept (0.9.0)" "$b" \
  "$(q $db "SELECT string_agg(tenant_id::text, ',') FROM tenant.usage_alerts")"
check_eq "after the purge: the tenant has no statistics row" "0" "$(stats_rows $a)"
check_eq "the other tenant's statistics row is kept" "1" "$(stats_rows $b)"
# At least two: the worker may free other databases' ended windows meanwhile.
entries_after=$(q $db "SELECT entries FROM tenant.meter_info()")
check "the shared table gave the two entries back ($entries before, $entries_after after)" [ "$entries_after" -le $((entries - 2)) ]
if [ "$(q $db "SELECT current_setting('pg_tenant.database')")" = "$db" ]; then
  # A flush that copied the counters after the purge committed has committed itself.
  purged_at=$(q $db "SELECT clock_timestamp()")
  check_eq "a flush ran after the purge" t \
    "$(poll_until t 10 q $db "SELECT coalesce(tenant._meters_flushed_until() > '$purged_at', false)")"
  check_eq "the flusher wrote nothing back for the purged tenant" "0" \
    "$(q $db "SELECT count(*) FROM tenant.meter_counts WHERE tenant_id = '$a'")"
else
  echo "  (the flusher persists another database's meters: nothing to write back here)"
fi
dropdb $db
