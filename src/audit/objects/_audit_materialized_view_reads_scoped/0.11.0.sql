-- materialized_view_reads_scoped: a materialized view holds a copy of what it read, outside row level security (followed through views, CTEs and SQL functions).
CREATE OR REPLACE FUNCTION tenant._audit_materialized_view_reads_scoped()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT m.oid::regclass::text, 'materialized_view_reads_scoped', 'critical',
       format('holds a copy of the rows of %s, readable without their policies', array_to_string(r.tables, ', ')),
       format('DROP MATERIALIZED VIEW %s;', m.oid::regclass)
  FROM pg_class m
  JOIN pg_namespace n ON n.oid = m.relnamespace
 CROSS JOIN LATERAL (SELECT tenant._reads_scoped(m.oid) AS tables) r
 WHERE m.relkind = 'm' AND cardinality(r.tables) > 0 AND n.nspname <> 'tenant'
$$;
REVOKE ALL ON FUNCTION tenant._audit_materialized_view_reads_scoped() FROM PUBLIC;
