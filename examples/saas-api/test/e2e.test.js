'use strict';
// End to end: the built server (dist/server.js) as a child process on 127.0.0.1, a throwaway
// database with schema.sql in the cluster of the PG* environment (a superuser), requests over HTTP.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const { Client, Pool, escapeIdentifier } = require('pg');
const { signJwt } = require('pg-tenant/express');

const root = path.join(__dirname, '..');
const suffix = `${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
const database = `pt_saas_${suffix}`;
const secret = crypto.randomBytes(24).toString('hex');
const appPassword = crypto.randomBytes(12).toString('hex');
const adminPassword = crypto.randomBytes(12).toString('hex');
const acme = `acme-${suffix.replace('_', '-')}`;
const globex = `globex-${suffix.replace('_', '-')}`;

let server;
let port;
let superuser;
const tokens = {};
const ids = {};

async function admin(sql) {
  const c = new Client({ database: 'postgres' });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

before(async () => {
  await admin(`CREATE DATABASE ${escapeIdentifier(database)}`);
  execFileSync('psql', ['-X', '-q', '-d', database, '-v', `app_password=${appPassword}`, '-v', `admin_password=${adminPassword}`,
    '-f', path.join(root, 'schema.sql')], { stdio: ['ignore', 'ignore', 'inherit'] });
  superuser = new Pool({ database, max: 1 });
  server = spawn(process.execPath, [path.join(root, 'dist/server.js')], {
    env: { ...process.env, PGDATABASE: database, SAAS_APP_PASSWORD: appPassword, SAAS_ADMIN_PASSWORD: adminPassword,
           JWT_SECRET: secret, HOST: '127.0.0.1', PORT: process.env.SAAS_API_TEST_PORT || '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  await superuser?.end();
  await admin(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
  await admin('DROP ROLE IF EXISTS saas_app, saas_admin, saas_owner');
});

function request(method, url, { token, body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (data) { h['content-type'] = 'application/json'; h['content-length'] = Buffer.byteLength(data); }
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers: h, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('health answers on loopback', async () => {
  const r = await request('GET', '/health');
  assert.equal(r.status, 200);
});

test('sign-up creates two tenants (starter plan) with their first user and a token', async () => {
  for (const slug of [acme, globex]) {
    const r = await request('POST', '/tenants', { body: { name: slug, slug, email: `owner@${slug}.test` } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.slug, slug);
    tokens[slug] = r.body.token;
    ids[slug] = r.body.id;
  }
  const taken = await request('POST', '/tenants', { body: { name: 'again', slug: acme, email: 'x@y.test' } });
  assert.equal(taken.status, 409);
  const bad = await request('POST', '/tenants', { body: { name: 'Bad', slug: 'Not A Slug', email: 'x@y.test' } });
  assert.equal(bad.status, 400);
});

test('requests without a valid token are 401', async () => {
  assert.equal((await request('GET', '/api/projects')).status, 401);
  const forged = signJwt({ tenant: ids[acme] }, 'not-the-secret');
  assert.equal((await request('GET', '/api/projects', { token: forged })).status, 401);
});

test('two tenants never see each other\'s projects or users', async () => {
  const made = {};
  for (const slug of [acme, globex]) {
    made[slug] = [];
    for (const name of ['alpha', 'beta']) {
      const r = await request('POST', '/api/projects', { token: tokens[slug], body: { name: `${slug} ${name}` } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      made[slug].push(r.body.id);
    }
  }
  for (const [me, other] of [[acme, globex], [globex, acme]]) {
    const list = await request('GET', '/api/projects', { token: tokens[me] });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((p) => p.name), [`${me} alpha`, `${me} beta`]);
    for (const id of made[other]) {
      assert.equal((await request('GET', `/api/projects/${id}`, { token: tokens[me] })).status, 404, 'another tenant\'s project is not found');
    }
    const users = await request('GET', '/api/users', { token: tokens[me] });
    assert.deepEqual(users.body.map((u) => u.email), [`owner@${me}.test`]);
  }
});

test('a project cannot name another tenant\'s user as its owner', async () => {
  const theirs = (await request('GET', '/api/users', { token: tokens[globex] })).body[0].id;
  const r = await request('POST', '/api/projects', { token: tokens[acme], body: { name: 'stolen owner', owner_id: theirs } });
  assert.equal(r.status, 400);
});

test('the 6th project on the 5-project starter plan is 429 with limit, current and the upgrade URL', async () => {
  for (const name of ['gamma', 'delta', 'epsilon']) {
    assert.equal((await request('POST', '/api/projects', { token: tokens[acme], body: { name } })).status, 201);
  }
  const r = await request('POST', '/api/projects', { token: tokens[acme], body: { name: 'zeta' } });
  assert.equal(r.status, 429);
  assert.equal(r.body.error, 'limit_reached');
  assert.equal(r.body.resource, 'saas.projects');
  assert.equal(r.body.limit, 5);
  assert.equal(r.body.current, 6);
  assert.equal(r.body.upgradeUrl, 'https://saas.example.com/billing/upgrade');
  const list = await request('GET', '/api/projects', { token: tokens[acme] });
  assert.equal(list.body.length, 5, 'the refused project was not kept');
});

test('a suspended tenant is 403; resumed, it is served again', async () => {
  await superuser.query('SELECT tenant.suspend($1)', [ids[globex]]);
  const r = await request('GET', '/api/projects', { token: tokens[globex] });
  assert.equal(r.status, 403);
  assert.equal(r.body.error, 'tenant_suspended');
  await superuser.query('SELECT tenant.resume($1)', [ids[globex]]);
  assert.equal((await request('GET', '/api/projects', { token: tokens[globex] })).status, 200);
});

test('the premium route is 403 without the "reports" feature and 200 with it', async () => {
  const without = await request('GET', '/api/reports/projects', { token: tokens[acme] });
  assert.equal(without.status, 403);
  assert.equal(without.body.error, 'feature_not_enabled');
  assert.equal(without.body.feature, 'reports');
  await superuser.query(`UPDATE tenant.tenants SET feature_overrides = '{"reports": true}' WHERE id = $1`, [ids[acme]]);
  const withIt = await request('GET', '/api/reports/projects', { token: tokens[acme] });
  assert.equal(withIt.status, 200);
  assert.equal(withIt.body.projects, 5);
  assert.equal((await request('GET', '/api/reports/projects', { token: tokens[globex] })).status, 403, 'only the tenant with the override');
});

test('every /api request is metered with tenant.meter and shows in tenant.usage()', async () => {
  const before = (await request('GET', '/api/usage', { token: tokens[globex] })).body.find((u) => u.resource === 'saas.api_calls');
  await request('GET', '/api/projects', { token: tokens[globex] });
  await request('GET', '/api/projects', { token: tokens[globex] });
  const afterwards = (await request('GET', '/api/usage', { token: tokens[globex] })).body.find((u) => u.resource === 'saas.api_calls');
  assert.equal(Number(afterwards.used) - Number(before.used), 3, 'two reads and the usage call itself');
  assert.equal(afterwards.kind, 'meter');
  assert.equal(Number(afterwards.limit), 1000);
});

test('tenant.audit() finds nothing in the example\'s schema', async () => {
  const r = await superuser.query("SELECT object, rule FROM tenant.audit() WHERE object LIKE 'saas.%'");
  assert.deepEqual(r.rows, []);
});
