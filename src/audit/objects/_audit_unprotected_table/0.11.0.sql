-- unprotected_table: a table with the tenant column that tenant.protect() never saw.
CREATE OR REPLACE FUNCTION tenant._audit_unprotected_table()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT t.relid::regclass::text, 'unprotected_table', 'critical',
       format('has a uuid column "%s" but no generated policies: every tenant reads every row', a.attname),
       format('SELECT tenant.protect(%L);', t.relid::regclass::text)
  FROM tenant._user_tables() t
  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                     AND a.atttypid = 'uuid'::regtype
 WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
$$;
REVOKE ALL ON FUNCTION tenant._audit_unprotected_table() FROM PUBLIC;
