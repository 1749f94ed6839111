-- unique_without_tenant: a uniqueness check across tenants tells one tenant which values another one uses.
CREATE OR REPLACE FUNCTION tenant._audit_unique_without_tenant(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
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
  FROM unnest($1) s
  JOIN pg_index i ON i.indrelid = s.relid AND i.indisunique
  JOIN pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = s.relid AND k.contype IN ('p', 'u')
 CROSS JOIN LATERAL (SELECT string_agg(pg_get_indexdef(i.indexrelid, n, true), ', ' ORDER BY n) AS list
                       FROM generate_series(1, i.indnkeyatts) AS n) AS cols
 WHERE NOT (s.attnum = ANY (i.indkey::int2[]))
   AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)  -- flagged on the parent
$$;
REVOKE ALL ON FUNCTION tenant._audit_unique_without_tenant(tenant._audited_table[]) FROM PUBLIC;
