export { withTenant, currentTenantId, TenantNestingError, TransactionAbortedError } from './with-tenant';
export {
  PgTenantError,
  TenantNotFoundError,
  TenantSuspendedError,
  LimitReachedError,
  FeatureNotEnabledError,
  NoTenantContextError,
  RedisUnavailableError,
  TenantUnresolvedError,
  toTenantError,
  isTenantError,
} from './errors';
export type { PgErrorFields, TenantErrorOptions } from './errors';
