'use strict';
// The benchmark's server: one Express app, one read endpoint (a tenant's projects) behind three
// ways of entering the tenant, each with its own pool of the same size:
//   /client/projects   pg-tenant's tenantMiddleware: BEGIN + tenant.set($1) in one round trip
//   /twotrips/projects the same with BEGIN and tenant.set($1) awaited one after the other
//   /seed/projects     the seed article's middleware: look the tenant up, check its status, then
//                      an interpolated SET LOCAL (its flaws kept on purpose: this is the baseline)
// The tenant id comes in the X-Tenant header. PG* from the environment; BENCH_PASSWORD is the
// password of the role bench_app; PORT is where to listen on 127.0.0.1.
const express = require('express');
const { Pool } = require('pg');
const { tenantMiddleware, fromHeader, tenantOf } = require('pg-tenant/express');

const READ = 'SELECT id, name FROM projects ORDER BY id';
const poolOf = () => new Pool({ user: 'bench_app', password: process.env.BENCH_PASSWORD, max: 8 });
const app = express();

const clientPool = poolOf();
app.get('/client/projects', tenantMiddleware({ pool: clientPool, resolve: fromHeader() }), async (req, res) => {
  res.json((await tenantOf(req).query(READ)).rows);
});

const twoTripsPool = poolOf();
app.get('/twotrips/projects', async (req, res, next) => {
  const client = await twoTripsPool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT tenant.set($1::text)', [req.get('x-tenant')]);
    const { rows } = await client.query(READ);
    await client.query('COMMIT');
    res.json(rows);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    next(err);
  } finally {
    client.release();
  }
});

// The seed's tenantMiddleware + handler, made to work (it needs a transaction for SET LOCAL and
// one client for the whole request), its interpolation kept.
const seedPool = poolOf();
app.get('/seed/projects', async (req, res, next) => {
  const client = await seedPool.connect();
  try {
    await client.query('BEGIN');
    const { rows: [tenant] } = await client.query('SELECT id, status FROM tenant.tenants WHERE id = $1', [req.get('x-tenant')]);
    if (!tenant || tenant.status !== 'active') {
      await client.query('ROLLBACK');
      return void res.status(403).json({ error: 'Tenant not found or inactive' });
    }
    await client.query(`SET LOCAL pg_tenant.tenant_id = '${tenant.id}'`);
    const { rows } = await client.query(READ);
    await client.query('COMMIT');
    res.json(rows);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    next(err);
  } finally {
    client.release();
  }
});

const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
process.once('SIGTERM', () => server.close(() => Promise.all([clientPool, twoTripsPool, seedPool].map((p) => p.end())).then(() => process.exit(0))));
