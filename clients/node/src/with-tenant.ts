import { AsyncLocalStorage } from 'node:async_hooks';
import type { Connection, Pool, PoolClient, Submittable } from 'pg';
import { toTenantError } from './errors';

/** The open tenant transaction of the current async context (see withTenant's nesting rule). */
interface Scope {
  pool: Pool;
  tenant: string;
  id: string;
  client: PoolClient;
  open: boolean;
}

const scopes = new AsyncLocalStorage<Scope>();

/** A nested withTenant() asked for another tenant than the transaction it runs in. */
export class TenantNestingError extends Error {
  constructor(outer: string, inner: string) {
    super(`withTenant("${inner}") called inside withTenant("${outer}") on the same pool: ` +
          'a transaction has one tenant; run the other tenant\'s work after this one, or on another pool');
    this.name = 'TenantNestingError';
  }
}

/** COMMIT answered ROLLBACK: an SQL error inside the transaction was caught and not rethrown. */
export class TransactionAbortedError extends Error {
  constructor() {
    super('the tenant transaction was aborted by an earlier error (caught inside fn?); nothing was committed');
    this.name = 'TransactionAbortedError';
  }
}

/**
 * BEGIN and `SELECT tenant.set($1::text)` in one round trip: both statements go out as
 * extended-protocol messages (the tenant as a bind parameter, never in the SQL text) followed by a
 * single Sync, so the server answers both at once. Unnamed statements only, so it also works
 * behind a transaction-pooling pgbouncer. Resolves to the tenant's id.
 */
class EnterTenant implements Submittable {
  private id: string | null = null;
  private failed = false;

  constructor(private readonly tenant: string,
              private readonly callback: (err: Error | null, id?: string) => void) {}

  submit(connection: Connection): void {
    const c = connection as Connection & { stream: { cork?: () => void; uncork?: () => void } };
    c.stream.cork?.();
    try {
      c.parse({ name: '', text: 'BEGIN', types: [] }, false);
      c.bind({ values: [] }, false);
      c.execute({}, false);
      c.parse({ name: '', text: 'SELECT tenant.set($1::text)', types: [] }, false);
      c.bind({ values: [this.tenant] }, false);
      c.execute({}, false);
      c.sync();
    } finally {
      c.stream.uncork?.();
    }
  }

  handleDataRow(msg: { fields: (string | null)[] }): void { this.id = msg.fields[0]; }
  handleError(err: Error): void {
    // pg forgets the query after an error; ReadyForQuery then goes to the next one.
    this.failed = true;
    this.callback(err);
  }
  handleReadyForQuery(): void {
    if (this.failed) return;
    if (this.id) this.callback(null, this.id);
    else this.callback(new Error('tenant.set returned no tenant id'));
  }
  handleRowDescription(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

function enter(client: PoolClient, tenant: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.query(new EnterTenant(tenant, (err, id) => (err ? reject(err) : resolve(id as string))));
  });
}

/**
 * Returns the client to the pool, or destroys it when `err` is not an error the server answered
 * with (a broken socket, a timeout): such a connection is in an unknown state.
 */
function release(client: PoolClient, err?: unknown): void {
  const answered = typeof err === 'object' && err !== null && 'severity' in err;
  client.release(err === undefined || answered ? undefined : true);
}

/** Ends the transaction with ROLLBACK and releases the client (destroyed if ROLLBACK fails). */
async function rollbackAndRelease(client: PoolClient): Promise<void> {
  try {
    await client.query('ROLLBACK');
  } catch {
    client.release(true);
    return;
  }
  client.release();
}

/**
 * Runs `fn` in one transaction of `pool` with the tenant entered (`tenant.set`, by id or slug):
 * COMMIT when `fn` resolves, ROLLBACK when it throws; the client is always released. The context
 * is transaction-local, so a released client never carries a tenant.
 *
 * Nesting: inside `fn`, a withTenant() on the same pool for the same tenant (as given, or its id)
 * joins the running transaction (no second connection, so a full pool cannot deadlock on itself);
 * for another tenant it throws TenantNestingError. Errors with pg_tenant SQLSTATEs are rethrown as
 * the typed errors of this package (original in `cause`).
 */
export async function withTenant<T>(
  pool: Pool,
  tenant: string,
  fn: (client: PoolClient, tenantId: string) => Promise<T> | T,
): Promise<T> {
  if (typeof tenant !== 'string' || tenant === '') throw new TypeError('withTenant: tenant must be a non-empty string (a uuid or a slug)');

  const outer = scopes.getStore();
  if (outer?.open && outer.pool === pool) {
    if (tenant !== outer.tenant && tenant.toLowerCase() !== outer.id) throw new TenantNestingError(outer.tenant, tenant);
    try {
      return await fn(outer.client, outer.id);
    } catch (err) {
      throw toTenantError(err);
    }
  }

  const client = await pool.connect();
  let id: string;
  try {
    id = await enter(client, tenant);
  } catch (err) {
    await rollbackAndRelease(client);
    throw toTenantError(err);
  }

  const scope: Scope = { pool, tenant, id, client, open: true };
  let result: T;
  try {
    result = await scopes.run(scope, () => fn(client, id));
  } catch (err) {
    scope.open = false;
    await rollbackAndRelease(client);
    throw toTenantError(err);
  }
  scope.open = false;

  try {
    const done = await client.query('COMMIT');
    if (done.command !== 'COMMIT') throw new TransactionAbortedError();
  } catch (err) {
    release(client, err instanceof TransactionAbortedError ? undefined : err);
    throw toTenantError(err);
  }
  release(client);
  return result;
}

/** The tenant id of the withTenant() transaction this code runs in, or undefined. */
export function currentTenantId(): string | undefined {
  const scope = scopes.getStore();
  return scope?.open ? scope.id : undefined;
}
