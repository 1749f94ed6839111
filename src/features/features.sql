-- Feature flags: the plan's defaults (tenant.plans.features) overridden by the tenant's own
-- (tenant.tenants.feature_overrides), read with the cached tenant record.

CREATE FUNCTION tenant.has_feature(name text) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_has_feature';
COMMENT ON FUNCTION tenant.has_feature(text) IS
    'true when the current tenant''s plan features, overridden by its own, map name to true';
CREATE FUNCTION tenant.require_feature(name text) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_require_feature';
COMMENT ON FUNCTION tenant.require_feature(text) IS 'TN007 unless the current tenant has the feature';

REVOKE ALL ON FUNCTION tenant.has_feature(text), tenant.require_feature(text) FROM PUBLIC;
