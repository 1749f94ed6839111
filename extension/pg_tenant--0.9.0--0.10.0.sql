-- pg_tenant 0.9.0 -> 0.10.0: least privilege by construction (issue 19). Work on a user's table
-- runs as that table's owner in a security-restricted operation; PUBLIC entry points validate
-- their input; a context entered without a signed token is no tenant under
-- require_signed_context; secrets are shown to superusers only; every shared table has a
-- per-tenant share.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.10.0'" to load this file. \quit

-------------------------------------------------------------------------------------------------
-- Who runs what (items 2, 3, 12) -- 0.10.0
-------------------------------------------------------------------------------------------------

-- The statements purge, export and import run on a scoped table run as that table's owner, in
-- a security-restricted operation, acting for the tenant: the owner's triggers, casts and index
-- expressions never run with the extension owner's rights (before 0.10.0 they did).
CREATE FUNCTION tenant._query_as_owner(rel regclass, tenant uuid, query text, rows jsonb DEFAULT NULL)
    RETURNS SETOF text
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_query_as_owner';
REVOKE ALL ON FUNCTION tenant._query_as_owner(regclass, uuid, text, jsonb) FROM PUBLIC;

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
        deleted := tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'WITH d AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) $1 RETURNING 1) SELECT pg_catalog.count(*) FROM d',
            scoped.rel, scoped.tenant_column));
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

CREATE OR REPLACE FUNCTION tenant.export(id uuid) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    target tenant.tenants%ROWTYPE;
    scoped record;
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_tenant(p_id);
    SELECT * INTO target FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    RETURN NEXT pg_catalog.jsonb_build_object(
        'format', 'pg_tenant export', 'format_version', 1,
        'extension_version', (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_tenant'),
        'tenant', pg_catalog.jsonb_build_object('id', target.id, 'slug', target.slug, 'name', target.name, 'plan', target.plan),
        'exported_at', pg_catalog.now())::text;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() WITH ORDINALITY AS s(rel, tenant_column, n)
                  ORDER BY s.n DESC LOOP
        RETURN QUERY SELECT * FROM tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''table'', %L, ''row'', pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.-) %L)::text
               FROM %s r WHERE r.%I OPERATOR(pg_catalog.=) $1 ORDER BY r::text',
            scoped.rel::text, scoped.tenant_column, scoped.rel, scoped.tenant_column));
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION tenant.import(id uuid, export text) RETURNS TABLE (rel regclass, inserted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    p_export ALIAS FOR $2;
    header jsonb;
    scoped record;
    batch record;
    columns text;
    holds boolean;
BEGIN
    IF p_id IS NULL OR p_export IS NULL THEN
        RAISE EXCEPTION 'tenant and export must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_tenant(p_id);
    PERFORM 1 FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    BEGIN
        header := pg_catalog.split_part(p_export, E'\n', 1)::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        header := NULL;
    END;
    IF header IS NULL OR pg_catalog.jsonb_typeof(header) OPERATOR(pg_catalog.<>) 'object'
       OR header OPERATOR(pg_catalog.->>) 'format' IS DISTINCT FROM 'pg_tenant export'
       OR header OPERATOR(pg_catalog.->>) 'format_version' IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'not a pg_tenant export (format 1)' USING ERRCODE = '22023',
            DETAIL = 'The first line must be the header tenant.export() writes.';
    END IF;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() LOOP
        holds := tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'SELECT EXISTS (SELECT 1 FROM %s r WHERE r.%I OPERATOR(pg_catalog.=) $1)', scoped.rel, scoped.tenant_column));
        IF holds THEN
            RAISE EXCEPTION 'tenant % already has rows in %', p_id, scoped.rel USING ERRCODE = '55000',
                HINT = 'Import into a tenant without data (a new one, or one purged and created again).';
        END IF;
    END LOOP;
    FOR batch IN
        WITH lines AS (
            SELECT l.n, l.line::jsonb AS line
            FROM pg_catalog.unnest(pg_catalog.string_to_array(p_export, E'\n')) WITH ORDINALITY AS l(line, n)
            WHERE l.n OPERATOR(pg_catalog.>) 1 AND pg_catalog.btrim(l.line) OPERATOR(pg_catalog.<>) '')
        SELECT l.line OPERATOR(pg_catalog.->>) 'table' AS name, pg_catalog.min(l.n) AS first,
               pg_catalog.jsonb_agg(l.line OPERATOR(pg_catalog.->) 'row' ORDER BY l.n) AS rows
        FROM lines l GROUP BY 1 ORDER BY 2
    LOOP
        SELECT s.relid AS rel, s.tenant_column INTO scoped FROM tenant.scoped_tables s
            WHERE s.parent IS NULL AND s.relid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(batch.name);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table "%" of the export is not a tenant-scoped table here', batch.name USING ERRCODE = '42P01';
        END IF;
        -- every stored column (generated ones are computed again); the tenant column is the target
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) scoped.rel AND a.attnum OPERATOR(pg_catalog.>) 0
              AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
        inserted := tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'WITH i AS (INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_catalog.jsonb_populate_recordset(NULL::%s, $2) RETURNING 1)
             SELECT pg_catalog.count(*) FROM i',
            scoped.rel, columns, columns, scoped.rel),
            (SELECT pg_catalog.jsonb_agg(r OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(scoped.tenant_column, p_id))
               FROM pg_catalog.jsonb_array_elements(batch.rows) AS r));
        rel := scoped.rel;
        RETURN NEXT;
    END LOOP;
END
$$;

-------------------------------------------------------------------------------------------------
-- The tenant key kept in shape (item 8) -- 0.10.0
-------------------------------------------------------------------------------------------------

-- The DDL door also hears CREATE [OR REPLACE] TRIGGER, so the guard reads a scoped table's
-- protection again after one (a tenant_key replaced by a trigger that checks nothing is TN005).
-- An event trigger's tags cannot be altered: it is made again, as src/ddl/ddl.sql makes it.
DROP EVENT TRIGGER pg_tenant_ddl_command_end;
CREATE EVENT TRIGGER pg_tenant_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA', 'ALTER SCHEMA', 'ALTER TABLE',
                 'CREATE POLICY', 'ALTER POLICY', 'CREATE MATERIALIZED VIEW', 'CREATE RULE',
                 'CREATE TRIGGER')
    EXECUTE FUNCTION tenant._on_ddl_command_end();
ALTER EVENT TRIGGER pg_tenant_ddl_command_end ENABLE ALWAYS;

-------------------------------------------------------------------------------------------------
-- Statistics rows for registered tenants only (item 10) -- 0.10.0
-------------------------------------------------------------------------------------------------

COMMENT ON VIEW tenant.stats IS
    'top-level statements per tenant in this database (kind tenant, none, other or unregistered): totals since reset, and the current and previous period of pg_tenant.stats_period';

-- tenant.stats_for_export exports the new kind 'unregistered' as "other" (its labels stay bounded).
CREATE OR REPLACE FUNCTION tenant.stats_for_export(n integer DEFAULT 20)
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
