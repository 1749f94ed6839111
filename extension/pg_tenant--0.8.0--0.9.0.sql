-- pg_tenant 0.8.0 -> 0.9.0: exact row quotas counted per transaction (issue 15). The counting is
-- in the library (the transaction's ledger); the quota trigger functions are no longer SECURITY
-- DEFINER with a SET search_path (the ledger needs neither); tenant.row_counts keeps few counters
-- per page. Limits may be soft and carry alert levels; meters write usage alerts (an outbox
-- and NOTIFY pg_tenant_usage); tenant.closed_windows() exports final meter counts. The tenant key
-- replaces each scoped table's foreign key to tenant.tenants (issue 15).
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

-- Tenant key -- 0.9.0
-------------------------------------------------------------------------------------------------
-- A scoped table's foreign key to tenant.tenants gives way to the tenant key: one row trigger on
-- the table, two triggers on the registry for all of them (protect_all over 1,000 tables took
-- seconds, growing with the square of their number: every foreign key added two triggers to
-- tenant.tenants and rebuilt its relcache entry with all the others).
-- The tenant key (src/policy/tenant_key.cpp): what a foreign key from every scoped table to
-- tenant.tenants ON DELETE CASCADE guaranteed (no row of an unregistered tenant; a deleted
-- tenant's rows go with it), with one trigger per scoped table and two on the registry instead of
-- two on the registry per scoped table, each of which made adding the next one slower.
-- protect adds to each table: CREATE TRIGGER tenant_key AFTER INSERT OR UPDATE OF <column> ...
-- FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_check('<column>').
CREATE FUNCTION tenant._tenant_key_check() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_key_check';
CREATE FUNCTION tenant._tenant_key_erase() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_key_erase';
CREATE TRIGGER tenants_erase_rows AFTER DELETE OR UPDATE OF id ON tenant.tenants
    FOR EACH ROW EXECUTE FUNCTION tenant._tenant_key_erase();
CREATE TRIGGER tenants_truncate BEFORE TRUNCATE ON tenant.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._tenant_key_erase();
COMMENT ON FUNCTION tenant._tenant_key_check() IS
    'trigger of each scoped table: the row''s tenant must be registered (23503); locks its registry row FOR KEY SHARE';
COMMENT ON FUNCTION tenant._tenant_key_erase() IS
    'trigger of tenant.tenants: a deleted tenant''s rows are deleted from every scoped table; its id cannot change while rows use it; no TRUNCATE while tables are scoped';
REVOKE ALL ON FUNCTION tenant._tenant_key_check(), tenant._tenant_key_erase() FROM PUBLIC;
-- The owner of a protected partitioned table who creates or attaches a partition clones the
-- tenant_key trigger to it, which needs EXECUTE on its function. Called directly, a trigger
-- function only raises an error; the check itself runs as the registry's owner.
GRANT EXECUTE ON FUNCTION tenant._tenant_key_check() TO PUBLIC;

-- _protection reports the tenant key (has_tenant_key) instead of the foreign key.
DROP FUNCTION tenant._protection(regclass, name);
CREATE FUNCTION tenant._protection(rel regclass, tenant_column name,
                                   OUT column_is_uuid boolean, OUT column_not_null boolean,
                                   OUT has_tenant_key boolean, OUT has_leading_index boolean,
                                   OUT rls_enabled boolean, OUT rls_forced boolean,
                                   OUT isolation_policy text, OUT guard_policy text)
    RETURNS record
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_protection';
REVOKE ALL ON FUNCTION tenant._protection(regclass, name) FROM PUBLIC;

COMMENT ON FUNCTION tenant.protect(regclass, name) IS
    'makes rel tenant-scoped (column, tenant key, index, forced RLS, generated policies), with its partitions and children; returns them';
COMMENT ON FUNCTION tenant.unprotect(regclass) IS
    'drops the generated policies, RLS flags and tenant key of rel and of the children protected with it; returns them';

-- The audit's no_tenant_foreign_key finds a table without its tenant key (fix: tenant.protect adds it).
CREATE OR REPLACE FUNCTION tenant.audit()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
WITH RECURSIVE
user_tables AS (          -- tables of users: not catalogs, not temporary, not an extension's
    SELECT c.oid AS relid, c.relname, n.nspname, c.relkind, c.relowner, c.relacl
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')),
scoped AS (
    SELECT t.*, s.tenant_column AS col, a.attnum, p.*
      FROM tenant.scoped_tables s
      JOIN user_tables t ON t.relid = s.relid::oid
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = s.tenant_column AND NOT a.attisdropped
     CROSS JOIN LATERAL tenant._protection(s.relid, s.tenant_column) AS p),
ancestry AS (             -- every ancestor of every table, with the table just under it
    SELECT i.inhrelid AS relid, i.inhparent AS ancestor, i.inhrelid AS below FROM pg_inherits i
    UNION
    SELECT a.relid, i.inhparent, a.ancestor FROM ancestry a JOIN pg_inherits i ON i.inhrelid = a.ancestor),
extension_functions AS (
    SELECT d.objid AS oid FROM pg_depend d
     WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'),
findings AS (
    -- A table with the tenant column that tenant.protect() never saw.
    SELECT t.relid::regclass::text, 'unprotected_table', 'critical',
           format('has a uuid column "%s" but no generated policies: every tenant reads every row', a.attname),
           format('SELECT tenant.protect(%L);', t.relid::regclass::text)
      FROM user_tables t
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                         AND a.atttypid = 'uuid'::regtype
     WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
    UNION ALL
    SELECT s.relid::regclass::text, 'rls_not_enabled', 'critical',
           'row level security is disabled: the policies are ignored',
           format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', s.relid::regclass)
      FROM scoped s WHERE NOT s.rls_enabled
    UNION ALL
    SELECT s.relid::regclass::text, 'rls_not_forced', 'critical',
           'row level security is not forced: the table owner reads every tenant''s rows',
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', s.relid::regclass)
      FROM scoped s WHERE NOT s.rls_forced
    UNION ALL
    SELECT s.relid::regclass::text,
           CASE st.state WHEN 'missing' THEN 'policy_missing' ELSE 'policy_changed' END, 'critical',
           format('generated policy %I is %s', st.policy,
                  CASE st.state WHEN 'missing' THEN 'missing' ELSE 'not what tenant.protect() created' END),
           format('SELECT tenant.protect(%L, %L);', s.relid::regclass::text, s.col)
      FROM scoped s
     CROSS JOIN LATERAL (VALUES ('tenant_isolation', s.isolation_policy),
                                ('tenant_isolation_guard', s.guard_policy)) AS st(policy, state)
     WHERE st.state <> 'current'
    UNION ALL
    SELECT s.relid::regclass::text, 'no_tenant_index', 'warning',
           format('no index leads with %I: every tenant-scoped query scans the whole table', s.col),
           format('CREATE INDEX ON %s (%I);', s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_leading_index
    UNION ALL
    -- A uniqueness check across tenants tells one tenant which values another one uses.
    SELECT s.relid::regclass::text, 'unique_without_tenant',
           CASE WHEN i.indisprimary THEN 'warning' ELSE 'high' END,
           format('%s %I does not include %I: a duplicate-key error reveals another tenant''s values',
                  CASE WHEN i.indisprimary THEN 'primary key' WHEN k.oid IS NOT NULL THEN 'unique constraint'
                       ELSE 'unique index' END, ic.relname, s.col),
           CASE WHEN k.oid IS NOT NULL THEN
                format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s (%I, %s);',
                       s.relid::regclass, k.conname, k.conname,
                       CASE WHEN i.indisprimary THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, s.col, cols.list)
           ELSE
                format('DROP INDEX %s; CREATE UNIQUE INDEX %I ON %s (%I, %s)%s;',
                       i.indexrelid::regclass, ic.relname, s.relid::regclass, s.col, cols.list,
                       CASE WHEN i.indpred IS NOT NULL
                            THEN ' WHERE ' || pg_get_expr(i.indpred, i.indrelid) ELSE '' END)
           END
      FROM scoped s
      JOIN pg_index i ON i.indrelid = s.relid AND i.indisunique
      JOIN pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = s.relid AND k.contype IN ('p', 'u')
     CROSS JOIN LATERAL (SELECT string_agg(pg_get_indexdef(i.indexrelid, n, true), ', ' ORDER BY n) AS list
                           FROM generate_series(1, i.indnkeyatts) AS n) AS cols
     WHERE NOT (s.attnum = ANY (i.indkey::int2[]))
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)  -- flagged on the parent
    UNION ALL
    -- (named before 0.9.0, when the key was a foreign key; the name stays for those who match on it)
    SELECT s.relid::regclass::text, 'no_tenant_foreign_key', 'high',
           format('%I has no tenant key (trigger tenant_key): rows can name tenants that do not exist, and deleted tenants'' rows stay', s.col),
           format('SELECT tenant.protect(%L, %L);', s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_tenant_key AND NOT tenant._is_citus_table('tenant.tenants')
    UNION ALL
    -- Row level security never applies to superusers and BYPASSRLS roles.
    SELECT quote_ident(r.rolname), 'bypassrls_role', 'high',
           format('login role %I has BYPASSRLS and can use %s: it reads every tenant''s rows', r.rolname,
                  string_agg(DISTINCT s.relid::regclass::text, ', ')),
           format('ALTER ROLE %I NOBYPASSRLS;', r.rolname)
      FROM pg_roles r
      JOIN scoped s ON s.relowner = r.oid
                    OR EXISTS (SELECT 1 FROM aclexplode(s.relacl) g WHERE g.grantee = r.oid)
     WHERE r.rolcanlogin AND r.rolbypassrls AND NOT r.rolsuper
     GROUP BY r.rolname
    UNION ALL
    SELECT s.relid::regclass::text, 'superuser_owner', 'high',
           format('owned by login superuser %I, to whom row level security never applies', r.rolname),
           format('DO $fix$ BEGIN CREATE ROLE tenant_table_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $fix$; ALTER TABLE %s OWNER TO tenant_table_owner;',
                  s.relid::regclass)
      FROM scoped s JOIN pg_roles r ON r.oid = s.relowner
     WHERE r.rolcanlogin AND r.rolsuper
    UNION ALL
    -- TRUNCATE ignores row level security: a grantee can erase every tenant's rows.
    SELECT s.relid::regclass::text, 'truncate_granted', 'high',
           format('TRUNCATE is granted to %s; row level security does not apply to TRUNCATE',
                  CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END),
           format('REVOKE TRUNCATE ON %s FROM %s;', s.relid::regclass,
                  CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END)
      FROM scoped s CROSS JOIN LATERAL aclexplode(s.relacl) g
     WHERE g.privilege_type = 'TRUNCATE' AND g.grantee <> s.relowner
    UNION ALL
    -- A view runs with its owner's rights unless security_invoker is set.
    SELECT v.oid::regclass::text, 'view_without_security_invoker', 'critical',
           format('reads %s with the rights of its owner %I, not of the querying role',
                  string_agg(DISTINCT s.relid::regclass::text, ', '), pg_get_userbyid(v.relowner)),
           format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass)
      FROM pg_class v
      JOIN pg_rewrite rw ON rw.ev_class = v.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                      AND d.refclassid = 'pg_class'::regclass
      JOIN scoped s ON s.relid = d.refobjid
     WHERE v.relkind = 'v'
       AND NOT coalesce('security_invoker=true' = ANY (v.reloptions)
                     OR 'security_invoker=on' = ANY (v.reloptions), false)
     GROUP BY v.oid, v.relowner
    UNION ALL
    -- In a guarded schema, a shared table is a recorded decision.
    SELECT t.relid::regclass::text, 'table_without_tenant_column', 'high',
           format('schema %I is guarded, and the table has no tenant column and no exemption', t.nspname),
           format('SELECT tenant.exempt(%L, %L);', t.relid::regclass::text, 'shared: <why>')
      FROM user_tables t
     WHERE t.nspname = ANY (tenant.guarded_schemas())
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = tenant.tenant_column()
                          AND NOT a.attisdropped)
       AND NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
       AND NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = t.relid)
    UNION ALL
    -- A query on an unprotected ancestor reads the rows of a scoped table without its policies.
    SELECT s.relid::regclass::text, 'unprotected_ancestor', 'critical',
           format('its ancestor %s is not protected: a query on it reads this table''s rows without its policies',
                  a.ancestor::regclass),
           CASE WHEN EXISTS (SELECT 1 FROM pg_attribute c WHERE c.attrelid = a.ancestor AND c.attname = s.col
                                AND c.atttypid = 'uuid'::regtype AND NOT c.attisdropped)
                THEN format('SELECT tenant.protect(%L, %L);', a.ancestor::regclass::text, s.col)
                WHEN p.relkind = 'p' THEN format('ALTER TABLE %s DETACH PARTITION %s;', a.ancestor::regclass, a.below::regclass)
                ELSE format('ALTER TABLE %s NO INHERIT %s;', a.below::regclass, a.ancestor::regclass) END
      FROM scoped s
      JOIN ancestry a ON a.relid = s.relid
      JOIN pg_class p ON p.oid = a.ancestor
     WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables t WHERE t.relid::oid = a.ancestor)
    UNION ALL
    -- A tenant column that is not uuid cannot hold tenant ids: protect refuses the table.
    SELECT t.relid::regclass::text, 'tenant_column_not_uuid', 'high',
           format('column %I is %s, not uuid: it cannot hold tenant ids, and the table cannot be protected',
                  a.attname, format_type(a.atttypid, a.atttypmod)),
           format('ALTER TABLE %s ALTER COLUMN %I TYPE uuid USING %I::uuid;', t.relid::regclass, a.attname, a.attname)
      FROM user_tables t
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                         AND a.atttypid <> 'uuid'::regtype
     WHERE NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
    UNION ALL
    -- A materialized view holds a copy of what it read, outside row level security (followed
    -- through views, CTEs and SQL functions).
    SELECT m.oid::regclass::text, 'materialized_view_reads_scoped', 'critical',
           format('holds a copy of the rows of %s, readable without their policies', array_to_string(r.tables, ', ')),
           format('DROP MATERIALIZED VIEW %s;', m.oid::regclass)
      FROM pg_class m
      JOIN pg_namespace n ON n.oid = m.relnamespace
     CROSS JOIN LATERAL (SELECT tenant._reads_scoped(m.oid) AS tables) r
     WHERE m.relkind = 'm' AND cardinality(r.tables) > 0 AND n.nspname <> 'tenant'
    UNION ALL
    -- A rule can copy or redirect every tenant's rows past row level security.
    SELECT s.relid::regclass::text, 'rule_on_scoped_table', 'critical',
           format('rule %I can copy or redirect every tenant''s rows past row level security', r.rulename),
           format('DROP RULE %I ON %s;', r.rulename, s.relid::regclass)
      FROM scoped s JOIN pg_rewrite r ON r.ev_class = s.relid AND r.rulename <> '_RETURN'
    UNION ALL
    -- Triggers are legitimate; these two kinds deserve a review (warnings).
    SELECT s.relid::regclass::text, 'trigger_security_definer', 'warning',
           format('trigger %I runs %s with the rights of its owner %I, who may not be bound by row level security',
                  g.tgname, p.oid::regprocedure, pg_get_userbyid(p.proowner)),
           format('ALTER FUNCTION %s SECURITY INVOKER;', p.oid::regprocedure)
      FROM scoped s
      JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
      JOIN pg_proc p ON p.oid = g.tgfoid
     WHERE p.prosecdef AND p.oid NOT IN (SELECT f.oid FROM extension_functions f)
    UNION ALL
    SELECT s.relid::regclass::text, 'trigger_writes_unscoped', 'warning',
           format('trigger %I runs %s, which writes to %s: rows copied there are readable without the policies',
                  g.tgname, p.oid::regprocedure, array_to_string(w.unscoped, ', ')),
           format('DROP TRIGGER %I ON %s;', g.tgname, s.relid::regclass)
      FROM scoped s
      JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
      JOIN pg_proc p ON p.oid = g.tgfoid
     CROSS JOIN LATERAL (SELECT array_agg(x ORDER BY x::text) AS unscoped FROM unnest(tenant._writes_to(p.oid)) AS x
                          WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables k WHERE k.relid = x)) w
     WHERE w.unscoped IS NOT NULL AND p.oid NOT IN (SELECT f.oid FROM extension_functions f)
    UNION ALL
    -- On Citus: every shard of a scoped table, on every node (src/citus/citus.sql).
    SELECT c.object, c.rule, c.severity, c.detail, c.fix FROM tenant._citus_shard_findings() c
)
SELECT * FROM findings AS f(object, rule, severity, detail, fix)
 ORDER BY CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, f.object, f.rule, f.detail
$$;

-- Tables protected before 0.9.0: each gets the tenant key, then loses its foreign key to the
-- registry (the key guarantees the same). Parents first: a partitioned table's trigger is cloned
-- to its partitions. With a distributed registry (Citus) there was no foreign key and is no key.
DO $$
DECLARE
    s record;
BEGIN
    IF tenant._is_citus_table('tenant.tenants') THEN
        RETURN;
    END IF;
    FOR s IN SELECT t.relid, t.tenant_column, c.relkind, c.relname FROM tenant.scoped_tables t
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
              ORDER BY (SELECT pg_catalog.count(*) FROM pg_catalog.pg_partition_ancestors(t.relid)), t.relid::pg_catalog.oid
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                        WHERE g.tgrelid OPERATOR(pg_catalog.=) s.relid
                          AND g.tgfoid OPERATOR(pg_catalog.=) 'tenant._tenant_key_check()'::pg_catalog.regprocedure) THEN
            -- named as protect names it (src/policy/generator.hpp)
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OF %I ON %s FOR EACH ROW '
                                      'EXECUTE FUNCTION tenant._tenant_key_check(%L)',
                                      CASE WHEN s.relkind OPERATOR(pg_catalog.=) 'p' THEN 'tenant_key_' OPERATOR(pg_catalog.||) s.relname
                                           ELSE 'tenant_key' END,
                                      s.tenant_column, s.relid, s.tenant_column);
        END IF;
    END LOOP;
    FOR s IN SELECT c.conrelid::pg_catalog.regclass AS rel, c.conname
               FROM pg_catalog.pg_constraint c
               JOIN tenant.scoped_tables t ON t.relid OPERATOR(pg_catalog.=) c.conrelid
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid
                                              AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
              WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                AND c.confrelid OPERATOR(pg_catalog.=) 'tenant.tenants'::pg_catalog.regclass
                AND c.conkey OPERATOR(pg_catalog.=) ARRAY[a.attnum]
                AND c.conparentid OPERATOR(pg_catalog.=) 0
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', s.rel, s.conname);
    END LOOP;
END
$$;

-------------------------------------------------------------------------------------------------
-- Purge -- 0.9.0
-------------------------------------------------------------------------------------------------
-- The counts per table are gathered in arrays and made jsonb once (adding to a jsonb value per
-- table copied it each time: quadratic in the number of scoped tables).
CREATE OR REPLACE FUNCTION tenant.purge(id uuid, force boolean DEFAULT false)
    RETURNS TABLE (rel regclass, deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    p_force ALIAS FOR $2;
    target tenant.tenants%ROWTYPE;
    -- The counts per table, gathered in arrays (appending to one is cheap) and made jsonb once:
    -- adding to a jsonb value copies it, which over 5,000 tables cost more than the deletes.
    names text[] := '{}';
    counts bigint[] := '{}';
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
        names := pg_catalog.array_append(names, scoped.rel::text);
        counts := pg_catalog.array_append(counts, deleted);
        RETURN NEXT;
    END LOOP;
    DELETE FROM tenant.meter_counts m WHERE m.tenant_id OPERATOR(pg_catalog.=) p_id;
    DELETE FROM tenant.usage_alerts a WHERE a.tenant_id OPERATOR(pg_catalog.=) p_id;  -- 0.9.0
    PERFORM tenant._forget_meters(p_id);
    PERFORM tenant._forget_stats(p_id);
    -- Limits, row counts and status history go with the registry row (ON DELETE CASCADE).
    DELETE FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    INSERT INTO tenant.purges (tenant_id, slug, forced, deleted)
    VALUES (p_id, target.slug, p_force,
            (SELECT COALESCE(pg_catalog.jsonb_object_agg(c.name, c.n), '{}')
               FROM ROWS FROM (pg_catalog.unnest(names), pg_catalog.unnest(counts)) AS c(name, n)));
END
$$;
COMMENT ON FUNCTION tenant.purge(uuid, boolean) IS
    'erases a suspended tenant (or any, with force): its rows in every scoped table, children first, its meters, usage alerts, statistics, limits and registry row; tenant.purges keeps the record';
