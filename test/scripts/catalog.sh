#!/usr/bin/env bash
# The catalog (src/catalog/catalog.cpp): pg_tenant's OIDs are cached per backend and must never
# go stale. In one session each (the cache lives as long as the backend):
#  - DROP EXTENSION pg_tenant CASCADE; CREATE EXTENSION pg_tenant: tenant.set, protect (the
#    protection reader's tenant.current_id), a quota insert (tenant.row_counts), the tenant key
#    (tenant.tenants, its owner) and the audit use the new objects;
#  - ALTER TABLE tenant.tenants OWNER TO another role, then to a third: the tenant key's check
#    runs as the new owner at once (as the old one, no longer privileged, it would be refused);
#  - a database where the library is loaded but the extension not created: nothing is scoped, and
#    once CREATE EXTENSION and protect ran in the same session, the table is (TN008 in strict mode).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_catalog
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP ROLE IF EXISTS pt_catalog_r1;
DROP ROLE IF EXISTS pt_catalog_r2;
CREATE ROLE pt_catalog_r1;
CREATE ROLE pt_catalog_r2;
CREATE TABLE public.items (tenant_id uuid NOT NULL, id int);
SQL

# One session: each line prints "label|result", result "ok", a value, or "SQLSTATE message".
out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d $db 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE sql; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ' ' || SQLERRM; END $$;
CREATE FUNCTION pg_temp.setup(round int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tenant.create('Catalog', 'cat-a');
  INSERT INTO tenant.plans (name) VALUES ('cat-plan') ON CONFLICT DO NOTHING;
  PERFORM tenant.protect('public.items');
  PERFORM tenant.limit_rows('public.items', 'items');
  RETURN 'ok';
END $$;
CREATE EXTENSION pg_tenant;
SELECT 'setup 1', pg_temp.setup(1);
-- The first owner the tenant key's check runs as is not a superuser: a stale one would be refused.
SELECT 'owner r1', pg_temp.try('ALTER TABLE tenant.tenants OWNER TO pt_catalog_r1');
SELECT 'insert as r1', pg_temp.try($$SELECT tenant.set('cat-a'); INSERT INTO public.items (id) VALUES (1)$$);
SELECT 'count 1', (SELECT sum(rows) FROM tenant.row_counts);
SELECT 'owner r2', pg_temp.try('ALTER TABLE tenant.tenants OWNER TO pt_catalog_r2');
SELECT 'insert as r2', pg_temp.try($$SELECT tenant.set('cat-a'); INSERT INTO public.items (id) VALUES (3)$$);
SELECT 'owner back', pg_temp.try('ALTER TABLE tenant.tenants OWNER TO CURRENT_USER');
SELECT 'drop', pg_temp.try('DROP EXTENSION pg_tenant CASCADE');
SELECT 'set without', pg_temp.try($$SELECT tenant.set('cat-a')$$);
TRUNCATE public.items;  -- rows of the tenant gone with the old registry
CREATE EXTENSION pg_tenant;
SELECT 'setup 2', pg_temp.setup(2);
SELECT 'insert 2', pg_temp.try($$SELECT tenant.set('cat-a'); INSERT INTO public.items (id) VALUES (4)$$);
SELECT 'count 2', (SELECT sum(rows) FROM tenant.row_counts);
SELECT 'unregistered', pg_temp.try($$INSERT INTO public.items VALUES ('00000000-0000-0000-0000-0000000000ee', 5)$$);
SELECT 'protection', isolation_policy || ' ' || guard_policy || ' ' || has_tenant_key FROM tenant._protection('public.items', 'tenant_id');
SELECT 'audit', count(*) FROM tenant.audit() WHERE object = 'public.items' AND severity = 'critical';
SELECT 'erase', pg_temp.try($$DELETE FROM tenant.tenants WHERE slug = 'cat-a'$$);
SELECT 'rows left', count(*) FROM public.items;
SQL
)
val() { sed -n "s/^$1|//p" <<<"$out" | head -n 1; }
check_eq "catalog: first install works" "ok" "$(val 'setup 1')"
check_eq "catalog: tenant.tenants owned by another role" "ok" "$(val 'owner r1')"
check_eq "catalog: the tenant key runs as the registry's owner, a quota insert counts" "ok" "$(val 'insert as r1')"
check_eq "catalog: the count" "1" "$(val 'count 1')"
check_eq "catalog: owner changed again" "ok" "$(val 'owner r2')"
check_eq "catalog: the tenant key sees the new owner in the same session" "ok" "$(val 'insert as r2')"
check_eq "catalog: DROP EXTENSION" "ok" "$(val 'drop')"
check "catalog: without the extension there is no tenant.set" grep -q '^set without|3F000' <<<"$out"
check_eq "catalog: after CREATE EXTENSION again, tenant.create, protect and limit_rows" "ok" "$(val 'setup 2')"
check_eq "catalog: a quota insert into the new tables" "ok" "$(val 'insert 2')"
check_eq "catalog: the new row_counts counted it" "1" "$(val 'count 2')"
check "catalog: the tenant key reads the new registry (23503)" grep -q '^unregistered|23503' <<<"$out"
check_eq "catalog: the protection reader knows the new tenant.current_id" "current current true" "$(val 'protection')"
check_eq "catalog: the audit finds nothing critical" "0" "$(val 'audit')"
check_eq "catalog: deleting the tenant" "ok" "$(val 'erase')"
check_eq "catalog: the erase reached the table" "0" "$(val 'rows left')"
[ -n "$(val 'rows left')" ] || echo "$out"

# A database without the extension (the library is preloaded): nothing is scoped; in the same
# session, CREATE EXTENSION and protect make the table scoped.
dropdb --if-exists $db 2>/dev/null
createdb $db
out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d $db 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE sql; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
CREATE TABLE public.items (tenant_id uuid NOT NULL, id int);
DROP ROLE IF EXISTS pt_catalog_app;
CREATE ROLE pt_catalog_app;
GRANT SELECT ON public.items TO pt_catalog_app;
SET pg_tenant.missing_context = error;
SET ROLE pt_catalog_app;
SELECT 'before', pg_temp.try('SELECT * FROM public.items');
RESET ROLE;
CREATE EXTENSION pg_tenant;
SELECT 'protect', pg_temp.try($$SELECT tenant.protect('public.items')$$);
SET ROLE pt_catalog_app;
SELECT 'after', pg_temp.try('SELECT * FROM public.items');
RESET ROLE;
SQL
)
check_eq "catalog: no extension, nothing is scoped" "ok" "$(val before)"
check_eq "catalog: CREATE EXTENSION and protect in the same session" "ok" "$(val protect)"
check_eq "catalog: the table is scoped at once (TN008)" "TN008" "$(val after)"

dropdb --if-exists $db 2>/dev/null
for role in pt_catalog_r1 pt_catalog_r2 pt_catalog_app; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1; done
