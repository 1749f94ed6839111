// A small multi-tenant API on pg_tenant: the tenant comes from a verified JWT, every /api request
// runs in one transaction inside that tenant, Row-Level Security keeps tenants apart, limits and
// features are checked by the database and mapped to HTTP by the client's error handler.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Pool } from 'pg';
import { withTenant } from 'pg-tenant';
import {
  fromJwt, meter, requireFeature, signJwt, tenantErrorHandler, tenantMiddleware, tenantOf,
} from 'pg-tenant/express';

export interface AppOptions {
  /** Pool of the application role (saas_app): enters tenants, reads and writes their rows. */
  pool: Pool;
  /** Pool of the provisioning role (saas_admin): may call tenant.create(). */
  adminPool: Pool;
  /** HS256 secret of the tokens. */
  jwtSecret: string;
}

class BadRequest extends Error {}

function text(value: unknown, field: string, max = 200): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) throw new BadRequest(`${field} is required (at most ${max} characters)`);
  return value.trim();
}

export function createApp({ pool, adminPool, jwtSecret }: AppOptions) {
  const app = express();
  app.use(express.json());

  app.get('/health', (_req, res) => { res.json({ ok: true }); });

  // Sign-up: a new tenant on the starter plan and its first user; returns a token for the user.
  // tenant.create runs as saas_admin; the first user is inserted inside the new tenant.
  app.post('/tenants', async (req, res) => {
    const name = text(req.body?.name, 'name');
    const slug = text(req.body?.slug, 'slug', 63);
    const email = text(req.body?.email, 'email');
    const { rows: [{ id }] } = await adminPool.query<{ id: string }>("SELECT tenant.create($1, $2, 'starter') AS id", [name, slug]);
    const user = await withTenant(pool, id, async (c) =>
      (await c.query('INSERT INTO saas.users (email, name) VALUES ($1, $2) RETURNING id', [email, name])).rows[0]);
    const token = signJwt({ sub: String(user.id), tenant: id, exp: Math.floor(Date.now() / 1000) + 3600 }, jwtSecret);
    res.status(201).json({ id, slug, token });
  });

  // Everything under /api: tenant from the token's "tenant" claim, one transaction per request,
  // one API call metered per request (429 past the plan's hourly limit).
  const api = express.Router();
  api.use(tenantMiddleware({ pool, resolve: fromJwt({ secret: jwtSecret, claim: 'tenant' }) }));
  api.use(meter('saas.api_calls'));

  api.get('/users', async (req, res) => {
    const { rows } = await tenantOf(req).query('SELECT id, email, name FROM saas.users ORDER BY id');
    res.json(rows);
  });

  api.post('/users', async (req, res) => {
    const { rows: [user] } = await tenantOf(req).query(
      'INSERT INTO saas.users (email, name) VALUES ($1, $2) RETURNING id, email, name',
      [text(req.body?.email, 'email'), text(req.body?.name, 'name')]);
    res.status(201).json(user);
  });

  api.get('/projects', async (req, res) => {
    const { rows } = await tenantOf(req).query('SELECT id, name, owner_id FROM saas.projects ORDER BY id');
    res.json(rows);
  });

  api.get('/projects/:id', async (req, res) => {
    const { rows } = await tenantOf(req).query('SELECT id, name, owner_id FROM saas.projects WHERE id = $1', [req.params.id]);
    if (rows.length === 0) return void res.status(404).json({ error: 'not_found' });
    res.json(rows[0]);
  });

  // The row quota (tenant.limit_rows) refuses the project past the plan's limit: TN006 → 429.
  api.post('/projects', async (req, res) => {
    const { rows: [project] } = await tenantOf(req).query(
      'INSERT INTO saas.projects (name, owner_id) VALUES ($1, $2) RETURNING id, name, owner_id',
      [text(req.body?.name, 'name'), req.body?.owner_id ?? null]);
    res.status(201).json(project);
  });

  api.get('/usage', async (req, res) => {
    const { rows } = await tenantOf(req).query('SELECT resource, used, "limit", period, kind FROM tenant.usage() ORDER BY resource');
    res.json(rows);
  });

  // Premium: only for plans (or tenants) with the "reports" feature; else TN007 → 403.
  api.get('/reports/projects', requireFeature('reports'), async (req, res) => {
    const { rows: [report] } = await tenantOf(req).query(
      `SELECT count(*)::int AS projects, count(DISTINCT owner_id)::int AS owners,
              min(created_at) AS first_project FROM saas.projects`);
    res.json(report);
  });

  app.use('/api', api);
  app.use(tenantErrorHandler());
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof BadRequest) return void res.status(400).json({ error: 'bad_request', message: err.message });
    const code = (err as { code?: string }).code;
    if (code === '23505') return void res.status(409).json({ error: 'conflict' });
    if (code === '23503' || code === '22P02' || code === '22023') return void res.status(400).json({ error: 'bad_request' });
    if ((err as { type?: string }).type === 'entity.parse.failed') return void res.status(400).json({ error: 'bad_request' });
    console.error(err);
    res.status(500).json({ error: 'internal_error' });
  });
  return app;
}
