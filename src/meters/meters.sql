-------------------------------------------------------------------------------------------------
-- Meters (shared memory or Redis, C++)
-------------------------------------------------------------------------------------------------

-- Counters written by the background worker (pg_tenant.database) every pg_tenant.flush_interval
-- and at clean shutdown, loaded at start. Rows of windows that have ended stay as history.
CREATE TABLE tenant.meter_counts (
    tenant_id     uuid NOT NULL,
    resource      text NOT NULL,
    window_start  timestamptz NOT NULL,
    period        text NOT NULL,
    used          bigint NOT NULL,
    flushed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, resource, window_start)
);
COMMENT ON TABLE tenant.meter_counts IS 'meter counters as last flushed by the pg_tenant background worker';
SELECT pg_catalog.pg_extension_config_dump('tenant.meter_counts', '');
REVOKE ALL ON tenant.meter_counts FROM PUBLIC;

CREATE FUNCTION tenant.meter(resource text, amount bigint DEFAULT 1) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_meter';
COMMENT ON FUNCTION tenant.meter(text, bigint) IS
    'counts amount of resource for the current tenant; returns what the limit leaves (NULL: unlimited); TN006 at the limit';
CREATE FUNCTION tenant.try_meter(resource text, amount bigint DEFAULT 1) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_try_meter';
COMMENT ON FUNCTION tenant.try_meter(text, bigint) IS
    'like tenant.meter, but returns false instead of raising at the limit';
CREATE FUNCTION tenant._meter_usage(tenant uuid)
    RETURNS TABLE (resource text, window_start timestamptz, used bigint)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_meter_usage';

-- The shared meter table now (every database): for DBAs sizing pg_tenant.max_meters.
CREATE FUNCTION tenant.meter_info(OUT entries bigint, OUT capacity integer, OUT tenant_share integer,
                                  OUT tenants bigint) RETURNS record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_meter_info';
COMMENT ON FUNCTION tenant.meter_info() IS
    'the shared meter table: entries in use, capacity (pg_tenant.max_meters), a tenant''s share (pg_tenant.max_meters_per_tenant), tenants holding entries';

REVOKE ALL ON FUNCTION tenant.meter(text, bigint), tenant.try_meter(text, bigint), tenant._meter_usage(uuid),
    tenant.meter_info() FROM PUBLIC;

-- For tenant.purge(): forgets the tenant's meters, its shared memory entries when the
-- transaction commits and its Redis keys now.
CREATE FUNCTION tenant._forget_meters(tenant uuid) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_forget_meters';
REVOKE ALL ON FUNCTION tenant._forget_meters(uuid) FROM PUBLIC;
