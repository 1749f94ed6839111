#!/usr/bin/env bash
# The Prometheus collector (monitoring/queries.yaml) with Debian's prometheus-postgres-exporter:
# started on a free loopback port against the test cluster (PGHOST/PGPORT), it exposes the
# per-tenant series of tenant.stats_for_export() with the values of a known load, bounded labels
# (top n, "other", "none") included.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

exporter=$(command -v prometheus-postgres-exporter || echo /usr/bin/prometheus-postgres-exporter)
if [ ! -x "$exporter" ]; then
  fail "exporter: prometheus-postgres-exporter is not installed (scripts/install-deps.sh test)"
  exit 0
fi
db=pt_exporter
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT count(*) FROM (SELECT tenant.create('Exp A', 'exp-a'), tenant.create('Exp B', 'exp-b'), tenant.create('Exp C', 'exp-c')) s;
SQL
q $db "SELECT tenant.stats_reset()" >/dev/null
# exp-a: 7 statements (tenant.set_session and 6 reads of 100 rows); exp-b: 3 (1 + 2 failing);
# exp-c: 2 (1 + a short sleep: more time than exp-a and exp-b, never more calls).
{
  echo "SELECT tenant.set_session('exp-a');"
  for _ in 1 2 3 4 5 6; do echo "SELECT count(*) FROM (SELECT g FROM generate_series(1, 100) g) s WHERE g > 0;"; done
  echo "SELECT tenant.set_session('exp-b');"
  echo "SELECT 1 / (random() * 0)::int;"
  echo "SELECT 1 / (random() * 0)::int;"
  echo "SELECT tenant.set_session('exp-c');"
  echo "SELECT pg_sleep(0.05);"
  echo "SELECT tenant.reset();"
} | psql -X -q -d $db >/dev/null 2>&1

port=$(free_port)
work=$(mktemp -d)
dsn="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db sslmode=disable"
[ -n "${PGPASSWORD:-}" ] && dsn="$dsn password=$PGPASSWORD"
# A clean environment: its PostgreSQL driver (lib/pq) panics on settings it does not know, such as
# the PGSYSCONFDIR pg_virtualenv sets; the DSN says all it needs.
env -i PATH="$PATH" DATA_SOURCE_NAME="$dsn" "$exporter" --web.listen-address="127.0.0.1:$port" --extend.query-path=monitoring/queries.yaml \
  --disable-default-metrics --disable-settings-metrics >"$work/exporter.log" 2>&1 &
pid=$!
metrics=""
for _ in $(seq 1 50); do
  metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null) && grep -q '^pg_tenant_stats_calls' <<<"$metrics" && break
  sleep 0.2
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "exporter: /metrics has pg_tenant_stats series" grep -q '^pg_tenant_stats_calls{' <<<"$metrics"
value() {  # metric tenant -> its value
  grep -E "^pg_tenant_stats_$1\{" <<<"$metrics" | grep -F "tenant=\"$2\"" | awk '{print $NF}' | head -n 1
}
check_eq "exporter: exp-a calls" "7" "$(value calls exp-a)"
check_eq "exporter: exp-a rows (6 x 1, and the set_session row)" "7" "$(value rows exp-a)"
check_eq "exporter: exp-b calls" "3" "$(value calls exp-b)"
check_eq "exporter: exp-b errors" "2" "$(value errors exp-b)"
check_eq "exporter: exp-a errors" "0" "$(value errors exp-a)"
check "exporter: exp-c time >= 0.05 s" awk -v t="$(value time_seconds exp-c)" 'BEGIN { exit !(t >= 0.05) }'
check "exporter: series are counters" grep -q '^# TYPE pg_tenant_stats_calls counter' <<<"$metrics"
check_eq "exporter: one other and one none series per metric" "2" \
  "$(grep -E '^pg_tenant_stats_calls\{' <<<"$metrics" | grep -cE 'tenant="(other|none)"')"
check "exporter: the kind label" grep -qE '^pg_tenant_stats_calls\{.*kind="tenant".*tenant="exp-a"' <<<"$metrics"
# Bounded labels: with n = 2 the third tenant (least time: exp-a or exp-b) is in "other".
check_eq "stats_for_export(2): 2 tenants + other + none" "tenant,tenant,other,none" \
  "$(q $db "SELECT string_agg(kind, ',' ORDER BY kind <> 'tenant', kind = 'none') FROM tenant.stats_for_export(2)")"
check_eq "stats_for_export(2): the calls still add up" "t" \
  "$(q $db "SELECT (SELECT sum(calls) FROM tenant.stats_for_export(2)) = (SELECT sum(calls) FROM tenant.stats)")"
[ -n "${SHOW_METRICS:-}" ] && grep "^pg_tenant_stats_calls" <<<"$metrics"
if [ "$(value calls exp-a)" != 7 ]; then echo "$metrics" | grep '^pg_tenant' | head -n 30; cat "$work/exporter.log"; fi
rm -rf "$work"
dropdb $db
