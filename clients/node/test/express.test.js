'use strict';
// The Express middleware over real HTTP on 127.0.0.1 against a real PostgreSQL with pg_tenant.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const {
  tenantMiddleware, fromHeader, fromSubdomain, fromJwt, meter, requireFeature, tenantErrorHandler,
  tenantOf, signJwt,
} = require('pg-tenant/express');
const { createTestDatabase, notesOf, TENANTS } = require('./db');

const SECRET = 'test-secret-' + process.pid;
let db;
let pool;
let server;
let port;

function routes(app) {
  app.get('/whoami', async (req, res) => {
    const t = tenantOf(req);
    const r = await t.query('SELECT tenant.current_id() AS id, array(SELECT body FROM notes ORDER BY id) AS bodies');
    res.json({ key: t.key, id: t.id, current: r.rows[0].id, bodies: r.rows[0].bodies });
  });
  app.post('/notes', async (req, res) => {
    await tenantOf(req).query('INSERT INTO notes (body) VALUES ($1)', [req.query.body]);
    if (req.query.fail) return res.status(422).json({ error: 'refused after the insert' });
    if (req.query.wait) await new Promise((r) => setTimeout(r, Number(req.query.wait)));
    res.status(201).json({ ok: true });
  });
  app.post('/tags', async (req, res) => {   // deferred unique key: a duplicate fails at COMMIT
    await tenantOf(req).query('INSERT INTO tags (name) VALUES ($1), ($1)', [req.query.name]);
    res.status(201).json({ created: req.query.name });
  });
  app.get('/metered', meter('api_calls'), (req, res) => res.json({ ok: true }));
  app.get('/reports', requireFeature('reports'), (req, res) => res.json({ report: 'premium' }));
}

before(async () => {
  db = await createTestDatabase('ex');
  pool = db.pool({ max: 4 });
  const app = express();
  app.get('/no-tenant-meter', async (req, res) => {   // outside tenantMiddleware: TN008
    await pool.query("SELECT tenant.meter('api_calls')");
    res.json({ unreachable: true });
  });
  for (const [prefix, resolve] of [
    ['/h', fromHeader()],
    ['/s', fromSubdomain('example.test')],
    ['/j', fromJwt({ secret: SECRET, claim: 'tenant' })],
  ]) {
    const r = express.Router();
    r.use(tenantMiddleware({ pool, resolve }));
    routes(r);
    app.use(prefix, r);
  }
  app.use(tenantErrorHandler());
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = server.address().port;
});

after(async () => {
  server.closeAllConnections?.();
  await new Promise((r) => server.close(r));
  await pool.end();
  await db.drop();
});

/** One HTTP request on loopback: { status, headers, body (parsed JSON when it is JSON) }. */
function request(method, path, headers = {}, { abortAfterMs } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let body = text;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    if (abortAfterMs) setTimeout(() => { req.destroy(); resolve({ aborted: true }); }, abortAfterMs);
    req.end();
  });
}

const bearer = (claims) => ({ authorization: 'Bearer ' + signJwt(claims, SECRET) });

async function notesSeenBy(slug) {
  const r = await db.superuser.query('SELECT array(SELECT body FROM notes WHERE tenant_id = $1 ORDER BY id) AS b', [db.ids[slug]]);
  return r.rows[0].b;
}

async function poolSettles() {
  for (let i = 0; i < 50 && pool.idleCount !== pool.totalCount; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(pool.idleCount, pool.totalCount, 'every client is back in the pool');
}

test('header resolver: X-Tenant enters the tenant; the handler sees its id and only its rows', async () => {
  const r = await request('GET', '/h/whoami', { 'x-tenant': 't1' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { key: 't1', id: db.ids.t1, current: db.ids.t1, bodies: notesOf('t1') });
});

test('no tenant named: 401 with a JSON body', async () => {
  const r = await request('GET', '/h/whoami');
  assert.equal(r.status, 401);
  assert.equal(r.body.error, 'tenant_unresolved');
});

test('subdomain resolver: acme-style host label; a bare or deeper host is 401', async () => {
  const ok = await request('GET', '/s/whoami', { host: `t2.example.test:${port}` });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.current, db.ids.t2);
  assert.equal((await request('GET', '/s/whoami', { host: 'example.test' })).status, 401);
  assert.equal((await request('GET', '/s/whoami', { host: 'a.t2.example.test' })).status, 401);
  assert.equal((await request('GET', '/s/whoami', { host: 't2.example.test.evil.test' })).status, 401);
});

test('JWT resolver: a signed token enters the tenant of its claim', async () => {
  const r = await request('GET', '/j/whoami', bearer({ sub: 'u1', tenant: 't3', exp: Math.floor(Date.now() / 1000) + 60 }));
  assert.equal(r.status, 200);
  assert.equal(r.body.current, db.ids.t3);
  assert.deepEqual(r.body.bodies, notesOf('t3'));
});

test('JWT resolver refuses forged, unsigned, expired and claimless tokens with 401', async () => {
  const forged = signJwt({ tenant: 't3' }, 'another-secret');
  const [h, p] = signJwt({ tenant: 't3' }, SECRET).split('.');
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url') + '.' + p + '.';
  const tampered = `${h}.${Buffer.from(JSON.stringify({ tenant: 't4' })).toString('base64url')}.${signJwt({ tenant: 't3' }, SECRET).split('.')[2]}`;
  const cases = {
    forged: { authorization: 'Bearer ' + forged },
    'alg none': { authorization: 'Bearer ' + none },
    tampered: { authorization: 'Bearer ' + tampered },
    expired: bearer({ tenant: 't3', exp: Math.floor(Date.now() / 1000) - 10 }),
    'not yet valid': bearer({ tenant: 't3', nbf: Math.floor(Date.now() / 1000) + 600 }),
    'no claim': bearer({ sub: 'u1' }),
    'not bearer': { authorization: 'Basic dTpw' },
    missing: {},
  };
  for (const [name, headers] of Object.entries(cases)) {
    const r = await request('GET', '/j/whoami', headers);
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error, 'tenant_unresolved', name);
  }
});

test('TN001 → 404 and TN002 → 403 through the middleware', async () => {
  const unknown = await request('GET', '/j/whoami', bearer({ tenant: 'nobody' }));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error, 'tenant_not_found');
  const suspended = await request('GET', '/h/whoami', { 'x-tenant': 'gone' });
  assert.equal(suspended.status, 403);
  assert.equal(suspended.body.error, 'tenant_suspended');
  await poolSettles();
});

test('a 2xx response is sent only after COMMIT: the row is there when the client reads the response', async () => {
  const r = await request('POST', '/h/notes?body=t4%20via%20http', { 'x-tenant': 't4' });
  assert.equal(r.status, 201);
  assert.ok((await notesSeenBy('t4')).includes('t4 via http'));
});

test('a 4xx response rolls the request back', async () => {
  const r = await request('POST', '/h/notes?body=t4%20refused&fail=1', { 'x-tenant': 't4' });
  assert.equal(r.status, 422);
  assert.ok(!(await notesSeenBy('t4')).includes('t4 refused'));
});

test('a failed COMMIT replaces the success: the client gets the error, not 201', async () => {
  const r = await request('POST', '/h/tags?name=dup', { 'x-tenant': 't5' });
  assert.equal(r.status, 500);
  assert.deepEqual(r.body, { error: 'internal_error' });
  const n = await db.superuser.query('SELECT count(*)::int AS n FROM tags');
  assert.equal(n.rows[0].n, 0);
  await poolSettles();
});

test('a client that goes away mid-request: rolled back, connection back in the pool', async () => {
  const r = await request('POST', '/h/notes?body=t6%20abandoned&wait=300', { 'x-tenant': 't6' }, { abortAfterMs: 50 });
  assert.equal(r.aborted, true);
  await new Promise((res) => setTimeout(res, 400));
  await poolSettles();
  assert.ok(!(await notesSeenBy('t6')).includes('t6 abandoned'));
});

test('meter(): the 4th call on a 3-per-minute plan is 429 with limit, current, upgradeUrl and Retry-After', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await request('GET', '/h/metered', { 'x-tenant': 'small-co' })).status, 200);
  const r = await request('GET', '/h/metered', { 'x-tenant': 'small-co' });
  assert.equal(r.status, 429);
  assert.equal(r.body.error, 'limit_reached');
  assert.equal(r.body.resource, 'api_calls');
  assert.equal(r.body.limit, 3);
  assert.equal(r.body.current, 3);
  assert.equal(r.body.period, 'minute');
  assert.equal(r.body.upgradeUrl, 'https://billing.example.test/upgrade?from=small');
  const retry = Number(r.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 60);
  // another tenant is not affected
  assert.equal((await request('GET', '/h/metered', { 'x-tenant': 't1' })).status, 200);
});

test('requireFeature(): 403 without the feature, 200 with it', async () => {
  const without = await request('GET', '/h/reports', { 'x-tenant': 'small-co' });
  assert.equal(without.status, 403);
  assert.equal(without.body.error, 'feature_not_enabled');
  assert.equal(without.body.feature, 'reports');
  const withIt = await request('GET', '/h/reports', { 'x-tenant': 't1' });
  assert.equal(withIt.status, 200);
  assert.deepEqual(withIt.body, { report: 'premium' });
});

test('TN008 outside the middleware: 500 with no server text', async () => {
  const r = await request('GET', '/no-tenant-meter');
  assert.equal(r.status, 500);
  assert.deepEqual(r.body, { error: 'no_tenant_context', code: 'TN008' });
});

test('200 concurrent requests over 8 tenants (header and JWT): each sees only its tenant', async () => {
  const expected = {};
  for (const slug of TENANTS) expected[slug] = await notesSeenBy(slug);
  const jobs = [];
  for (let i = 0; i < 200; i++) {
    const slug = TENANTS[(i * 3 + (i >> 2)) % TENANTS.length];
    const viaJwt = i % 2 === 1;
    jobs.push(request('GET', viaJwt ? '/j/whoami' : '/h/whoami', viaJwt ? bearer({ tenant: slug }) : { 'x-tenant': slug })
      .then((r) => ({ slug, r })));
  }
  for (const { slug, r } of await Promise.all(jobs)) {
    assert.equal(r.status, 200);
    assert.equal(r.body.current, db.ids[slug]);
    assert.deepEqual(r.body.bodies, expected[slug]);
  }
  await poolSettles();
});
