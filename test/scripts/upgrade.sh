#!/usr/bin/env bash
# Upgrades: every earlier version installs, takes data, and ALTER EXTENSION pg_tenant UPDATE
# brings it to the current default version with the data in place; an upgraded extension has
# exactly the objects of a fresh install.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

current=$(sed -nE "s/^default_version *= *'([^']+)'/\1/p" pg_tenant.control)
# Versions named by the scripts: install scripts and upgrade targets.
versions=$(ls extension/ | sed -nE 's/^pg_tenant--([0-9.]+)\.sql$/\1/p; s/^pg_tenant--[0-9.]+--([0-9.]+)\.sql$/\1/p' | sort -uV)
members() {  # every object of the extension, described
  q "$1" "SELECT string_agg(pg_describe_object(classid, objid, objsubid), E'\n' ORDER BY 1)
            FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
             AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenant')"
}

dropdb --if-exists pt_upgrade_fresh 2>/dev/null
createdb pt_upgrade_fresh
check "fresh install of $current" q pt_upgrade_fresh "CREATE EXTENSION pg_tenant"
fresh=$(members pt_upgrade_fresh)

for v in $versions; do
  [ "$v" = "$current" ] && continue
  db="pt_upgrade_${v//./_}"
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db"
  q "$db" "CREATE EXTENSION pg_tenant VERSION '$v'" >/dev/null
  q "$db" "SELECT count(tenant.create('Tenant ' || i, 'up-' || i)) FROM generate_series(1, 20) AS i" >/dev/null
  q "$db" "INSERT INTO tenant.plans (name, upgrade_url) VALUES ('pro', 'https://example.com/up')" >/dev/null
  # 0.1.0-0.3.0 kept per-tenant limits in tenants.limit_overrides; 0.4.0 moves them to tenant_limits.
  q "$db" "UPDATE tenant.tenants SET limit_overrides = '{\"users\": 7, \"api_calls\": 1000}' WHERE slug = 'up-3'" >/dev/null
  before=$(q "$db" "SELECT string_agg(id || slug || plan || status || created_at, ',' ORDER BY id) FROM tenant.tenants")
  check "ALTER EXTENSION UPDATE from $v" q "$db" "ALTER EXTENSION pg_tenant UPDATE"
  check_eq "version after update from $v" "$current" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
  check_eq "tenants kept across update from $v" "$before" \
    "$(q "$db" "SELECT string_agg(id || slug || plan || status || created_at, ',' ORDER BY id) FROM tenant.tenants")"
  check_eq "plans kept across update from $v" "free,pro" "$(q "$db" "SELECT string_agg(name, ',' ORDER BY name) FROM tenant.plans")"
  check_eq "limit overrides moved to tenant_limits on update from $v" "api_calls=1000,users=7" \
    "$(q "$db" "SELECT string_agg(l.resource || '=' || l.\"limit\", ',' ORDER BY l.resource) FROM tenant.tenant_limits l JOIN tenant.tenants t ON t.id = l.tenant_id WHERE t.slug = 'up-3'")"
  check_eq "context works after update from $v" "t" "$(q "$db" "SELECT tenant.set('up-1') IS NOT NULL")"
  check_eq "upgraded from $v has exactly the objects of a fresh install" "$fresh" "$(members "$db")"
  dropdb "$db"
done
dropdb pt_upgrade_fresh
