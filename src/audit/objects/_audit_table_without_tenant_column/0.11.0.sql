-- table_without_tenant_column: in a guarded schema, a shared table is a recorded decision (tenant.exempt).
CREATE OR REPLACE FUNCTION tenant._audit_table_without_tenant_column()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT t.relid::regclass::text, 'table_without_tenant_column', 'high',
       format('schema %I is guarded, and the table has no tenant column and no exemption', t.nspname),
       format('SELECT tenant.exempt(%L, %L);', t.relid::regclass::text, 'shared: <why>')
  FROM tenant._user_tables() t
 WHERE t.nspname = ANY (tenant.guarded_schemas())
   AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = tenant.tenant_column()
                      AND NOT a.attisdropped)
   AND NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
   AND NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
   AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = t.relid)
$$;
REVOKE ALL ON FUNCTION tenant._audit_table_without_tenant_column() FROM PUBLIC;
