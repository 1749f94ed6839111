-- A scoped table as the audit's rules see it: still a table of users, with its tenant column
-- (col, attnum) and its protection as the one reader sees it (tenant._protection).
CREATE TYPE tenant._audited_table AS (
    relid oid, relname name, nspname name, relkind "char", relowner oid, relacl aclitem[],
    col name, attnum smallint,
    column_is_uuid boolean, column_not_null boolean, has_tenant_key boolean, has_leading_index boolean,
    rls_enabled boolean, rls_forced boolean, isolation_policy text, guard_policy text);
