#!/usr/bin/env bash
# Every earlier version installs, takes data, and ALTER EXTENSION pg_tenant UPDATE brings it to
# the current default version with the data in place.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

current=$(sed -nE "s/^default_version *= *'([^']+)'/\1/p" pg_tenant.control)
versions=$(ls extension/ | sed -nE 's/^pg_tenant--([0-9.]+)\.sql$/\1/p' | sort -V)
check "install script for the default version $current exists" grep -qx "$current" <<<"$versions"

for v in $versions; do
  [ "$v" = "$current" ] && continue
  db="pt_upgrade_${v//./_}"
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db"
  q "$db" "CREATE EXTENSION pg_tenant VERSION '$v'" >/dev/null
  q "$db" "SELECT tenant.create('Tenant ' || i, 'up-' || i) FROM generate_series(1, 20) AS i" >/dev/null
  before=$(q "$db" "SELECT string_agg(id || slug || plan || status, ',' ORDER BY id) FROM tenant.tenants")
  check "ALTER EXTENSION UPDATE from $v" q "$db" "ALTER EXTENSION pg_tenant UPDATE"
  check_eq "version after update from $v" "$current" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
  check_eq "tenants kept across update from $v" "$before" \
    "$(q "$db" "SELECT string_agg(id || slug || plan || status, ',' ORDER BY id) FROM tenant.tenants")"
  check_eq "context works after update from $v" "t" "$(q "$db" "SELECT tenant.set('up-1') IS NOT NULL")"
  dropdb "$db"
done
