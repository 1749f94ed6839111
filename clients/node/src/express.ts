// Express middleware: the seed article's tenantMiddleware + checkUsageLimit, done in the database.
// Typed against node's http types only, so it works with Express 4 and 5 (and connect-style
// frameworks) without depending on them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { LimitReachedError, PgTenantError, TenantUnresolvedError, toTenantError } from './errors';
import { verifyJwt } from './jwt';
import { withTenant } from './with-tenant';

/** What the middleware puts on `req.tenant` for the rest of the request. */
export interface RequestTenant {
  /** The tenant as the resolver named it (slug or uuid). */
  readonly key: string;
  /** The tenant's id, as tenant.set returned it. */
  readonly id: string;
  /** The request's connection, inside its transaction. Do not release it. */
  readonly client: PoolClient;
  /** A query in the request's transaction, in the tenant's context. */
  query<R extends QueryResultRow = any>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
  /** tenant.meter(resource, amount): what the limit leaves (null when unlimited); LimitReachedError at the limit. */
  meter(resource: string, amount?: number): Promise<number | null>;
  /** tenant.has_feature(name). */
  hasFeature(name: string): Promise<boolean>;
  /** tenant.require_feature(name): FeatureNotEnabledError unless the tenant has it. */
  requireFeature(name: string): Promise<void>;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      tenant?: RequestTenant;
    }
  }
}

export type TenantRequest = IncomingMessage & { hostname?: string; tenant?: RequestTenant };
export type Next = (err?: unknown) => void;
export type Middleware = (req: TenantRequest, res: ServerResponse, next: Next) => void;

/** Names the request's tenant (slug or uuid), or nothing (HTTP 401). May throw TenantUnresolvedError. */
export type TenantResolver = (req: TenantRequest) => string | undefined | Promise<string | undefined>;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The tenant from a request header (default `X-Tenant`). Only for callers you trust to choose the
 * tenant (a gateway or another service that authenticated the user): anyone can send a header.
 */
export function fromHeader(name = 'x-tenant'): TenantResolver {
  return (req) => header(req, name)?.trim() || undefined;
}

/** The tenant from the first label of the host under `domain`: acme.example.com → "acme". */
export function fromSubdomain(domain: string): TenantResolver {
  const suffix = '.' + domain.toLowerCase().replace(/^\./, '');
  return (req) => {
    const host = (req.hostname ?? header(req, 'host')?.replace(/:\d+$/, '') ?? '').toLowerCase();
    if (!host.endsWith(suffix)) return undefined;
    const label = host.slice(0, -suffix.length);
    return label && !label.includes('.') ? label : undefined;
  };
}

export interface JwtResolverOptions {
  /** The HS256 secret the tokens are signed with. */
  secret: string | Buffer;
  /** The claim that names the tenant (default "tenant"). */
  claim?: string;
  /** Leeway for exp/nbf, in seconds (default 0). */
  clockToleranceSeconds?: number;
}

/** The tenant from a claim of a verified HS256 JWT in `Authorization: Bearer <token>`. */
export function fromJwt(options: JwtResolverOptions): TenantResolver {
  if (!options.secret || options.secret.length === 0) throw new TypeError('fromJwt: a secret is required');
  const claim = options.claim ?? 'tenant';
  return (req) => {
    const auth = header(req, 'authorization');
    if (!auth) return undefined;
    const m = /^Bearer +(\S+)$/i.exec(auth);
    if (!m) throw new TenantUnresolvedError('the Authorization header is not a bearer token');
    let claims;
    try {
      claims = verifyJwt(m[1], options.secret, options.clockToleranceSeconds ?? 0);
    } catch (err) {
      throw new TenantUnresolvedError((err as Error).message, err);
    }
    const value = claims[claim];
    if (typeof value !== 'string' || value === '') throw new TenantUnresolvedError(`the token has no "${claim}" claim`);
    return value;
  };
}

/** The HTTP answer for an error: typed errors get their status and body; anything else is a bare 500. */
export function httpResponseOf(err: unknown): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
  const e = toTenantError(err);
  const headers: Record<string, string> = {};
  if (!(e instanceof PgTenantError)) return { status: 500, headers, body: { error: 'internal_error' } };
  if (e instanceof LimitReachedError) {
    const retry = e.retryAfter();
    if (retry !== undefined) headers['retry-after'] = String(retry);
  }
  return { status: e.status, headers, body: e.toJSON() };
}

function send(res: ServerResponse, err: unknown, end: ServerResponse['end'] = res.end): void {
  const { status, headers, body } = httpResponseOf(err);
  const text = JSON.stringify(body);
  for (const name of ['content-type', 'content-length', 'content-encoding', 'etag', 'last-modified']) res.removeHeader(name);
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  (end as (chunk: string) => ServerResponse).call(res, text);
}

class RolledBack extends Error {}

function requestTenant(key: string, id: string, client: PoolClient): RequestTenant {
  return {
    key,
    id,
    client,
    query: (text, values) => client.query(text, values),
    async meter(resource, amount = 1) {
      const r = await client.query<{ left: string | null }>('SELECT tenant.meter($1::text, $2::bigint) AS left', [resource, amount]);
      return r.rows[0].left === null ? null : Number(r.rows[0].left);
    },
    async hasFeature(name) {
      const r = await client.query<{ on: boolean }>('SELECT tenant.has_feature($1::text) AS on', [name]);
      return r.rows[0].on;
    },
    async requireFeature(name) {
      await client.query('SELECT tenant.require_feature($1::text)', [name]);
    },
  };
}

export interface TenantMiddlewareOptions {
  pool: Pool;
  resolve: TenantResolver;
}

/**
 * Resolves the request's tenant and runs the rest of the request in one withTenant() transaction:
 * `req.tenant.query(...)` runs in it. The response is held until the transaction ends: COMMIT
 * when the status is below 400, ROLLBACK otherwise (and when the client goes away first). If
 * COMMIT fails, the client gets that error instead of the response (or, when the handler already
 * streamed the headers, a cut connection): a success is never sent for work that was not committed.
 */
export function tenantMiddleware(options: TenantMiddlewareOptions): Middleware {
  return (req, res, next) => {
    let entered = false;
    let endArgs: unknown[] | undefined;
    const originalEnd = res.end;
    Promise.resolve()
      .then(() => options.resolve(req))
      .then((key) => {
        if (!key) throw new TenantUnresolvedError('the request names no tenant');
        return withTenant(options.pool, key, (client, id) => new Promise<void>((commit, rollback) => {
          entered = true;
          res.end = function end(this: ServerResponse, ...args: unknown[]) {
            res.end = originalEnd;
            endArgs = args;
            if (res.statusCode < 400) commit();
            else rollback(new RolledBack());
            return res;
          } as ServerResponse['end'];
          res.once('close', () => { if (!endArgs) rollback(new RolledBack()); });
          req.tenant = requestTenant(key, id, client);
          next();
        }));
      })
      .then(
        () => { if (endArgs) originalEnd.apply(res, endArgs as Parameters<ServerResponse['end']>); },
        (err) => {
          if (!entered) return next(err);
          if (!endArgs) return;                      // the client went away: nothing to answer
          if (err instanceof RolledBack) originalEnd.apply(res, endArgs as Parameters<ServerResponse['end']>);
          else if (!res.headersSent) send(res, err, originalEnd);
          else res.destroy(err instanceof Error ? err : undefined);
        },
      );
  };
}

/** Counts `amount` of `resource` for the request's tenant (tenant.meter); at the limit: 429. */
export function meter(resource: string, amount = 1): Middleware {
  return (req, _res, next) => {
    if (!req.tenant) return next(new TypeError('meter() needs tenantMiddleware() before it'));
    req.tenant.meter(resource, amount).then(() => next(), next);
  };
}

/** Lets the request through only when the tenant has the feature (tenant.require_feature); else 403. */
export function requireFeature(name: string): Middleware {
  return (req, _res, next) => {
    if (!req.tenant) return next(new TypeError('requireFeature() needs tenantMiddleware() before it'));
    req.tenant.requireFeature(name).then(() => next(), next);
  };
}

/** The request's tenant; throws when tenantMiddleware() did not run (a routing bug). */
export function tenantOf(req: TenantRequest): RequestTenant {
  if (!req.tenant) throw new TypeError('no tenant on this request: mount tenantMiddleware() before this route');
  return req.tenant;
}

/**
 * Error handler: answers typed errors (and pg errors with pg_tenant SQLSTATEs) with their status
 * and a JSON body (429: resource, limit, current, period, upgradeUrl and a Retry-After header for
 * windowed limits); passes every other error on.
 */
export function tenantErrorHandler() {
  return (err: unknown, _req: TenantRequest, res: ServerResponse, next: Next): void => {
    const e = toTenantError(err);
    if (!(e instanceof PgTenantError) || res.headersSent) return next(err);
    send(res, e);
  };
}

export { signJwt, verifyJwt, InvalidTokenError } from './jwt';
