-- The example's schema, applied by a superuser (demo.sh, test/e2e.test.js); safe to run again.
--   psql -v app_password=... -v admin_password=... -f schema.sql
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pg_tenant;

-- saas_app serves requests (enters tenants, nothing more); saas_admin provisions tenants;
-- saas_owner (no login) owns the tables, so no login role bypasses their policies.
DO $$
BEGIN
    CREATE ROLE saas_app LOGIN;   EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE saas_admin LOGIN; EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE saas_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
ALTER ROLE saas_app PASSWORD :'app_password';
ALTER ROLE saas_admin PASSWORD :'admin_password';

-- Plans: starter (5 projects, no reports, an upgrade URL) and business (reports).
INSERT INTO tenant.plans (name, description, features, upgrade_url) VALUES
    ('starter', 'Starter: 5 projects', '{"reports": false}', 'https://saas.example.com/billing/upgrade'),
    ('business', 'Business: reports', '{"reports": true}', NULL)
ON CONFLICT (name) DO UPDATE SET description = excluded.description, features = excluded.features,
                                 upgrade_url = excluded.upgrade_url;
SELECT tenant.set_limit('starter', 'saas.projects', 5);
SELECT tenant.set_limit('starter', 'saas.api_calls', 1000, 'hour');
SELECT tenant.set_limit('business', 'saas.projects', 1000);
SELECT tenant.set_limit('business', 'saas.api_calls', 100000, 'hour');

CREATE SCHEMA IF NOT EXISTS saas AUTHORIZATION saas_owner;
CREATE TABLE IF NOT EXISTS saas.users (
    tenant_id  uuid,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    email      text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);
CREATE TABLE IF NOT EXISTS saas.projects (
    tenant_id  uuid,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    name       text NOT NULL,
    owner_id   bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES saas.users (tenant_id, id)   -- composite: stays in the tenant
);
ALTER TABLE saas.users OWNER TO saas_owner;
ALTER TABLE saas.projects OWNER TO saas_owner;
SELECT tenant.protect('saas.users');
SELECT tenant.protect('saas.projects');
-- An exact row quota: the 6th project of a starter tenant fails with TN006 (HTTP 429).
SELECT tenant.limit_rows('saas.projects', 'saas.projects')
 WHERE NOT EXISTS (SELECT 1 FROM tenant.row_quotas WHERE relid = 'saas.projects'::regclass);

GRANT USAGE ON SCHEMA saas TO saas_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON saas.users, saas.projects TO saas_app;
GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(),
                          tenant.meter(text, bigint), tenant.has_feature(text),
                          tenant.require_feature(text), tenant.usage(uuid) TO saas_app;
GRANT EXECUTE ON FUNCTION tenant.create(text, text, text) TO saas_admin;

-- Nothing found for the example's tables.
SELECT count(*) AS audit_findings_in_saas FROM tenant.audit() WHERE object LIKE 'saas.%';
