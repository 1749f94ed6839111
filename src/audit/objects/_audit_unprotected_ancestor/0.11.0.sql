-- unprotected_ancestor: a query on an unprotected ancestor reads the rows of a scoped table without its policies.
CREATE OR REPLACE FUNCTION tenant._audit_unprotected_ancestor(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
WITH RECURSIVE ancestry AS (  -- every ancestor of every table, with the table just under it
    SELECT i.inhrelid AS relid, i.inhparent AS ancestor, i.inhrelid AS below FROM pg_inherits i
    UNION
    SELECT a.relid, i.inhparent, a.ancestor FROM ancestry a JOIN pg_inherits i ON i.inhrelid = a.ancestor)
SELECT s.relid::regclass::text, 'unprotected_ancestor', 'critical',
       format('its ancestor %s is not protected: a query on it reads this table''s rows without its policies',
              a.ancestor::regclass),
       CASE WHEN EXISTS (SELECT 1 FROM pg_attribute c WHERE c.attrelid = a.ancestor AND c.attname = s.col
                            AND c.atttypid = 'uuid'::regtype AND NOT c.attisdropped)
            THEN format('SELECT tenant.protect(%L, %L);', a.ancestor::regclass::text, s.col)
            WHEN p.relkind = 'p' THEN format('ALTER TABLE %s DETACH PARTITION %s;', a.ancestor::regclass, a.below::regclass)
            ELSE format('ALTER TABLE %s NO INHERIT %s;', a.below::regclass, a.ancestor::regclass) END
  FROM unnest($1) s
  JOIN ancestry a ON a.relid = s.relid
  JOIN pg_class p ON p.oid = a.ancestor
 WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables t WHERE t.relid::oid = a.ancestor)
$$;
REVOKE ALL ON FUNCTION tenant._audit_unprotected_ancestor(tenant._audited_table[]) FROM PUBLIC;
