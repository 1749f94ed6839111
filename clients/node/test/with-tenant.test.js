'use strict';
// withTenant() and the typed errors against a real PostgreSQL with pg_tenant.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  withTenant, currentTenantId, TenantNestingError, TransactionAbortedError, PgTenantError,
  TenantNotFoundError, TenantSuspendedError, LimitReachedError, FeatureNotEnabledError,
  NoTenantContextError, RedisUnavailableError, toTenantError,
} = require('pg-tenant');
const { createTestDatabase, notesOf, TENANTS } = require('./db');

let db;
let pool;

before(async () => {
  db = await createTestDatabase('wt');
  pool = db.pool({ max: 5 });
});

after(async () => {
  await pool.end();
  await db.drop();
});

async function seen(client) {
  const r = await client.query('SELECT tenant.current_id() AS id, array(SELECT body FROM notes ORDER BY id) AS bodies');
  return r.rows[0];
}

function assertPoolIdle(p) {
  assert.equal(p.idleCount, p.totalCount, 'every client is back in the pool');
  assert.equal(p.waitingCount, 0);
}

test('enters a tenant by slug: current_id() is its id and only its rows are visible', async () => {
  const row = await withTenant(pool, 't1', (client) => seen(client));
  assert.equal(row.id, db.ids.t1);
  assert.deepEqual(row.bodies, notesOf('t1'));
  assertPoolIdle(pool);
});

test('enters a tenant by id, and passes the id to fn', async () => {
  const [row, given] = await withTenant(pool, db.ids.t2, async (client, id) => [await seen(client), id]);
  assert.equal(row.id, db.ids.t2);
  assert.equal(given, db.ids.t2);
  assert.deepEqual(row.bodies, notesOf('t2'));
});

test('the tenant is a bind parameter: SQL in the tenant string is never executed', async () => {
  const evil = "t1'); DROP TABLE notes; --";
  await assert.rejects(withTenant(pool, evil, () => 'unreachable'), (err) => err.code !== undefined);
  const r = await db.superuser.query("SELECT to_regclass('public.notes') IS NOT NULL AS still_there");
  assert.equal(r.rows[0].still_there, true);
  assertPoolIdle(pool);
});

test('commits when fn resolves', async () => {
  await withTenant(pool, 't3', (c) => c.query("INSERT INTO notes (body) VALUES ('t3 committed')"));
  const bodies = await withTenant(pool, 't3', async (c) => (await seen(c)).bodies);
  assert.ok(bodies.includes('t3 committed'));
  await withTenant(pool, 't3', (c) => c.query("DELETE FROM notes WHERE body = 't3 committed'"));
});

test('rolls back when fn throws, rethrows the same error and releases the client', async () => {
  const boom = new Error('boom');
  await assert.rejects(withTenant(pool, 't3', async (c) => {
    await c.query("INSERT INTO notes (body) VALUES ('t3 rolled back')");
    throw boom;
  }), (err) => err === boom);
  const bodies = await withTenant(pool, 't3', async (c) => (await seen(c)).bodies);
  assert.ok(!bodies.includes('t3 rolled back'));
  assertPoolIdle(pool);
});

test('the context never outlives the transaction: the same connection afterwards has no tenant and sees no rows', async () => {
  const one = db.pool({ max: 1 });
  try {
    const pid = await withTenant(one, 't4', async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const r = await one.query('SELECT pg_backend_pid() AS pid, tenant.current_id() AS id, count(*)::int AS n FROM notes');
    assert.equal(r.rows[0].pid, pid, 'same server connection');
    assert.equal(r.rows[0].id, null);
    assert.equal(r.rows[0].n, 0);
  } finally {
    await one.end();
  }
});

test('entering costs one round trip: BEGIN and tenant.set travel together (3 for enter + 1 query + COMMIT)', async () => {
  const one = db.pool({ max: 1 });
  let readyForQuery = 0;
  one.on('connect', (client) => client.connection.on('readyForQuery', () => { readyForQuery += 1; }));
  try {
    await one.query('SELECT 1');                     // connect (and its first ReadyForQuery) outside the count
    readyForQuery = 0;
    await withTenant(one, 't1', (c) => c.query('SELECT count(*) FROM notes'));
    assert.equal(readyForQuery, 3);
  } finally {
    await one.end();
  }
});

test('TN001: an unknown tenant is TenantNotFoundError (404); the client is released', async () => {
  await assert.rejects(withTenant(pool, 'no-such-tenant', () => 'unreachable'), (err) => {
    assert.ok(err instanceof TenantNotFoundError);
    assert.ok(err instanceof PgTenantError);
    assert.equal(err.code, 'TN001');
    assert.equal(err.status, 404);
    assert.equal(err.cause.code, 'TN001');
    return true;
  });
  assertPoolIdle(pool);
});

test('TN002: a suspended tenant is TenantSuspendedError (403)', async () => {
  await assert.rejects(withTenant(pool, 'gone', () => 'unreachable'), (err) => {
    assert.ok(err instanceof TenantSuspendedError);
    assert.equal(err.status, 403);
    return true;
  });
  assertPoolIdle(pool);
});

test('TN006 (meter): LimitReachedError (429) with limit, current, period and the upgrade URL', async () => {
  const left = await withTenant(pool, 'small-co', async (c) => {
    const out = [];
    for (let i = 0; i < 3; i++) out.push((await c.query("SELECT tenant.meter('api_calls') AS left")).rows[0].left);
    return out;
  });
  assert.deepEqual(left, ['2', '1', '0']);
  await assert.rejects(withTenant(pool, 'small-co', (c) => c.query("SELECT tenant.meter('api_calls')")), (err) => {
    assert.ok(err instanceof LimitReachedError);
    assert.equal(err.status, 429);
    assert.equal(err.resource, 'api_calls');
    assert.equal(err.limit, 3);
    assert.equal(err.current, 3);
    assert.equal(err.period, 'minute');
    assert.equal(err.upgradeUrl, 'https://billing.example.test/upgrade?from=small');
    const retry = err.retryAfter();
    assert.ok(retry >= 1 && retry <= 60, `retry after ${retry} s`);
    assert.deepEqual(err.toJSON(), {
      error: 'limit_reached', code: 'TN006', message: err.message, resource: 'api_calls',
      limit: 3, current: 3, period: 'minute', upgradeUrl: 'https://billing.example.test/upgrade?from=small',
    });
    return true;
  });
});

test('TN006 (row quota): the third note on a 2-note plan is refused, no period, nothing kept', async () => {
  await withTenant(pool, 'small-co', (c) => c.query("INSERT INTO notes (body) VALUES ('a'), ('b')"));
  await assert.rejects(withTenant(pool, 'small-co', (c) => c.query("INSERT INTO notes (body) VALUES ('c')")), (err) => {
    assert.ok(err instanceof LimitReachedError);
    assert.equal(err.resource, 'notes');
    assert.equal(err.limit, 2);
    assert.equal(err.current, 3);
    assert.equal(err.period, undefined);
    assert.equal(err.retryAfter(), undefined);
    return true;
  });
  const n = await withTenant(pool, 'small-co', async (c) => (await c.query('SELECT count(*)::int AS n FROM notes')).rows[0].n);
  assert.equal(n, 2);
});

test('TN007: FeatureNotEnabledError (403) names the feature; a tenant with it passes', async () => {
  await assert.rejects(withTenant(pool, 'small-co', (c) => c.query("SELECT tenant.require_feature('reports')")), (err) => {
    assert.ok(err instanceof FeatureNotEnabledError);
    assert.equal(err.status, 403);
    assert.equal(err.feature, 'reports');
    return true;
  });
  await withTenant(pool, 't1', (c) => c.query("SELECT tenant.require_feature('reports')"));
});

test('TN008: a meter without a tenant maps to NoTenantContextError (500, no server text in the body)', async () => {
  const err = await pool.query("SELECT tenant.meter('api_calls')").then(() => null, (e) => e);
  const typed = toTenantError(err);
  assert.ok(typed instanceof NoTenantContextError);
  assert.equal(typed.status, 500);
  assert.deepEqual(typed.toJSON(), { error: 'no_tenant_context', code: 'TN008' });
});

test('TN009: an unreachable Redis meter backend is RedisUnavailableError (503)', async () => {
  // A superuser pool with the Redis backend pointed at a closed loopback port.
  const redisPool = db.superuserPool({
    options: '-c pg_tenant.meter_backend=redis -c pg_tenant.redis_url=redis://127.0.0.1:1 -c pg_tenant.redis_failure=closed',
  });
  try {
    await assert.rejects(withTenant(redisPool, 'small-co', (c) => c.query("SELECT tenant.meter('api_calls')")), (err) => {
      assert.ok(err instanceof RedisUnavailableError, String(err));
      assert.equal(err.status, 503);
      return true;
    });
  } finally {
    await redisPool.end();
  }
});

test('other pg_tenant SQLSTATEs fall back to PgTenantError (500); other errors pass unchanged', async () => {
  const tn003 = await db.superuser.query("SELECT tenant.create('X', 'x-co', 'no-such-plan')").then(() => null, (e) => e);
  const typed = toTenantError(tn003);
  assert.equal(typed.constructor, PgTenantError);
  assert.equal(typed.code, 'TN003');
  assert.equal(typed.status, 500);
  await assert.rejects(withTenant(pool, 't1', (c) => c.query('SELECT * FROM no_such_table')), (err) => {
    assert.ok(!(err instanceof PgTenantError));
    assert.equal(err.code, '42P01');
    return true;
  });
  assertPoolIdle(pool);
});

test('an SQL error caught inside fn cannot be committed: TransactionAbortedError, nothing kept', async () => {
  await assert.rejects(withTenant(pool, 't5', async (c) => {
    await c.query("INSERT INTO notes (body) VALUES ('t5 lost')");
    await c.query('SELECT 1/0').catch(() => {});    // swallowed: the transaction is aborted
  }), TransactionAbortedError);
  const bodies = await withTenant(pool, 't5', async (c) => (await seen(c)).bodies);
  assert.deepEqual(bodies, notesOf('t5'));
  assertPoolIdle(pool);
});

test('nested withTenant for the same tenant joins the outer transaction (same client, rolled back with it)', async () => {
  const boom = new Error('outer fails');
  await assert.rejects(withTenant(pool, 't6', async (outer) => {
    const innerClient = await withTenant(pool, 't6', async (inner) => {
      await inner.query("INSERT INTO notes (body) VALUES ('t6 nested')");
      return inner;
    });
    assert.equal(innerClient, outer);
    // by id as well as by slug
    assert.equal(await withTenant(pool, db.ids.t6, (inner) => inner), outer);
    assert.equal(currentTenantId(), db.ids.t6);
    throw boom;
  }), (err) => err === boom);
  const bodies = await withTenant(pool, 't6', async (c) => (await seen(c)).bodies);
  assert.deepEqual(bodies, notesOf('t6'));
  assert.equal(currentTenantId(), undefined);
});

test('nested withTenant on a pool of one connection does not deadlock', async () => {
  const one = db.pool({ max: 1 });
  try {
    const id = await withTenant(one, 't7', () => withTenant(one, 't7', async (c) => (await seen(c)).id));
    assert.equal(id, db.ids.t7);
  } finally {
    await one.end();
  }
});

test('nested withTenant for another tenant is refused with TenantNestingError; the outer goes on', async () => {
  const row = await withTenant(pool, 't1', async (c) => {
    await assert.rejects(withTenant(pool, 't2', () => 'unreachable'), TenantNestingError);
    return seen(c);
  });
  assert.equal(row.id, db.ids.t1);
  assertPoolIdle(pool);
});

test('a withTenant started after the outer one ended is a transaction of its own', async () => {
  let later;
  await withTenant(pool, 't1', () => { later = new Promise((r) => setTimeout(r, 20)).then(() => withTenant(pool, 't2', (c) => seen(c))); });
  const row = await later;
  assert.equal(row.id, db.ids.t2);
});

test('400 concurrent calls switching among 8 tenants on a pool of 5 never mix tenants', async () => {
  const calls = [];
  for (let i = 0; i < 400; i++) {
    const slug = TENANTS[(i * 5 + (i >> 3)) % TENANTS.length];
    calls.push(withTenant(pool, slug, async (c) => {
      const before = await seen(c);
      await c.query('SELECT pg_sleep($1)', [(i % 4) / 1000]);   // let the others interleave
      const afterwards = await seen(c);
      return { slug, before, afterwards };
    }));
  }
  const results = await Promise.all(calls);
  let checked = 0;
  for (const { slug, before, afterwards } of results) {
    for (const row of [before, afterwards]) {
      assert.equal(row.id, db.ids[slug]);
      assert.deepEqual(row.bodies, notesOf(slug));
      checked += 1;
    }
  }
  assert.equal(checked, 800);
  assertPoolIdle(pool);
  assert.ok(pool.totalCount <= 5);
});

test('rejects an empty or non-string tenant before taking a connection', async () => {
  await assert.rejects(withTenant(pool, '', () => 1), TypeError);
  await assert.rejects(withTenant(pool, undefined, () => 1), TypeError);
  assertPoolIdle(pool);
});
