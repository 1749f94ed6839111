-- rule_on_scoped_table: a rule can copy or redirect every tenant's rows past row level security.
CREATE OR REPLACE FUNCTION tenant._audit_rule_on_scoped_table(scoped tenant._audited_table[])
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT s.relid::regclass::text, 'rule_on_scoped_table', 'critical',
       format('rule %I can copy or redirect every tenant''s rows past row level security', r.rulename),
       format('DROP RULE %I ON %s;', r.rulename, s.relid::regclass)
  FROM unnest($1) s JOIN pg_rewrite r ON r.ev_class = s.relid AND r.rulename <> '_RETURN'
$$;
REVOKE ALL ON FUNCTION tenant._audit_rule_on_scoped_table(tenant._audited_table[]) FROM PUBLIC;
