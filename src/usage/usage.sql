-------------------------------------------------------------------------------------------------
-- Usage report
-------------------------------------------------------------------------------------------------

-- One row per resource the tenant has a limit for (plan or own), that counts rows (any table
-- with limit_rows) or that has an open meter window: kind 'rows' (used = its row count,
-- window_start NULL) or 'meter' (used = the open window's count, window_start its start; NULL
-- for period 'none'). limit NULL = unlimited. 0.9.0: enforcement (hard or soft, NULL when
-- unlimited) and overage (how far used is past the limit, 0 when within it: only a soft limit
-- can be passed, or a limit lowered below what is used). Callers: a superuser or a role with SELECT on
-- tenant.row_counts may ask for any tenant; anyone else (granted EXECUTE) only for the current
-- one (42501 otherwise), so an application role cannot read another tenant's usage.
CREATE FUNCTION tenant.usage(tenant uuid DEFAULT tenant.current_id())
    RETURNS TABLE (resource text, used bigint, "limit" bigint, period text, window_start timestamptz, kind text,
                   enforcement text, overage bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_tenant ALIAS FOR $1;
    caller name := tenant._calling_role();
    tenant_plan text;
BEGIN
    IF p_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant given and no tenant is set' USING ERRCODE = '22004',
            HINT = 'Call tenant.set() first, or pass a tenant id.';
    END IF;
    IF p_tenant IS DISTINCT FROM tenant.current_id()
       AND NOT pg_catalog.has_table_privilege(caller, 'tenant.row_counts', 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for the usage of another tenant' USING ERRCODE = '42501',
            DETAIL = pg_catalog.format('Role %I may read the usage of the current tenant only.', caller),
            HINT = 'Call tenant.usage() inside the tenant (tenant.set()); reading every tenant''s usage needs SELECT on tenant.row_counts.';
    END IF;
    PERFORM tenant._check_tenant(p_tenant);
    SELECT t.plan INTO tenant_plan FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_tenant;
    RETURN QUERY
    WITH limited AS (
        SELECT l.resource FROM tenant.tenant_limits l WHERE l.tenant_id OPERATOR(pg_catalog.=) p_tenant
        UNION
        SELECT l.resource FROM tenant.plan_limits l WHERE l.plan OPERATOR(pg_catalog.=) tenant_plan),
    counted AS (
        SELECT q.resource FROM tenant.row_quotas q
        UNION
        SELECT c.resource FROM tenant.row_counts c WHERE c.tenant_id OPERATOR(pg_catalog.=) p_tenant),
    met AS (
        SELECT DISTINCT ON (u.resource) u.resource, u.window_start, u.used
          FROM tenant._meter_usage(p_tenant) AS u
         ORDER BY u.resource, u.window_start DESC NULLS LAST),
    names AS (
        SELECT l.resource FROM limited l
        UNION SELECT c.resource FROM counted c
        UNION SELECT m.resource FROM met m)
    SELECT u.resource, u.used, u."limit", u.period, u.window_start, u.kind,
           CASE WHEN u."limit" IS NOT NULL THEN u.enforcement END,
           GREATEST(u.used OPERATOR(pg_catalog.-) COALESCE(u."limit", u.used), 0)::bigint
      FROM (
    SELECT n.resource,
           CASE WHEN k.resource IS NOT NULL THEN COALESCE(rc.rows, 0)
                ELSE COALESCE(m.used, 0) END::bigint AS used,
           l."limit",
           l.period,
           CASE WHEN k.resource IS NULL THEN m.window_start END AS window_start,
           CASE WHEN k.resource IS NOT NULL THEN 'rows' ELSE 'meter' END AS kind,
           l.enforcement
      FROM names n
     CROSS JOIN LATERAL tenant.effective_limit(p_tenant, n.resource) AS l
      LEFT JOIN counted k ON k.resource OPERATOR(pg_catalog.=) n.resource
      LEFT JOIN tenant.row_counts rc ON rc.tenant_id OPERATOR(pg_catalog.=) p_tenant
                                    AND rc.resource OPERATOR(pg_catalog.=) n.resource
      LEFT JOIN met m ON m.resource OPERATOR(pg_catalog.=) n.resource) AS u
     ORDER BY u.resource;
END
$$;
COMMENT ON FUNCTION tenant.usage(uuid) IS
    'every resource of a tenant with used, limit, period, window start, kind (rows or meter), enforcement and overage; the current tenant unless the caller may read all';

REVOKE ALL ON FUNCTION tenant.usage(uuid) FROM PUBLIC;
