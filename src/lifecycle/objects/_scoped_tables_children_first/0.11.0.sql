-- Top-level scoped tables (tenant._top_scoped_tables: partitions and inheritance children go
-- with their parent), children before parents: a table comes after every other scoped table that references it by a foreign
-- key. Tables in a cycle of foreign keys come last, in name order.
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
