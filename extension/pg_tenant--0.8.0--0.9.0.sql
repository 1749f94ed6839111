-- pg_tenant 0.8.0 -> 0.9.0: exact row quotas counted per transaction (issue 15). The counting is
-- in the library (the transaction's ledger); the quota trigger functions are no longer SECURITY
-- DEFINER with a SET search_path (the ledger needs neither); tenant.row_counts keeps few counters
-- per page. Limits may be soft and carry alert levels; meters write usage alerts (an outbox
-- and NOTIFY pg_tenant_usage); tenant.closed_windows() exports final meter counts (issue 15).
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.9.0'" to load this file. \quit

-------------------------------------------------------------------------------------------------
-- Row quotas -- 0.9.0
-------------------------------------------------------------------------------------------------

-- A counter row is updated by every transaction that writes rows of its tenant: a page holds few
-- of them (0.9.0), so the pruning of a page's dead versions, which the next look-up of a counter
-- on it pays, scans about a dozen line pointers rather than a hundred and thirty. Counters made
-- before 0.9.0 spread out with VACUUM FULL tenant.row_counts.
ALTER TABLE tenant.row_counts SET (fillfactor = 10);

-- The statement triggers (arguments: resource, tenant column): they count the transition
-- tables' rows per tenant and hand the deltas to the transaction's ledger. One C++ function for
-- the three events. Neither SECURITY DEFINER nor SET search_path (0.9.0): the ledger reads and
-- writes the counter rows with the table access method (no privilege applies, no name is
-- resolved), and creates a missing counter as the extension owner itself; the function call
-- then costs no role and search_path switch per statement.
CREATE OR REPLACE FUNCTION tenant._row_quota_inserted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE OR REPLACE FUNCTION tenant._row_quota_deleted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
-- Old and new rows are not paired in transition tables: per tenant, new rows minus old rows.
-- An UPDATE that keeps every row's tenant changes nothing.
CREATE OR REPLACE FUNCTION tenant._row_quota_updated() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';

-------------------------------------------------------------------------------------------------
-- Soft limits and alert levels -- 0.9.0
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant.is_valid_alert_levels(levels integer[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT pg_catalog.cardinality($1) OPERATOR(pg_catalog.<=) 8
       AND pg_catalog.array_position($1, NULL) IS NULL
       AND 1 OPERATOR(pg_catalog.<=) ALL ($1) AND 1000 OPERATOR(pg_catalog.>=) ALL ($1)
$$;
COMMENT ON FUNCTION tenant.is_valid_alert_levels(integer[]) IS 'true when levels are at most 8 percents of a limit, each 1 to 1000';

CREATE FUNCTION tenant.window_end(period text, window_start timestamptz) RETURNS timestamptz
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_window_end';
COMMENT ON FUNCTION tenant.window_end(text, timestamptz) IS 'when a meter window of period starting at window_start ends (UTC boundaries; NULL for period none)';

ALTER TABLE tenant.plan_limits
    ADD COLUMN enforcement text NOT NULL DEFAULT 'hard'
        CONSTRAINT plan_limits_enforcement_known CHECK (enforcement OPERATOR(pg_catalog.=) ANY (ARRAY['hard', 'soft'])),
    ADD COLUMN alert_levels integer[] NOT NULL DEFAULT '{}'
        CONSTRAINT plan_limits_alert_levels_valid CHECK (tenant.is_valid_alert_levels(alert_levels));
ALTER TABLE tenant.tenant_limits
    ADD COLUMN enforcement text NOT NULL DEFAULT 'hard'
        CONSTRAINT tenant_limits_enforcement_known CHECK (enforcement OPERATOR(pg_catalog.=) ANY (ARRAY['hard', 'soft'])),
    ADD COLUMN alert_levels integer[] NOT NULL DEFAULT '{}'
        CONSTRAINT tenant_limits_alert_levels_valid CHECK (tenant.is_valid_alert_levels(alert_levels));

CREATE FUNCTION tenant._check_enforcement(enforcement text, alert_levels integer[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NOT NULL AND $1 OPERATOR(pg_catalog.<>) ALL (ARRAY['hard', 'soft']) THEN
        RAISE EXCEPTION 'unknown enforcement: "%"', $1 USING ERRCODE = '22023',
            HINT = 'A limit is hard (refuses what would pass it) or soft (lets it through and counts the overage).';
    END IF;
    IF $2 IS NOT NULL AND NOT tenant.is_valid_alert_levels($2) THEN
        RAISE EXCEPTION 'invalid alert levels: %', $2 USING ERRCODE = '22023',
            HINT = 'Alert levels are at most 8 percents of the limit, each from 1 to 1000, for example ''{80,100}''.';
    END IF;
END
$$;


CREATE FUNCTION tenant._alert_levels(levels integer[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT COALESCE(pg_catalog.array_agg(DISTINCT l ORDER BY l), '{}') FROM pg_catalog.unnest($1) AS l $$;

-- Functions whose arguments or results change are dropped and made again: the EXECUTE grants
-- given on them (to application roles) are kept here and given again below.
CREATE TEMPORARY TABLE pg_tenant_090_grants ON COMMIT DROP AS
SELECT p.proname::text AS name, a.grantee
  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) AS a
 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'tenant'::regnamespace
   AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['set_limit', 'set_tenant_limit', 'effective_limit', 'usage'])
   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE' AND a.grantee OPERATOR(pg_catalog.<>) 0
   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner;
DROP FUNCTION tenant.set_limit(text, text, bigint, text);
DROP FUNCTION tenant.set_tenant_limit(uuid, text, bigint, text);
DROP FUNCTION tenant.usage(uuid);
DROP FUNCTION tenant.effective_limit(uuid, text);

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

CREATE FUNCTION tenant.effective_limit(tenant uuid, resource text,
                                       OUT "limit" bigint, OUT period text, OUT source text, OUT upgrade_url text,
                                       OUT enforcement text, OUT alert_levels integer[])
    RETURNS record
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_effective_limit';
COMMENT ON FUNCTION tenant.effective_limit(uuid, text) IS
    'the limit of a tenant''s resource: its own override, else its plan''s, else none (NULL limit = unlimited); source says which';

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

REVOKE ALL ON FUNCTION
    tenant.window_end(text, timestamptz),
    tenant.is_valid_alert_levels(integer[]), tenant._check_enforcement(text, integer[]), tenant._alert_levels(integer[]),
    tenant.set_limit(text, text, bigint, text, text, integer[]),
    tenant.set_tenant_limit(uuid, text, bigint, text, text, integer[]),
    tenant.effective_limit(uuid, text), tenant.usage(uuid)
FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM pg_temp.pg_tenant_090_grants LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I',
            CASE g.name WHEN 'set_limit' THEN 'tenant.set_limit(text, text, bigint, text, text, integer[])'
                        WHEN 'set_tenant_limit' THEN 'tenant.set_tenant_limit(uuid, text, bigint, text, text, integer[])'
                        WHEN 'effective_limit' THEN 'tenant.effective_limit(uuid, text)'
                        ELSE 'tenant.usage(uuid)' END,
            pg_catalog.pg_get_userbyid(g.grantee));
    END LOOP;
END
$$;
DROP TABLE pg_temp.pg_tenant_090_grants;

-------------------------------------------------------------------------------------------------
-- Idempotency keys -- 0.9.0
-------------------------------------------------------------------------------------------------

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

-------------------------------------------------------------------------------------------------
-- Usage alerts and the export of closed windows -- 0.9.0
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

-- tenant.purge() erases the tenant's usage alerts too.
CREATE OR REPLACE FUNCTION tenant.purge(id uuid, force boolean DEFAULT false)
    RETURNS TABLE (rel regclass, deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    p_force ALIAS FOR $2;
    target tenant.tenants%ROWTYPE;
    counts jsonb := '{}';
    scoped record;
BEGIN
    IF p_id IS NULL OR p_force IS NULL THEN
        RAISE EXCEPTION 'tenant and force must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- Locked: no status change or second purge runs meanwhile.
    SELECT * INTO target FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tenant._check_tenant(p_id);
    END IF;
    IF target.status OPERATOR(pg_catalog.<>) 'suspended' AND NOT p_force THEN
        RAISE EXCEPTION 'tenant "%" is %, not suspended', target.slug, target.status USING ERRCODE = '55000',
            HINT = 'Suspend it first (tenant.suspend), or call tenant.purge(id, force => true).';
    END IF;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() LOOP
        rel := scoped.rel;
        EXECUTE pg_catalog.format('DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) $1', scoped.rel, scoped.tenant_column)
            USING p_id;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        counts := counts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(scoped.rel::text, deleted);
        RETURN NEXT;
    END LOOP;
    DELETE FROM tenant.meter_counts m WHERE m.tenant_id OPERATOR(pg_catalog.=) p_id;
    DELETE FROM tenant.usage_alerts a WHERE a.tenant_id OPERATOR(pg_catalog.=) p_id;  -- 0.9.0
    PERFORM tenant._forget_meters(p_id);
    PERFORM tenant._forget_stats(p_id);
    -- Limits, row counts and status history go with the registry row (ON DELETE CASCADE).
    DELETE FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    INSERT INTO tenant.purges (tenant_id, slug, forced, deleted) VALUES (p_id, target.slug, p_force, counts);
END
$$;
COMMENT ON FUNCTION tenant.purge(uuid, boolean) IS
    'erases a suspended tenant (or any, with force): its rows in every scoped table, children first, its meters, usage alerts, statistics, limits and registry row; tenant.purges keeps the record';
