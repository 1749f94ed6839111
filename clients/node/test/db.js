'use strict';
// A throwaway database per test file in the cluster named by the PG* environment (a superuser;
// test/scripts/node_client.sh runs these tests inside pg_virtualenv): pg_tenant, an application
// role, a protected table with a row quota, plans with limits and features, and tenants.
const crypto = require('node:crypto');
const { Client, Pool, escapeIdentifier: id, escapeLiteral: lit } = require('pg');

const TENANTS = ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'];

async function createTestDatabase(label) {
  const suffix = `${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
  const db = { name: `pt_node_${label}_${suffix}`, role: `pt_node_app_${suffix}`, password: crypto.randomBytes(12).toString('hex') };
  const admin = new Client({ database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${id(db.name)}`);
    await admin.query(`CREATE ROLE ${id(db.role)} LOGIN PASSWORD ${lit(db.password)}`);
  } finally {
    await admin.end();
  }
  db.superuser = new Pool({ database: db.name, max: 2 });
  await db.superuser.query(`
    CREATE EXTENSION pg_tenant;
    GRANT EXECUTE ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.reset(),
                              tenant.meter(text, bigint), tenant.try_meter(text, bigint),
                              tenant.has_feature(text), tenant.require_feature(text), tenant.usage(uuid)
       TO ${id(db.role)};
    INSERT INTO tenant.plans (name, upgrade_url, features) VALUES
      ('small', 'https://billing.example.test/upgrade?from=small', '{"reports": false}'),
      ('big', NULL, '{"reports": true}');
    SELECT tenant.set_limit('small', 'api_calls', 3, 'minute');
    SELECT tenant.set_limit('small', 'notes', 2);
    CREATE TABLE public.notes (
      tenant_id uuid,
      id bigint GENERATED ALWAYS AS IDENTITY,
      body text NOT NULL,
      PRIMARY KEY (tenant_id, id)
    );
    SELECT tenant.protect('public.notes');
    SELECT tenant.limit_rows('public.notes', 'notes');
    GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO ${id(db.role)};
    -- A deferred unique key: a duplicate fails at COMMIT, not at the INSERT.
    CREATE TABLE public.tags (
      tenant_id uuid,
      name text NOT NULL,
      CONSTRAINT tags_unique UNIQUE (tenant_id, name) DEFERRABLE INITIALLY DEFERRED
    );
    SELECT tenant.protect('public.tags');
    GRANT SELECT, INSERT ON public.tags TO ${id(db.role)};
  `);
  db.ids = {};
  for (const slug of [...TENANTS, 'small-co', 'gone']) {
    const plan = slug === 'small-co' ? 'small' : 'big';
    const r = await db.superuser.query('SELECT tenant.create($1, $1, $2) AS id', [slug, plan]);
    db.ids[slug] = r.rows[0].id;
  }
  // Each of t1..t8 owns notes named after it: "t3 #1", "t3 #2", "t3 #3".
  await db.superuser.query(`
    INSERT INTO public.notes (tenant_id, body)
    SELECT t.id, t.slug || ' #' || n FROM tenant.tenants t, generate_series(1, 3) n WHERE t.slug ~ '^t[0-9]$'`);
  await db.superuser.query('SELECT tenant.suspend($1)', [db.ids.gone]);
  // The teardown's DROP DATABASE ... WITH (FORCE) ends any connection still open (57P01): an idle
  // pooled client reports it as a pool 'error', which without a listener is an uncaught exception
  // that fails the file after its tests passed (seen once in a suite run).
  const quiet = (pool) => pool.on('error', () => {});
  db.superuserPool = (options = {}) => quiet(new Pool({ database: db.name, ...options }));
  db.pool = (options = {}) => quiet(new Pool({ database: db.name, user: db.role, password: db.password, ...options }));
  db.drop = async () => {
    await db.superuser.end();
    const a = new Client({ database: 'postgres' });
    await a.connect();
    try {
      await a.query(`DROP DATABASE IF EXISTS ${id(db.name)} WITH (FORCE)`);
      await a.query(`DROP ROLE IF EXISTS ${id(db.role)}`);
    } finally {
      await a.end();
    }
  };
  return db;
}

/** The bodies of the notes a tenant owns, as created above. */
function notesOf(slug) {
  return [1, 2, 3].map((n) => `${slug} #${n}`);
}

module.exports = { createTestDatabase, notesOf, TENANTS };
