-- pg_tenant 0.10.0 -> 0.11.0: a house a new engineer can read (issue 20). No signature of 0.10.0
-- changes; internal functions are added, replaced or dropped as their rules move.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.11.0'" to load this file. \quit

-------------------------------------------------------------------------------------------------
-- Quota bookkeeping on DDL in C++ (issue 20): the DDL door's row quota steps are C++
-- (src/quotas/tables.cpp, with the policy capability's table tree engine); the PL/pgSQL they ran
-- goes. The quota triggers' installation, the READ COMMITTED check and the ownership check (the
-- rule tenant.protect applies) become C functions, still called by limit_rows and unlimit_rows.
-------------------------------------------------------------------------------------------------
DROP FUNCTION tenant._row_quota_after_ddl(oid[]);
DROP FUNCTION tenant._row_quota_after_drop(oid[]);
DROP FUNCTION tenant._row_quota_count(regclass, name, boolean);
DROP FUNCTION tenant._row_quota_restoring();
CREATE OR REPLACE FUNCTION tenant._row_quota_install(rel regclass, resource text, tenant_column name) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_install';
CREATE OR REPLACE FUNCTION tenant._row_quota_uninstall(rel regclass) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_uninstall';
CREATE OR REPLACE FUNCTION tenant._row_quota_require_read_committed(what text) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_require_read_committed';
CREATE OR REPLACE FUNCTION tenant._require_owner(rel regclass) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_require_owner';
DROP FUNCTION tenant._row_quota_functions();

-------------------------------------------------------------------------------------------------
-- A tenant's rows, defined once (issue 20): tenant._top_scoped_tables() is what purge, export,
-- import and the tenant key's erase read.
-------------------------------------------------------------------------------------------------
-- What holds a tenant's rows (0.11.0: one definition for purge, export, import and the tenant
-- key's erase): the top-level scoped tables, with their tenant columns. A statement on one
-- reaches its partitions and children; a table whose recorded parent is no longer its parent
-- (detached, NO INHERIT) is top-level itself.
CREATE FUNCTION tenant._top_scoped_tables() RETURNS TABLE (rel regclass, tenant_column name)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid, s.tenant_column FROM tenant.scoped_tables s
 WHERE s.parent IS NULL
    OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                    WHERE i.inhrelid OPERATOR(pg_catalog.=) s.relid AND i.inhparent OPERATOR(pg_catalog.=) s.parent)
$$;
REVOKE ALL ON FUNCTION tenant._top_scoped_tables() FROM PUBLIC;

CREATE OR REPLACE FUNCTION tenant._scoped_tables_children_first()
    RETURNS TABLE (rel regclass, tenant_column name)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    remaining regclass[];
    ready regclass[];
    top regclass;
BEGIN
    SELECT pg_catalog.array_agg(s.rel ORDER BY s.rel::text) INTO remaining
        FROM tenant._top_scoped_tables() s;
    WHILE pg_catalog.cardinality(remaining) OPERATOR(pg_catalog.>) 0 LOOP
        -- the tables no other remaining table references (a table's partitions count as it)
        SELECT pg_catalog.array_agg(t ORDER BY t::text) INTO ready
            FROM pg_catalog.unnest(remaining) AS t
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_constraint c
                JOIN tenant.scoped_tables child ON child.relid OPERATOR(pg_catalog.=) c.conrelid
                JOIN tenant.scoped_tables parent ON parent.relid OPERATOR(pg_catalog.=) c.confrelid
                WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                  AND COALESCE(parent.parent, parent.relid) OPERATOR(pg_catalog.=) t
                  AND COALESCE(child.parent, child.relid) OPERATOR(pg_catalog.<>) t
                  AND COALESCE(child.parent, child.relid) OPERATOR(pg_catalog.=) ANY (remaining));
        IF ready IS NULL THEN
            ready := remaining;  -- a cycle: the foreign keys decide
        END IF;
        FOREACH top IN ARRAY ready LOOP
            rel := top;
            SELECT s.tenant_column INTO tenant_column FROM tenant.scoped_tables s WHERE s.relid OPERATOR(pg_catalog.=) top;
            RETURN NEXT;
        END LOOP;
        SELECT pg_catalog.array_agg(t ORDER BY t::text) INTO remaining
            FROM pg_catalog.unnest(remaining) AS t WHERE t OPERATOR(pg_catalog.<>) ALL (ready);
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
