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

-- 0.9.0: with an idempotency key (1 to 64 bytes) per event. A repeat of (tenant, resource, key)
-- within pg_tenant.idempotency_horizon counts nothing and gets the first call's answer (TN006
-- again if it was refused); with another amount it is 22023. Shared memory keeps at most
-- pg_tenant.max_idempotency_keys keys; Redis keeps each for the horizon (one script per call).
CREATE FUNCTION tenant.meter(resource text, amount bigint, idempotency_key text) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_meter';
COMMENT ON FUNCTION tenant.meter(text, bigint, text) IS
    'tenant.meter, once per idempotency key: a repeat within pg_tenant.idempotency_horizon counts nothing and returns the same answer';
CREATE FUNCTION tenant.try_meter(resource text, amount bigint, idempotency_key text) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_try_meter';
COMMENT ON FUNCTION tenant.try_meter(text, bigint, text) IS
    'tenant.try_meter, once per idempotency key';
REVOKE ALL ON FUNCTION tenant.meter(text, bigint, text), tenant.try_meter(text, bigint, text) FROM PUBLIC;

-- For tenant.purge(): forgets the tenant's meters, its shared memory entries when the
-- transaction commits and its Redis keys now.
CREATE FUNCTION tenant._forget_meters(tenant uuid) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_forget_meters';
REVOKE ALL ON FUNCTION tenant._forget_meters(uuid) FROM PUBLIC;

-------------------------------------------------------------------------------------------------
-- Usage alerts (0.9.0)
-------------------------------------------------------------------------------------------------

-- The outbox of alert levels crossed (tenant.set_limit's alert_levels): one row per tenant,
-- resource, window and level, written by the meter flusher (pg_tenant.database) within
-- pg_tenant.flush_interval of the crossing call, in a transaction of its own. A billing or
-- notification job reads the rows (and deletes those it handled); NOTIFY pg_tenant_usage
-- carries the same fields as JSON. Period 'none' has one window, starting 2000-01-01.
CREATE TABLE tenant.usage_alerts (
    tenant_id     uuid NOT NULL,
    resource      text NOT NULL,
    window_start  timestamptz NOT NULL,
    period        text NOT NULL,
    level         integer NOT NULL,
    used          bigint NOT NULL,
    "limit"       bigint NOT NULL,
    enforcement   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, resource, window_start, level)
);
COMMENT ON TABLE tenant.usage_alerts IS 'alert levels crossed by meters, once per tenant, resource, window and level (the outbox of NOTIFY pg_tenant_usage)';
SELECT pg_catalog.pg_extension_config_dump('tenant.usage_alerts', '');
REVOKE ALL ON tenant.usage_alerts FROM PUBLIC;

-- Writes one alert unless it is there (the primary key: a second writer waits for the first and
-- then does nothing), and NOTIFYs only the one it wrote. Called by the worker and, when its queue
-- is full, by the crossing call as the extension owner.
CREATE FUNCTION tenant._usage_alert(tenant uuid, resource text, window_start timestamptz, period text,
                                    level integer, used bigint, "limit" bigint, enforcement text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    -- A tenant purged since its call crossed the level: nothing of it is written again.
    IF NOT EXISTS (SELECT 1 FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) $1) THEN
        RETURN false;
    END IF;
    INSERT INTO tenant.usage_alerts AS a (tenant_id, resource, window_start, period, level, used, "limit", enforcement)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT ON CONSTRAINT usage_alerts_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.pg_notify('pg_tenant_usage', pg_catalog.json_build_object(
        'tenant', $1, 'resource', $2, 'window_start', $3, 'period', $4, 'level', $5,
        'used', $6, 'limit', $7, 'enforcement', $8)::text);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION tenant._usage_alert(uuid, text, timestamptz, text, integer, bigint, bigint, text) FROM PUBLIC;

-------------------------------------------------------------------------------------------------
-- Export of closed windows (0.9.0)
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant._meters_flushed_until() RETURNS timestamptz
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_meters_flushed_until';

-- Meter windows that ended after `since` and whose count is final in tenant.meter_counts (the
-- worker saved them after they ended), oldest first. A billing sync calls it with the greatest
-- window_end it has seen: every window ending up to then was in that call's answer. Windows of
-- period 'none' never close. Only the shared-memory backend fills tenant.meter_counts.
CREATE FUNCTION tenant.closed_windows(since timestamptz DEFAULT '-infinity')
    RETURNS TABLE (tenant_id uuid, resource text, period text, window_start timestamptz,
                   window_end timestamptz, used bigint)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
SELECT c.tenant_id, c.resource, c.period, c.window_start, tenant.window_end(c.period, c.window_start), c.used
  FROM tenant.meter_counts c
 WHERE c.period OPERATOR(pg_catalog.<>) 'none'
   AND tenant.window_end(c.period, c.window_start) OPERATOR(pg_catalog.>) COALESCE($1, '-infinity')
   AND tenant.window_end(c.period, c.window_start) OPERATOR(pg_catalog.<=) tenant._meters_flushed_until()
 ORDER BY 5, 1, 2
$$;
COMMENT ON FUNCTION tenant.closed_windows(timestamptz) IS
    'meter windows that ended after since with their final count (tenant, resource, period, window start and end, used): the export for a billing sync';
REVOKE ALL ON FUNCTION tenant._meters_flushed_until(), tenant.closed_windows(timestamptz) FROM PUBLIC;
