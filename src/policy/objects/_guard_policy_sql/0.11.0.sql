-- The generator's CREATE POLICY of the restrictive guard on rel (src/policy/generator.cpp, the
-- one text of that policy), for tenant._restore_restrictive_guard on a Citus shard. Reads the
-- catalogs only, with the caller's rights.
CREATE OR REPLACE FUNCTION tenant._guard_policy_sql(rel regclass, tenant_column name) RETURNS text
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_guard_policy_sql';
REVOKE ALL ON FUNCTION tenant._guard_policy_sql(regclass, name) FROM PUBLIC;
