#!/usr/bin/env bash
# Upgrades: every earlier version installs, takes data, and ALTER EXTENSION pg_tenant UPDATE
# brings it to the current default version with the data in place; the upgraded extension is
# then, definition by definition (test/definitions.sql: function bodies, columns, constraints,
# indexes, triggers, event triggers, ACLs, comments), the same as a fresh install. A database
# still at the previous release keeps working with this version's library until it is updated.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

current=$(sed -nE "s/^default_version *= *'([^']+)'/\1/p" pg_tenant.control)
# Versions named by the scripts: install scripts and upgrade targets.
versions=$(ls extension/ | sed -nE 's/^pg_tenant--([0-9.]+)\.sql$/\1/p; s/^pg_tenant--[0-9.]+--([0-9.]+)\.sql$/\1/p' | sort -uV)
previous=$(echo "$versions" | grep -vx "$current" | tail -n 1)
definitions() { psql -X -q -d "$1" -f test/definitions.sql; }

dropdb --if-exists pt_upgrade_fresh 2>/dev/null
createdb pt_upgrade_fresh
check "fresh install of $current" q pt_upgrade_fresh "CREATE EXTENSION pg_tenant"
fresh=$(definitions pt_upgrade_fresh)
check "the definitions of a fresh install are readable" test "$(echo "$fresh" | grep -c '^function ')" -gt 50

for v in $versions; do
  [ "$v" = "$current" ] && continue
  db="pt_upgrade_${v//./_}"
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db"
  q "$db" "CREATE EXTENSION pg_tenant VERSION '$v'" >/dev/null
  q "$db" "SELECT count(tenant.create('Tenant ' || i, 'up-' || i)) FROM generate_series(1, 20) AS i" >/dev/null
  q "$db" "INSERT INTO tenant.plans (name, upgrade_url) VALUES ('pro', 'https://example.com/up')" >/dev/null
  # 0.1.0-0.3.0 kept per-tenant limits in tenants.limit_overrides; 0.4.0 moves them to tenant_limits.
  if [ "$(q "$db" "SELECT count(*) FROM pg_attribute WHERE attrelid = 'tenant.tenants'::regclass AND attname = 'limit_overrides'")" = 1 ]; then
    q "$db" "UPDATE tenant.tenants SET limit_overrides = '{\"users\": 7, \"api_calls\": 1000}' WHERE slug = 'up-3'" >/dev/null
  else
    q "$db" "SELECT tenant.set_tenant_limit(id, 'users', 7), tenant.set_tenant_limit(id, 'api_calls', 1000)
               FROM tenant.tenants WHERE slug = 'up-3'" >/dev/null
  fi
  if [ "$v" = "$previous" ]; then
    # The library is already this version's: the previous release's SQL must still work with it.
    q "$db" "CREATE TABLE public.up_items (tenant_id uuid, id int)" >/dev/null
    check_eq "$v with the $current library: protect" "up_items" "$(q "$db" "SELECT tenant.protect('public.up_items')")"
    check "$v with the $current library: DDL on a protected table" q "$db" "ALTER TABLE public.up_items ADD COLUMN note text"
    check_eq "$v with the $current library: the guard still refuses" "TN005" \
      "$(sqlstate_of "$db" "ALTER TABLE public.up_items DISABLE ROW LEVEL SECURITY")"
    check_eq "$v with the $current library: context" "t" \
      "$(q "$db" "BEGIN; SELECT tenant.set('up-1') IS NOT NULL; INSERT INTO public.up_items (id) VALUES (1); COMMIT;" | head -n 1)"
    # 0.9.0 reads two more columns of a limit and returns two more from effective_limit.
    check_eq "$v with the $current library: effective_limit" "7|tenant" \
      "$(q "$db" "SELECT l.limit || '|' || l.source FROM tenant.tenants t, tenant.effective_limit(t.id, 'users') l WHERE t.slug = 'up-3'")"
    # Functions whose signature changes are made again: grants given to roles are kept.
    q "$db" "DO \$\$ BEGIN CREATE ROLE pt_up_app; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
    q "$db" "GRANT EXECUTE ON FUNCTION tenant.usage(uuid), tenant.effective_limit(uuid, text) TO pt_up_app" >/dev/null
    q "$db" "CREATE TABLE public.up_parts (tenant_id uuid, id int) PARTITION BY RANGE (id);
             CREATE TABLE public.up_parts_1 PARTITION OF public.up_parts FOR VALUES FROM (0) TO (100);
             CREATE TABLE public.up_base (tenant_id uuid, id int);
             CREATE TABLE public.up_child (note text) INHERITS (public.up_base);
             SELECT count(*) FROM (SELECT tenant.protect('public.up_parts') UNION ALL SELECT tenant.protect('public.up_base')) p;
             SELECT tenant.set('up-2');
             INSERT INTO public.up_parts (id) VALUES (1); INSERT INTO public.up_base (id) VALUES (1);
             INSERT INTO public.up_child (id) VALUES (1);" >/dev/null
    # 0.9.0's SQL has the tenant key: protect adds it to every table, partition and child.
    check_eq "$v with the $current library: protect adds the tenant key" "5" \
      "$(q "$db" "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenant\_key%' AND tgrelid::regclass::text LIKE 'up\_%'")"
  fi
  before=$(q "$db" "SELECT string_agg(id || slug || plan || status || created_at, ',' ORDER BY id) FROM tenant.tenants")
  check "ALTER EXTENSION UPDATE from $v" q "$db" "ALTER EXTENSION pg_tenant UPDATE"
  check_eq "version after update from $v" "$current" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
  check_eq "tenants kept across update from $v" "$before" \
    "$(q "$db" "SELECT string_agg(id || slug || plan || status || created_at, ',' ORDER BY id) FROM tenant.tenants")"
  check_eq "plans kept across update from $v" "free,pro" "$(q "$db" "SELECT string_agg(name, ',' ORDER BY name) FROM tenant.plans")"
  check_eq "limit overrides kept in tenant_limits on update from $v" "api_calls=1000,users=7" \
    "$(q "$db" "SELECT string_agg(l.resource || '=' || l.\"limit\", ',' ORDER BY l.resource) FROM tenant.tenant_limits l JOIN tenant.tenants t ON t.id = l.tenant_id WHERE t.slug = 'up-3'")"
  check_eq "context works after update from $v" "t" "$(q "$db" "SELECT tenant.set('up-1') IS NOT NULL")"
  if [ "$v" = "$previous" ]; then
    check_eq "grants on functions made again are kept across update from $v" "true|true" \
      "$(q "$db" "SELECT has_function_privilege('pt_up_app', 'tenant.usage(uuid)', 'EXECUTE') || '|' ||
                        has_function_privilege('pt_up_app', 'tenant.effective_limit(uuid, text)', 'EXECUTE')")"
    q "$db" "REVOKE ALL ON FUNCTION tenant.usage(uuid), tenant.effective_limit(uuid, text) FROM pt_up_app" >/dev/null
  fi
  upgraded=$(definitions "$db")
  if [ -n "$upgraded" ] && [ "$upgraded" = "$fresh" ]; then
    pass "upgraded from $v has exactly the definitions of a fresh install"
  else
    fail "upgraded from $v differs from a fresh install"
    diff <(echo "$fresh") <(echo "$upgraded") | head -n 40 | sed 's/^/    /'
  fi
  if [ "$v" = "$previous" ]; then
    check_eq "rows of a protected table kept across update from $v" "1" \
      "$(q "$db" "SELECT count(*) FROM public.up_items")"
    check "a protected table stays protected across update from $v" \
      test -z "$(q "$db" "SELECT rule FROM tenant.audit() WHERE object = 'up_items' AND severity = 'critical'")"
    check_eq "update from $v: the foreign keys of scoped tables to tenant.tenants are gone" "0" \
      "$(q "$db" "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'tenant.tenants'::regclass
                    AND conrelid::regclass::text LIKE 'up\_%'")"
    check_eq "update from $v: every scoped table has the tenant key (partitions by clone)" \
      "up_base:tenant_key:f,up_child:tenant_key:f,up_items:tenant_key:f,up_parts:tenant_key_up_parts:f,up_parts_1:tenant_key_up_parts:t" \
      "$(q "$db" "SELECT string_agg(tgrelid::regclass || ':' || tgname || ':' || clone, ',' ORDER BY tgrelid::regclass::text)
                    FROM (SELECT tgrelid, tgname, (tgparentid <> 0)::text::char AS clone FROM pg_trigger
                           WHERE tgfoid = 'tenant._tenant_key_check'::regproc) t")"
    check "update from $v: the audit finds no table without its tenant key" \
      test -z "$(q "$db" "SELECT rule FROM tenant.audit() WHERE rule = 'no_tenant_foreign_key'")"
    check_eq "update from $v: a row of an unregistered tenant is refused (23503)" "23503" \
      "$(sqlstate_of "$db" "INSERT INTO public.up_child (tenant_id, id) VALUES ('00000000-0000-0000-0000-0000000000ff', 3)")"
    q "$db" "DELETE FROM tenant.tenants WHERE slug = 'up-2'" >/dev/null
    check_eq "update from $v: deleting a tenant deletes its rows from every scoped table" "0:0:0" \
      "$(q "$db" "SELECT (SELECT count(*) FROM public.up_parts) || ':' || (SELECT count(*) FROM public.up_base) || ':' ||
                         (SELECT count(*) FROM public.up_child)")"
  fi
  dropdb "$db"
done
dropdb pt_upgrade_fresh
q postgres "DROP ROLE IF EXISTS pt_up_app" >/dev/null
