-- A limit's enforcement (0.9.0): hard or soft. The one definition: the CHECK constraints of
-- plan_limits and tenant_limits and tenant._check_enforcement call it.
CREATE OR REPLACE FUNCTION tenant._is_valid_enforcement(enforcement text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$
SELECT $1 OPERATOR(pg_catalog.=) ANY (ARRAY['hard', 'soft'])
$$;
REVOKE ALL ON FUNCTION tenant._is_valid_enforcement(text) FROM PUBLIC;
