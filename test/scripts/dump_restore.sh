#!/usr/bin/env bash
# pg_dump of a database with tenants, restored into fresh databases (custom format through
# pg_restore, plain format through psql): every tenant and plan is there, edits included.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

src=pt_dump_src
for db in $src pt_dump_custom pt_dump_plain; do dropdb --if-exists "$db" 2>/dev/null; done
createdb $src
psql -X -q -v ON_ERROR_STOP=1 -d $src <<'SQL'
CREATE EXTENSION pg_tenant;
INSERT INTO tenant.plans (name, description, features, upgrade_url)
     VALUES ('pro', 'Pro plan', '{"sso": true}', 'https://example.com/upgrade');
-- An edit of the seeded plan must survive the restore too.
UPDATE tenant.plans SET upgrade_url = 'https://example.com/free' WHERE name = 'free';
SELECT tenant.create('Tenant ' || i, 'dump-' || i, CASE WHEN i % 2 = 0 THEN 'pro' ELSE 'free' END)
  FROM generate_series(1, 50) AS i;
UPDATE tenant.tenants SET feature_overrides = '{"beta": true}' WHERE slug = 'dump-7';
SELECT tenant.set_limit('pro', 'users', 50);
SELECT tenant.set_tenant_limit(id, 'users', 10) FROM tenant.tenants WHERE slug = 'dump-7';
SELECT tenant.suspend(id) FROM tenant.tenants WHERE slug = 'dump-9';
-- Protected tables (one partitioned), an exemption, rows of two tenants.
CREATE TABLE public.projects (tenant_id uuid NOT NULL, id bigint, name text, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.events (tenant_id uuid NOT NULL, at date NOT NULL, PRIMARY KEY (tenant_id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
DO $$ BEGIN CREATE ROLE pt_dump_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER TABLE public.projects OWNER TO pt_dump_owner;
ALTER TABLE public.events OWNER TO pt_dump_owner;
ALTER TABLE public.events_2026 OWNER TO pt_dump_owner;
SELECT count(*) FROM tenant.protect_all('public');
SELECT tenant.exempt('public.countries', 'shared reference data');
CREATE TABLE public.countries (code text PRIMARY KEY);
INSERT INTO public.projects SELECT id, 1, 'p of ' || slug FROM tenant.tenants WHERE slug IN ('dump-1', 'dump-2');
INSERT INTO public.events SELECT id, '2026-05-01' FROM tenant.tenants WHERE slug IN ('dump-1', 'dump-2');
SQL

snapshot() {
  psql -X -At -d "$1" -c "SELECT id, name, slug, plan, status, feature_overrides,
                                  created_at, updated_at FROM tenant.tenants ORDER BY id" \
                      -c "SELECT name, description, features, upgrade_url, builtin, created_at, updated_at
                            FROM tenant.plans ORDER BY name" \
                      -c "SELECT relid, tenant_column, parent FROM tenant.scoped_tables ORDER BY relid::text" \
                      -c "SELECT plan, resource, \"limit\", period FROM tenant.plan_limits ORDER BY 1, 2" \
                      -c "SELECT t.slug, l.resource, l.\"limit\" FROM tenant.tenant_limits l JOIN tenant.tenants t ON t.id = l.tenant_id ORDER BY 1, 2" \
                      -c "SELECT schema_name, table_name, reason FROM tenant.exemptions ORDER BY 1, 2" \
                      -c "SELECT polrelid::regclass, polname, polpermissive, pg_get_expr(polqual, polrelid)
                            FROM pg_policy ORDER BY 1::text, 2" \
                      -c "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
                           WHERE relname IN ('projects', 'events', 'events_2026') ORDER BY 1" \
                      -c "SELECT tgrelid::regclass, tgname, tgparentid <> 0 FROM pg_trigger
                           WHERE tgfoid = 'tenant._tenant_key_check'::regproc ORDER BY 1::text, 2" \
                      -c "SELECT count(*) FROM public.projects" -c "SELECT count(*) FROM public.events"
}
expected=$(snapshot $src)
check_eq "dump source has 50 tenants" 50 "$(q $src 'SELECT count(*) FROM tenant.tenants')"

dumpdir=$(mktemp -d)
pg_dump -Fc -f "$dumpdir/db.dump" $src
pg_dump -Fp -f "$dumpdir/db.sql" $src

createdb pt_dump_custom
psql -X -q -d pt_dump_custom -c "CREATE EXTENSION pg_tenant"  # the guard is live before the restore
check_eq "the DDL guard is on in the target" "error" "$(q pt_dump_custom 'SHOW pg_tenant.enforce')"
psql -X -q -d pt_dump_custom -c "DROP EXTENSION pg_tenant"
check "pg_restore of a custom dump succeeds" pg_restore --exit-on-error -d pt_dump_custom "$dumpdir/db.dump"
check_eq "custom restore: tenants and plans identical" "$expected" "$(snapshot pt_dump_custom)"

createdb pt_dump_plain
check "psql restore of a plain dump succeeds" \
  psql -X -q -v ON_ERROR_STOP=1 -d pt_dump_plain -f "$dumpdir/db.sql" -o /dev/null
check_eq "plain restore: tenants and plans identical" "$expected" "$(snapshot pt_dump_plain)"

check_eq "source database passes the audit" "0" "$(q $src "SELECT count(*) FROM tenant.audit()")"
check_eq "restored database passes the audit" "0" "$(q pt_dump_custom "SELECT count(*) FROM tenant.audit()")"

# The restored registry is live: context works, suspension kept.
check_eq "restored tenant can be entered" "t" \
  "$(q pt_dump_custom "SELECT tenant.set('dump-1') = (SELECT id FROM tenant.tenants WHERE slug = 'dump-1')")"
check_eq "restored suspension still refuses" "TN002" \
  "$(psql -X -At -d pt_dump_custom -c "DO \$\$ BEGIN PERFORM tenant.set('dump-9'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | sed -nE 's/.*NOTICE: +//p')"

# The restored tenant keys work: a row of an unknown tenant is refused, a deleted tenant's rows go.
check_eq "restored: a row of an unregistered tenant is refused (23503)" "23503" \
  "$(sqlstate_of pt_dump_custom "INSERT INTO public.projects VALUES ('00000000-0000-0000-0000-0000000000ee', 9, 'x')")"
q pt_dump_custom "DELETE FROM tenant.tenants WHERE slug = 'dump-1'" >/dev/null
check_eq "restored: deleting a tenant deletes its rows from the protected tables" "1 1" \
  "$(q pt_dump_custom "SELECT (SELECT count(*) FROM public.projects) || ' ' || (SELECT count(*) FROM public.events)")"

rm -rf "$dumpdir"
for db in $src pt_dump_custom pt_dump_plain; do dropdb --if-exists "$db"; done
psql -X -q -c "DROP ROLE pt_dump_owner"
