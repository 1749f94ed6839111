-- tenant_column_not_uuid: a tenant column that is not uuid cannot hold tenant ids: protect refuses the table.
CREATE OR REPLACE FUNCTION tenant._audit_tenant_column_not_uuid()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT t.relid::regclass::text, 'tenant_column_not_uuid', 'high',
       format('column %I is %s, not uuid: it cannot hold tenant ids, and the table cannot be protected',
              a.attname, format_type(a.atttypid, a.atttypmod)),
       format('ALTER TABLE %s ALTER COLUMN %I TYPE uuid USING %I::uuid;', t.relid::regclass, a.attname, a.attname)
  FROM tenant._user_tables() t
  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                     AND a.atttypid <> 'uuid'::regtype
 WHERE NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
$$;
REVOKE ALL ON FUNCTION tenant._audit_tenant_column_not_uuid() FROM PUBLIC;
