-- The scoped tables, read once per tenant.audit() and handed to each rule that judges them.
CREATE OR REPLACE FUNCTION tenant._audited_tables() RETURNS SETOF tenant._audited_table
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT t.*, s.tenant_column AS col, a.attnum, p.*
  FROM tenant.scoped_tables s
  JOIN tenant._user_tables() t ON t.relid = s.relid::oid
  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = s.tenant_column AND NOT a.attisdropped
 CROSS JOIN LATERAL tenant._protection(s.relid, s.tenant_column) AS p
$$;
REVOKE ALL ON FUNCTION tenant._audited_tables() FROM PUBLIC;
