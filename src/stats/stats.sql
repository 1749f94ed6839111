-------------------------------------------------------------------------------------------------
-- Per-tenant statistics (shared memory, C++) -- 0.8.0
-------------------------------------------------------------------------------------------------

-- The rows of this database the caller may see: every row for superusers and members of
-- pg_read_all_stats, else only the row of the tenant the caller is in (validated like
-- tenant.current_id()), or none. Times in milliseconds; *_blks of the periods are shared blocks
-- hit + read. 55000 without shared_preload_libraries.
CREATE FUNCTION tenant._stats()
    RETURNS TABLE (tenant_id uuid, kind text, calls bigint, errors bigint, total_time double precision,
                   max_time double precision, "rows" bigint, shared_blks_hit bigint, shared_blks_read bigint,
                   shared_blks_dirtied bigint, temp_blks_written bigint, wal_bytes bigint,
                   period_start timestamptz,
                   current_calls bigint, current_errors bigint, current_total_time double precision,
                   current_rows bigint, current_blks bigint,
                   previous_calls bigint, previous_errors bigint, previous_total_time double precision,
                   previous_rows bigint, previous_blks bigint,
                   first_seen timestamptz, last_seen timestamptz)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_stats';

-- One row per registered tenant that ran statements in this database (kind 'tenant'), one for
-- statements with no tenant ('none'), one for what evicted tenants did ('other') and (0.10.0)
-- one for statements under tenant ids not in tenant.tenants ('unregistered'): the rows add up to
-- every top-level statement counted since the last reset. Read it through a role that may
-- (see tenant._stats()); the view itself reads tenant.tenants for the slug as its owner.
CREATE VIEW tenant.stats AS
SELECT s.tenant_id, t.slug, s.kind,
       s.calls, s.errors, s.total_time,
       CASE WHEN s.calls OPERATOR(pg_catalog.>) 0
            THEN s.total_time OPERATOR(pg_catalog./) s.calls::double precision END AS mean_time,
       s.max_time, s."rows", s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied,
       s.temp_blks_written, s.wal_bytes,
       s.period_start,
       s.current_calls, s.current_errors, s.current_total_time, s.current_rows, s.current_blks,
       s.previous_calls, s.previous_errors, s.previous_total_time, s.previous_rows, s.previous_blks,
       s.first_seen, s.last_seen
  FROM tenant._stats() AS s
  LEFT JOIN tenant.tenants AS t ON t.id OPERATOR(pg_catalog.=) s.tenant_id;
COMMENT ON VIEW tenant.stats IS
    'top-level statements per tenant in this database (kind tenant, none, other or unregistered): totals since reset, and the current and previous period of pg_tenant.stats_period';

-- Who loads the database now: the rows of tenant.stats ranked by the current and previous
-- periods together, by time (ms), calls, rows, blocks (shared hit + read) or errors; share is the
-- row's part of that measure among the rows the caller sees.
CREATE FUNCTION tenant.top_tenants(n integer DEFAULT 10, by text DEFAULT 'time')
    RETURNS TABLE (tenant_id uuid, slug text, kind text, calls bigint, errors bigint,
                   total_time double precision, "rows" bigint, blocks bigint, share double precision)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_n ALIAS FOR $1;
    p_by ALIAS FOR $2;
BEGIN
    IF p_n IS NULL OR p_by IS NULL THEN
        RAISE EXCEPTION 'n and by must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_n OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'n must not be negative, not %', p_n USING ERRCODE = '22023';
    END IF;
    IF p_by OPERATOR(pg_catalog.<>) ALL (ARRAY['time', 'calls', 'rows', 'blocks', 'errors']) THEN
        RAISE EXCEPTION 'unknown measure "%"', pg_catalog.left(p_by, 63) USING ERRCODE = '22023',
            HINT = 'by is one of time, calls, rows, blocks, errors.';
    END IF;
    RETURN QUERY
    WITH recent AS (
        SELECT s.tenant_id, s.slug, s.kind,
               s.current_calls OPERATOR(pg_catalog.+) s.previous_calls AS calls,
               s.current_errors OPERATOR(pg_catalog.+) s.previous_errors AS errors,
               s.current_total_time OPERATOR(pg_catalog.+) s.previous_total_time AS total_time,
               s.current_rows OPERATOR(pg_catalog.+) s.previous_rows AS "rows",
               s.current_blks OPERATOR(pg_catalog.+) s.previous_blks AS blocks
          FROM tenant.stats s),
    measured AS (
        SELECT r.*, CASE p_by WHEN 'time' THEN r.total_time
                              WHEN 'calls' THEN r.calls::double precision
                              WHEN 'rows' THEN r."rows"::double precision
                              WHEN 'blocks' THEN r.blocks::double precision
                              ELSE r.errors::double precision END AS measure
          FROM recent r)
    SELECT m.tenant_id, m.slug, m.kind, m.calls, m.errors, m.total_time, m."rows", m.blocks,
           CASE WHEN pg_catalog.sum(m.measure) OVER () OPERATOR(pg_catalog.>) 0
                THEN m.measure OPERATOR(pg_catalog./) pg_catalog.sum(m.measure) OVER () END
      FROM measured m
     WHERE m.measure OPERATOR(pg_catalog.>) 0
     ORDER BY m.measure DESC, m.kind, m.tenant_id
     LIMIT p_n;
END
$$;
COMMENT ON FUNCTION tenant.top_tenants(integer, text) IS
    'the n rows of tenant.stats that loaded the database most in the current and previous periods, by time, calls, rows, blocks or errors';

-- For Prometheus (monitoring/): a bounded set of label values. The n tenants with the most
-- time since reset, one row "other" (every other tenant, what evicted tenants did and, 0.10.0,
-- statements under unregistered tenant ids) and one row "none", always all three kinds, so the
-- series never come and go. Time in seconds.
CREATE FUNCTION tenant.stats_for_export(n integer DEFAULT 20)
    RETURNS TABLE (tenant text, kind text, calls bigint, errors bigint, time_seconds double precision,
                   "rows" bigint, shared_blks_hit bigint, shared_blks_read bigint, shared_blks_dirtied bigint,
                   temp_blks_written bigint, wal_bytes bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_n ALIAS FOR $1;
BEGIN
    IF p_n IS NULL OR p_n OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'n must be 0 or more' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH ranked AS (
        SELECT s.*, pg_catalog.row_number() OVER (ORDER BY s.total_time DESC, s.tenant_id) AS place
          FROM tenant.stats s WHERE s.kind OPERATOR(pg_catalog.=) 'tenant'),
    labelled AS (
        SELECT CASE WHEN r.place OPERATOR(pg_catalog.<=) p_n
                    THEN COALESCE(r.slug, r.tenant_id::text) ELSE 'other' END AS label,
               CASE WHEN r.place OPERATOR(pg_catalog.<=) p_n THEN 'tenant' ELSE 'other' END AS label_kind,
               r.calls, r.errors, r.total_time, r."rows", r.shared_blks_hit, r.shared_blks_read,
               r.shared_blks_dirtied, r.temp_blks_written, r.wal_bytes
          FROM ranked r
        UNION ALL
        -- (0.10.0) statements under unregistered tenant ids are exported as "other": the labels stay bounded
        SELECT u.kind, u.kind, s.calls, s.errors, s.total_time, s."rows", s.shared_blks_hit, s.shared_blks_read,
               s.shared_blks_dirtied, s.temp_blks_written, s.wal_bytes
          FROM tenant.stats s
         CROSS JOIN LATERAL (SELECT CASE WHEN s.kind OPERATOR(pg_catalog.=) 'unregistered' THEN 'other'
                                         ELSE s.kind END AS kind) u
         WHERE s.kind OPERATOR(pg_catalog.<>) 'tenant'
        UNION ALL
        SELECT k.kind, k.kind, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM (VALUES ('none'), ('other')) AS k(kind))
    SELECT l.label, l.label_kind, pg_catalog.sum(l.calls)::bigint, pg_catalog.sum(l.errors)::bigint,
           pg_catalog.sum(l.total_time) OPERATOR(pg_catalog./) 1000.0, pg_catalog.sum(l."rows")::bigint,
           pg_catalog.sum(l.shared_blks_hit)::bigint, pg_catalog.sum(l.shared_blks_read)::bigint,
           pg_catalog.sum(l.shared_blks_dirtied)::bigint, pg_catalog.sum(l.temp_blks_written)::bigint,
           pg_catalog.sum(l.wal_bytes)::bigint
      FROM labelled l
     GROUP BY l.label, l.label_kind
     ORDER BY l.label_kind OPERATOR(pg_catalog.<>) 'tenant', pg_catalog.sum(l.total_time) DESC, l.label;
END
$$;
COMMENT ON FUNCTION tenant.stats_for_export(integer) IS
    'tenant.stats for Prometheus: the n tenants with the most time, then "other" and "none" (always present); time in seconds';

-- Forgets this database's statistics: every row (NULL) or one tenant's. Returns the rows removed.
CREATE FUNCTION tenant.stats_reset(tenant uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_stats_reset';
COMMENT ON FUNCTION tenant.stats_reset(uuid) IS
    'forgets this database''s per-tenant statistics (all rows, or one tenant''s); returns the rows removed';

-- For tenant.purge(): the tenant's row goes with it.
CREATE FUNCTION tenant._forget_stats(tenant uuid) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_forget_stats';
REVOKE ALL ON FUNCTION tenant._forget_stats(uuid) FROM PUBLIC;

-- The shared table now (every database): for DBAs sizing pg_tenant.stats_max_tenants.
CREATE FUNCTION tenant.stats_info(OUT tenants integer, OUT max_tenants integer, OUT evictions bigint,
                                  OUT dropped bigint) RETURNS record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_stats_info';
COMMENT ON FUNCTION tenant.stats_info() IS
    'tenant rows in the statistics table (every database), pg_tenant.stats_max_tenants, rows evicted into "other" so far, statements that found no room';

-- Nothing for PUBLIC. Monitoring roles (pg_read_all_stats, so pg_monitor) read everything; an
-- application role granted SELECT on tenant.stats and EXECUTE on tenant._stats() (and on
-- tenant.top_tenants) sees only the row of the tenant it is in.
REVOKE ALL ON tenant.stats FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant._stats(), tenant.top_tenants(integer, text), tenant.stats_for_export(integer),
    tenant.stats_reset(uuid), tenant.stats_info() FROM PUBLIC;
GRANT SELECT ON tenant.stats TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION tenant._stats(), tenant.top_tenants(integer, text), tenant.stats_for_export(integer),
    tenant.stats_info() TO pg_read_all_stats;
