-- Limits. A limit is (resource, limit, period): per plan in tenant.plan_limits, per tenant in
-- tenant.tenant_limits (an override). No limit = unlimited; limit 0 = not allowed.
-- tenant.effective_limit() says which one applies. Every limit error is TN006 (limit_reached),
-- raised by tenant._raise_limit_reached() for quotas and meters alike.

-------------------------------------------------------------------------------------------------
-- Limits
-------------------------------------------------------------------------------------------------

CREATE TABLE tenant.plan_limits (
    plan      text NOT NULL
              REFERENCES tenant.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    resource  text NOT NULL
              CONSTRAINT plan_limits_resource_format CHECK (resource OPERATOR(pg_catalog.~) '^[a-z0-9_.-]{1,63}$'),
    "limit"   bigint NOT NULL
              CONSTRAINT plan_limits_limit_not_negative CHECK ("limit" OPERATOR(pg_catalog.>=) 0),
    period    text NOT NULL DEFAULT 'none'
              CONSTRAINT plan_limits_period_known
              CHECK (period OPERATOR(pg_catalog.=) ANY (ARRAY['second', 'minute', 'hour', 'day', 'month', 'none'])),
    PRIMARY KEY (plan, resource)
);
COMMENT ON TABLE tenant.plan_limits IS 'Per-plan limits: no row = unlimited, 0 = not allowed';

CREATE TABLE tenant.tenant_limits (
    tenant_id uuid NOT NULL
              REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    resource  text NOT NULL
              CONSTRAINT tenant_limits_resource_format CHECK (resource OPERATOR(pg_catalog.~) '^[a-z0-9_.-]{1,63}$'),
    "limit"   bigint NOT NULL
              CONSTRAINT tenant_limits_limit_not_negative CHECK ("limit" OPERATOR(pg_catalog.>=) 0),
    period    text NOT NULL DEFAULT 'none'
              CONSTRAINT tenant_limits_period_known
              CHECK (period OPERATOR(pg_catalog.=) ANY (ARRAY['second', 'minute', 'hour', 'day', 'month', 'none'])),
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
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF $1 OPERATOR(pg_catalog.!~) '^[a-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid resource name: "%"', $1 USING ERRCODE = '22023',
            HINT = 'A resource name is 1 to 63 of a-z, 0-9, ''_'', ''.'' and ''-''.';
    END IF;
END
$$;

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
    IF NOT $3 OPERATOR(pg_catalog.=) ANY (ARRAY['second', 'minute', 'hour', 'day', 'month', 'none']) THEN
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

CREATE FUNCTION tenant._check_plan(plan text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'plan must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenant.plans p WHERE p.name OPERATOR(pg_catalog.=) $1) THEN
        RAISE EXCEPTION 'plan "%" does not exist', $1 USING ERRCODE = 'TN003',
            HINT = 'Plans are rows of tenant.plans.';
    END IF;
END
$$;

CREATE FUNCTION tenant._check_tenant(tenant uuid) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) $1) THEN
        RAISE EXCEPTION 'tenant "%" does not exist', $1 USING ERRCODE = 'TN001';
    END IF;
END
$$;

CREATE FUNCTION tenant.set_limit(plan text, resource text, "limit" bigint, period text DEFAULT 'none')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'plan and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_limit($2, $3, $4);
    PERFORM tenant._check_plan($1);
    INSERT INTO tenant.plan_limits AS l (plan, resource, "limit", period) VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT plan_limits_pkey DO UPDATE SET "limit" = EXCLUDED."limit", period = EXCLUDED.period;
END
$$;
COMMENT ON FUNCTION tenant.set_limit(text, text, bigint, text) IS
    'sets a plan''s limit of a resource (0 = not allowed) with its period (second, minute, hour, day, month, none)';

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

CREATE FUNCTION tenant.set_tenant_limit(tenant uuid, resource text, "limit" bigint, period text DEFAULT 'none')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'tenant and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_limit($2, $3, $4);
    PERFORM tenant._check_tenant($1);
    INSERT INTO tenant.tenant_limits AS l (tenant_id, resource, "limit", period) VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT tenant_limits_pkey DO UPDATE SET "limit" = EXCLUDED."limit", period = EXCLUDED.period;
END
$$;
COMMENT ON FUNCTION tenant.set_tenant_limit(uuid, text, bigint, text) IS
    'sets a tenant''s own limit of a resource, which wins over its plan''s';

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
-- period 'none'). upgrade_url is the tenant's plan's. The meters call this on a cache miss.
CREATE FUNCTION tenant.effective_limit(tenant uuid, resource text,
                                       OUT "limit" bigint, OUT period text, OUT source text, OUT upgrade_url text)
    RETURNS record
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_tenant ALIAS FOR $1;
    p_resource ALIAS FOR $2;
    tenant_plan text;
BEGIN
    IF p_tenant IS NULL OR p_resource IS NULL THEN
        RAISE EXCEPTION 'tenant and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT t.plan, p.upgrade_url INTO tenant_plan, upgrade_url
      FROM tenant.tenants t
      JOIN tenant.plans p ON p.name OPERATOR(pg_catalog.=) t.plan
     WHERE t.id OPERATOR(pg_catalog.=) p_tenant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', p_tenant USING ERRCODE = 'TN001';
    END IF;
    SELECT l."limit", l.period INTO "limit", period
      FROM tenant.tenant_limits l
     WHERE l.tenant_id OPERATOR(pg_catalog.=) p_tenant AND l.resource OPERATOR(pg_catalog.=) p_resource;
    IF FOUND THEN
        source := 'tenant';
        RETURN;
    END IF;
    SELECT l."limit", l.period INTO "limit", period
      FROM tenant.plan_limits l
     WHERE l.plan OPERATOR(pg_catalog.=) tenant_plan AND l.resource OPERATOR(pg_catalog.=) p_resource;
    IF FOUND THEN
        source := 'plan';
        RETURN;
    END IF;
    "limit" := NULL;
    period := 'none';
    source := 'none';
END
$$;
COMMENT ON FUNCTION tenant.effective_limit(uuid, text) IS
    'the limit of a tenant''s resource: its own override, else its plan''s, else none (NULL limit = unlimited); source says which';

-- TN006 for every limit (quotas and meters), like an HTTP 429: DETAIL with the numbers, HINT
-- with the plan's upgrade URL. Only the numbers it is given: callers pass the writing tenant's.
CREATE FUNCTION tenant._raise_limit_reached(resource text, "limit" bigint, used bigint, upgrade_url text,
                                            period text DEFAULT 'none')
    RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    detail text := pg_catalog.format('resource %s: limit %s, current %s', $1, $2, $3);
BEGIN
    IF $5 IS NOT NULL AND $5 OPERATOR(pg_catalog.<>) 'none' THEN
        detail := pg_catalog.format('%s, period %s', detail, $5);
    END IF;
    IF $4 IS NOT NULL AND pg_catalog.btrim($4) OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION 'limit of "%" reached', $1 USING ERRCODE = 'TN006', DETAIL = detail,
            HINT = pg_catalog.format('Upgrade your plan: %s', $4);
    END IF;
    RAISE EXCEPTION 'limit of "%" reached', $1 USING ERRCODE = 'TN006', DETAIL = detail;
END
$$;

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

-------------------------------------------------------------------------------------------------
-- Exact row quotas

REVOKE ALL ON tenant.plan_limits, tenant.tenant_limits FROM PUBLIC;
REVOKE ALL ON FUNCTION
    tenant._check_resource(text), tenant._check_limit(text, bigint, text), tenant._check_plan(text),
    tenant._check_tenant(uuid),
    tenant.set_limit(text, text, bigint, text), tenant.clear_limit(text, text),
    tenant.set_tenant_limit(uuid, text, bigint, text), tenant.clear_tenant_limit(uuid, text),
    tenant.effective_limit(uuid, text), tenant._raise_limit_reached(text, bigint, bigint, text, text),
    tenant._calling_role()
FROM PUBLIC;
