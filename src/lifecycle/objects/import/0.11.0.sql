-- Loads an export (its lines joined by newlines) into an existing tenant that has no rows yet,
-- the same or another id. Only scoped tables are written, in the export's order.
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
        SELECT s.rel, s.tenant_column INTO scoped FROM tenant._top_scoped_tables() s
            WHERE s.rel OPERATOR(pg_catalog.=) pg_catalog.to_regclass(batch.name);
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
