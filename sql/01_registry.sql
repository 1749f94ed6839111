-- Tenant registry: tables, tenant.create, slug rule, updated_at, bad input with SQLSTATEs.

-- The seeded plan.
SELECT name, builtin, features FROM tenant.plans ORDER BY name;

SELECT tenant.create('Acme Corp', 'acme') IS NOT NULL AS created;
SELECT tenant.create(name => 'Beta', slug => 'beta', plan => 'free') IS NOT NULL AS created;
SELECT name, slug, plan, status, feature_overrides, created_at = updated_at AS fresh
  FROM tenant.tenants ORDER BY slug;

-- Slug rule: DNS labels only, never uuid-shaped.
SELECT s AS slug, tenant.is_valid_slug(s) AS valid
  FROM unnest(ARRAY['a', 'acme-2', '0day', repeat('a', 63), repeat('a', 64), '', '-acme', 'acme-',
                    'Acme', 'ac_me', 'ac me', 'acmé', 'a.b',
                    '6f9619ff-8b86-d011-b42d-00cf4fc964ff']) AS s;

-- Bad input: each error has its SQLSTATE.
SELECT error_of($$SELECT tenant.create(NULL, 'x')$$);
SELECT error_of($$SELECT tenant.create('X', NULL)$$);
SELECT error_of($$SELECT tenant.create('X', 'x', NULL)$$);
SELECT error_of($$SELECT tenant.create('   ', 'x')$$);
SELECT error_of($$SELECT tenant.create('X', 'Bad_Slug')$$);
SELECT error_of($$SELECT tenant.create('X', '6f9619ff-8b86-d011-b42d-00cf4fc964ff')$$);
SELECT error_of($$SELECT tenant.create('Acme again', 'acme')$$);
SELECT error_of($$SELECT tenant.create('Gold', 'gold', 'gold')$$);
-- The table's own constraints hold for direct writes too.
SELECT error_of($$INSERT INTO tenant.tenants (name, slug) VALUES ('X', 'UPPER')$$);
SELECT error_of($$INSERT INTO tenant.tenants (name, slug, plan) VALUES ('X', 'x', 'nope')$$);
SELECT error_of($$INSERT INTO tenant.tenants (name, slug, status) VALUES ('X', 'x', 'deleted')$$);
SELECT error_of($$INSERT INTO tenant.tenants (name, slug, feature_overrides) VALUES ('X', 'x', '[]')$$);
SELECT error_of($$INSERT INTO tenant.plans (name) VALUES ('Not A Plan')$$);
-- None of the failed calls left a row behind.
SELECT count(*) AS tenants FROM tenant.tenants;

-- updated_at follows every update.
UPDATE tenant.tenants SET updated_at = '2000-01-01', created_at = '2000-01-01' WHERE slug = 'beta';
SELECT updated_at > '2001-01-01' AS touched FROM tenant.tenants WHERE slug = 'beta';
UPDATE tenant.tenants SET name = 'Beta Inc' WHERE slug = 'beta';
SELECT updated_at > created_at AS touched FROM tenant.tenants WHERE slug = 'beta';

-- suspend / resume
SELECT id AS beta FROM tenant.tenants WHERE slug = 'beta' \gset
SELECT tenant.suspend(:'beta');
SELECT status FROM tenant.tenants WHERE slug = 'beta';
SELECT tenant.resume(:'beta');
SELECT status FROM tenant.tenants WHERE slug = 'beta';
SELECT error_of($$SELECT tenant.suspend('00000000-0000-0000-0000-000000000000')$$);
SELECT error_of($$SELECT tenant.suspend(NULL)$$);

-- A plan change is ON UPDATE CASCADE; an edited seed plan stops being builtin.
INSERT INTO tenant.plans (name, upgrade_url) VALUES ('pro', 'https://example.com/upgrade');
UPDATE tenant.tenants SET plan = 'pro' WHERE slug = 'beta';
UPDATE tenant.plans SET upgrade_url = 'https://example.com/free' WHERE name = 'free';
SELECT name, builtin, upgrade_url FROM tenant.plans ORDER BY name;
SELECT error_of($$DELETE FROM tenant.plans WHERE name = 'pro'$$);
