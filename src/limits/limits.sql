-- Limits. A limit is (resource, limit, period, enforcement, alert levels): per plan in tenant.plan_limits, per tenant in
-- tenant.tenant_limits (an override). No limit = unlimited; limit 0 = not allowed.
-- tenant.effective_limit() says which one applies. A hard limit refuses what would pass it; a
-- soft one (0.9.0) lets it through and the overage shows in tenant.usage(). Alert levels
-- (0.9.0, percents of the limit) make the meters write tenant.usage_alerts (src/meters). Every limit error is TN006 (limit_reached),
-- raised in C++ (src/limits/limits.cpp) for quotas and meters alike. The rules of a resource
-- name and of a period are C++ too (src/limits/window.cpp), called by the CHECK constraints.

-------------------------------------------------------------------------------------------------
-- Limits
-------------------------------------------------------------------------------------------------

-- 1 to 63 of a-z, 0-9, '_', '.', '-'.
CREATE FUNCTION tenant.is_valid_resource(resource text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_is_valid_resource';
COMMENT ON FUNCTION tenant.is_valid_resource(text) IS 'true when resource is a valid resource name: 1 to 63 of a-z, 0-9, _, . and -';
-- second, minute, hour, day, month or none.
CREATE FUNCTION tenant.is_valid_period(period text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_is_valid_period';
COMMENT ON FUNCTION tenant.is_valid_period(text) IS 'true when period is second, minute, hour, day, month or none';
-- 0.9.0: when the window of a period starting at window_start ends (NULL for none: never).
CREATE FUNCTION tenant.window_end(period text, window_start timestamptz) RETURNS timestamptz
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_window_end';
COMMENT ON FUNCTION tenant.window_end(text, timestamptz) IS 'when a meter window of period starting at window_start ends (UTC boundaries; NULL for period none)';
-- Alert levels (0.9.0): percents of the limit, at most 8, each 1 to 1000 (a soft limit may be
-- passed), no NULL.
CREATE FUNCTION tenant.is_valid_alert_levels(levels integer[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT pg_catalog.cardinality($1) OPERATOR(pg_catalog.<=) 8
       AND pg_catalog.array_position($1, NULL) IS NULL
       AND 1 OPERATOR(pg_catalog.<=) ALL ($1) AND 1000 OPERATOR(pg_catalog.>=) ALL ($1)
$$;
COMMENT ON FUNCTION tenant.is_valid_alert_levels(integer[]) IS 'true when levels are at most 8 percents of a limit, each 1 to 1000';
--#include limits/objects/_is_valid_enforcement/0.11.0.sql

CREATE TABLE tenant.plan_limits (
    plan      text NOT NULL
              REFERENCES tenant.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    resource  text NOT NULL
              CONSTRAINT plan_limits_resource_format CHECK (tenant.is_valid_resource(resource)),
    "limit"   bigint NOT NULL
              CONSTRAINT plan_limits_limit_not_negative CHECK ("limit" OPERATOR(pg_catalog.>=) 0),
    period    text NOT NULL DEFAULT 'none'
              CONSTRAINT plan_limits_period_known CHECK (tenant.is_valid_period(period)),
    enforcement   text NOT NULL DEFAULT 'hard'
              CONSTRAINT plan_limits_enforcement_known CHECK (tenant._is_valid_enforcement(enforcement)),
    alert_levels  integer[] NOT NULL DEFAULT '{}'
              CONSTRAINT plan_limits_alert_levels_valid CHECK (tenant.is_valid_alert_levels(alert_levels)),
    PRIMARY KEY (plan, resource)
);
COMMENT ON TABLE tenant.plan_limits IS 'Per-plan limits: no row = unlimited, 0 = not allowed';

CREATE TABLE tenant.tenant_limits (
    tenant_id uuid NOT NULL
              REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    resource  text NOT NULL
              CONSTRAINT tenant_limits_resource_format CHECK (tenant.is_valid_resource(resource)),
    "limit"   bigint NOT NULL
              CONSTRAINT tenant_limits_limit_not_negative CHECK ("limit" OPERATOR(pg_catalog.>=) 0),
    period    text NOT NULL DEFAULT 'none'
              CONSTRAINT tenant_limits_period_known CHECK (tenant.is_valid_period(period)),
    enforcement   text NOT NULL DEFAULT 'hard'
              CONSTRAINT tenant_limits_enforcement_known CHECK (tenant._is_valid_enforcement(enforcement)),
    alert_levels  integer[] NOT NULL DEFAULT '{}'
              CONSTRAINT tenant_limits_alert_levels_valid CHECK (tenant.is_valid_alert_levels(alert_levels)),
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenant.tenant_limits IS 'Per-tenant limit overrides: they win over the plan''s limit';

-- Every committed change reaches every backend's caches (meter limits) at its next transaction.
CREATE TRIGGER plan_limits_invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant.plan_limits
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._registry_changed();
CREATE TRIGGER tenant_limits_invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant.tenant_limits
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._registry_changed();

SELECT pg_catalog.pg_extension_config_dump('tenant.plan_limits', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.tenant_limits', '');

-- Argument checks shared by the admin functions (22004 NULL, 22023 bad value).
CREATE FUNCTION tenant._check_resource(resource text) RETURNS void
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_resource';

CREATE FUNCTION tenant._check_limit(resource text, "limit" bigint, period text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $2 IS NULL OR $3 IS NULL THEN
        RAISE EXCEPTION 'limit and period must not be NULL' USING ERRCODE = '22004',
            HINT = 'To make a resource unlimited, clear its limit.';
    END IF;
    PERFORM tenant._check_resource($1);
    IF $2 OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'a limit must not be negative, not %', $2 USING ERRCODE = '22023',
            HINT = 'A limit of 0 refuses the resource; clearing the limit makes it unlimited.';
    END IF;
    IF NOT tenant.is_valid_period($3) THEN
        RAISE EXCEPTION 'unknown period: "%"', $3 USING ERRCODE = '22023',
            HINT = 'A period is one of second, minute, hour, day, month or none.';
    END IF;
    IF $3 OPERATOR(pg_catalog.<>) 'none'
       AND EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.resource OPERATOR(pg_catalog.=) $1) THEN
        RAISE EXCEPTION 'resource "%" counts rows (tenant.limit_rows): its limit cannot have a period', $1
            USING ERRCODE = '22023', HINT = 'Use period ''none'' for a row quota.';
    END IF;
END
$$;

--#include limits/objects/_check_enforcement/0.11.0.sql

-- Alert levels as stored: ascending, each once.
CREATE FUNCTION tenant._alert_levels(levels integer[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT COALESCE(pg_catalog.array_agg(DISTINCT l ORDER BY l), '{}') FROM pg_catalog.unnest($1) AS l $$;

CREATE FUNCTION tenant.set_limit(plan text, resource text, "limit" bigint, period text DEFAULT 'none',
                                 enforcement text DEFAULT NULL, alert_levels integer[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'plan and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_limit($2, $3, $4);
    PERFORM tenant._check_enforcement($5, $6);
    PERFORM tenant._check_plan($1);
    -- NULL enforcement or levels: the limit keeps its own (a new one: hard, no levels).
    INSERT INTO tenant.plan_limits AS l (plan, resource, "limit", period, enforcement, alert_levels)
    VALUES ($1, $2, $3, $4, COALESCE($5, 'hard'), COALESCE(tenant._alert_levels($6), '{}'))
    ON CONFLICT ON CONSTRAINT plan_limits_pkey DO UPDATE
       SET "limit" = EXCLUDED."limit", period = EXCLUDED.period,
           enforcement = COALESCE($5, l.enforcement), alert_levels = COALESCE(tenant._alert_levels($6), l.alert_levels);
END
$$;
COMMENT ON FUNCTION tenant.set_limit(text, text, bigint, text, text, integer[]) IS
    'sets a plan''s limit of a resource (0 = not allowed) with its period (second, minute, hour, day, month, none), enforcement (hard or soft) and alert levels (percents)';

CREATE FUNCTION tenant.clear_limit(plan text, resource text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'plan and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_resource($2);
    PERFORM tenant._check_plan($1);
    DELETE FROM tenant.plan_limits l
     WHERE l.plan OPERATOR(pg_catalog.=) $1 AND l.resource OPERATOR(pg_catalog.=) $2;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tenant.clear_limit(text, text) IS
    'removes a plan''s limit of a resource (unlimited); returns whether there was one';

CREATE FUNCTION tenant.set_tenant_limit(tenant uuid, resource text, "limit" bigint, period text DEFAULT 'none',
                                        enforcement text DEFAULT NULL, alert_levels integer[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'tenant and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_limit($2, $3, $4);
    PERFORM tenant._check_enforcement($5, $6);
    PERFORM tenant._check_tenant($1);
    INSERT INTO tenant.tenant_limits AS l (tenant_id, resource, "limit", period, enforcement, alert_levels)
    VALUES ($1, $2, $3, $4, COALESCE($5, 'hard'), COALESCE(tenant._alert_levels($6), '{}'))
    ON CONFLICT ON CONSTRAINT tenant_limits_pkey DO UPDATE
       SET "limit" = EXCLUDED."limit", period = EXCLUDED.period,
           enforcement = COALESCE($5, l.enforcement), alert_levels = COALESCE(tenant._alert_levels($6), l.alert_levels);
END
$$;
COMMENT ON FUNCTION tenant.set_tenant_limit(uuid, text, bigint, text, text, integer[]) IS
    'sets a tenant''s own limit of a resource, which wins over its plan''s (enforcement and alert levels as set_limit)';

CREATE FUNCTION tenant.clear_tenant_limit(tenant uuid, resource text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'tenant and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_resource($2);
    PERFORM tenant._check_tenant($1);
    DELETE FROM tenant.tenant_limits l
     WHERE l.tenant_id OPERATOR(pg_catalog.=) $1 AND l.resource OPERATOR(pg_catalog.=) $2;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tenant.clear_tenant_limit(uuid, text) IS
    'removes a tenant''s own limit (its plan''s applies again); returns whether there was one';

-- The limit that applies: the tenant's override, else its plan's, else none (NULL = unlimited,
-- period 'none', enforcement 'hard', no alert levels); upgrade_url is the tenant's plan's. The C++ the meters and quotas call, cached
-- per backend until the registry changes.
CREATE FUNCTION tenant.effective_limit(tenant uuid, resource text,
                                       OUT "limit" bigint, OUT period text, OUT source text, OUT upgrade_url text,
                                       OUT enforcement text, OUT alert_levels integer[])
    RETURNS record
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_effective_limit';
COMMENT ON FUNCTION tenant.effective_limit(uuid, text) IS
    'the limit of a tenant''s resource: its own override, else its plan''s, else none (NULL limit = unlimited); source says which';

-- TN006 with the numbers it is given: the text every limit error has (C++: limits::LimitReached).
CREATE FUNCTION tenant._raise_limit_reached(resource text, "limit" bigint, used bigint, upgrade_url text,
                                            period text DEFAULT 'none')
    RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'pg_tenant_raise_limit_reached';

-- The role a definer function was called by, as far as SQL can tell: the SET ROLE role, else
-- the session user. (A SECURITY DEFINER function cannot see its caller; called from another
-- definer function, this is still the session's role.)
CREATE FUNCTION tenant._calling_role() RETURNS name
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none'
            THEN pg_catalog.session_user()
            ELSE pg_catalog.current_setting('role')::pg_catalog.name END
$$;

REVOKE ALL ON tenant.plan_limits, tenant.tenant_limits FROM PUBLIC;
REVOKE ALL ON FUNCTION
    tenant.is_valid_resource(text), tenant.is_valid_period(text),
    tenant._check_resource(text), tenant._check_limit(text, bigint, text),
    tenant.window_end(text, timestamptz),
    tenant.is_valid_alert_levels(integer[]), tenant._alert_levels(integer[]),
    tenant.set_limit(text, text, bigint, text, text, integer[]), tenant.clear_limit(text, text),
    tenant.set_tenant_limit(uuid, text, bigint, text, text, integer[]), tenant.clear_tenant_limit(uuid, text),
    tenant.effective_limit(uuid, text), tenant._raise_limit_reached(text, bigint, bigint, text, text),
    tenant._calling_role()
FROM PUBLIC;
