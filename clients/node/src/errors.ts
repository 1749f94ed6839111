// Typed errors for pg_tenant's SQLSTATEs (README, "SQLSTATEs"), each with the HTTP status an API
// should answer. Framework-neutral: the Express error handler uses them, and so can any other.

/** The fields of a PostgreSQL error that the mapping reads (pg's DatabaseError has them all). */
export interface PgErrorFields {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

export interface TenantErrorOptions {
  code: string;
  status: number;
  detail?: string;
  hint?: string;
  cause?: unknown;
}

/** Base class: every error this package raises or maps. `code` is the SQLSTATE (or a client code). */
export class PgTenantError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail?: string;
  readonly hint?: string;

  constructor(message: string, options: TenantErrorOptions) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.status = options.status;
    this.detail = options.detail;
    this.hint = options.hint;
  }

  /** A short machine-readable name for response bodies. */
  get error(): string {
    return 'tenant_error';
  }

  /** The HTTP response body. 5xx bodies carry no server text (it may name hosts or settings). */
  toJSON(): Record<string, unknown> {
    if (this.status >= 500) return { error: this.error, code: this.code };
    return { error: this.error, code: this.code, message: this.message };
  }
}

/** TN001: the tenant does not exist. */
export class TenantNotFoundError extends PgTenantError {
  get error() { return 'tenant_not_found'; }
}

/** TN002: the tenant is suspended. */
export class TenantSuspendedError extends PgTenantError {
  get error() { return 'tenant_suspended'; }
}

/** TN006: a row quota or a meter would pass its limit. */
export class LimitReachedError extends PgTenantError {
  readonly resource?: string;
  readonly limit?: number;
  readonly current?: number;
  readonly period?: string;
  readonly upgradeUrl?: string;

  constructor(message: string, options: TenantErrorOptions) {
    super(message, options);
    // DETAIL: "resource R: limit N, current M[, period P]"; HINT: "Upgrade your plan: URL".
    const d = /^resource (.+): limit (\d+), current (\d+)(?:, period (\w+))?$/.exec(options.detail ?? '');
    if (d) {
      this.resource = d[1];
      this.limit = Number(d[2]);
      this.current = Number(d[3]);
      this.period = d[4];
    }
    const h = /^Upgrade your plan: (.+)$/.exec(options.hint ?? '');
    if (h) this.upgradeUrl = h[1].trim();
  }

  get error() { return 'limit_reached'; }

  /** Seconds until the limit's calendar window (UTC) ends; undefined for a limit without a period. */
  retryAfter(now: Date = new Date()): number | undefined {
    const next = new Date(now.getTime());
    switch (this.period) {
      case 'second': next.setUTCMilliseconds(1000); break;
      case 'minute': next.setUTCSeconds(60, 0); break;
      case 'hour': next.setUTCMinutes(60, 0, 0); break;
      case 'day': next.setUTCHours(24, 0, 0, 0); break;
      case 'month': next.setUTCMonth(next.getUTCMonth() + 1, 1); next.setUTCHours(0, 0, 0, 0); break;
      default: return undefined;
    }
    return Math.max(1, Math.ceil((next.getTime() - now.getTime()) / 1000));
  }

  toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      resource: this.resource,
      limit: this.limit,
      current: this.current,
      period: this.period,
      upgradeUrl: this.upgradeUrl,
    };
  }
}

/** TN007: the tenant's plan does not include the feature. */
export class FeatureNotEnabledError extends PgTenantError {
  readonly feature?: string;

  constructor(message: string, options: TenantErrorOptions) {
    super(message, options);
    this.feature = /^feature "(.*)" is not enabled/.exec(message)?.[1];
  }

  get error() { return 'feature_not_enabled'; }

  toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), feature: this.feature };
  }
}

/** TN008: a tenant-scoped call ran without a tenant (a bug in the application). */
export class NoTenantContextError extends PgTenantError {
  get error() { return 'no_tenant_context'; }
}

/** TN009: the Redis meter backend is unavailable (pg_tenant.redis_failure = closed). */
export class RedisUnavailableError extends PgTenantError {
  get error() { return 'usage_service_unavailable'; }
}

/** The request names no tenant, or its token is missing or invalid (HTTP 401). Raised by resolvers. */
export class TenantUnresolvedError extends PgTenantError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'TENANT_UNRESOLVED', status: 401, cause });
  }

  get error() { return 'tenant_unresolved'; }
}

type ErrorClass = new (message: string, options: TenantErrorOptions) => PgTenantError;

const bySqlstate: Record<string, [ErrorClass, number]> = {
  TN001: [TenantNotFoundError, 404],
  TN002: [TenantSuspendedError, 403],
  TN006: [LimitReachedError, 429],
  TN007: [FeatureNotEnabledError, 403],
  TN008: [NoTenantContextError, 500],
  TN009: [RedisUnavailableError, 503],
};

/**
 * The typed error for a pg_tenant SQLSTATE (any `TN...` code; unlisted ones become a plain
 * PgTenantError with status 500), or the error itself unchanged when it is not one.
 */
export function toTenantError(err: unknown): unknown {
  if (err instanceof PgTenantError || typeof err !== 'object' || err === null) return err;
  const e = err as PgErrorFields;
  if (typeof e.code !== 'string' || !e.code.startsWith('TN')) return err;
  const [Class, status] = bySqlstate[e.code] ?? [PgTenantError, 500];
  return new Class(e.message, { code: e.code, status, detail: e.detail, hint: e.hint, cause: err });
}

export function isTenantError(err: unknown): err is PgTenantError {
  return err instanceof PgTenantError;
}
