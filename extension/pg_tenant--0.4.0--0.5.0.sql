-- pg_tenant 0.4.0 -> 0.5.0: each rule defined once (C++), and DDL through one door.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.5.0'" to load this file. \quit

-- The six event triggers of 0.2.0-0.4.0 give way to the DDL door (created at the end). Dropped
-- first, so that none of them fires on the DDL below.
DROP EVENT TRIGGER pg_tenant_forget_dropped_tables;
DROP EVENT TRIGGER pg_tenant_guard_ddl_command_end;
DROP EVENT TRIGGER pg_tenant_guard_sql_drop;
DROP EVENT TRIGGER pg_tenant_protect_new_children;
DROP EVENT TRIGGER pg_tenant_row_quota_ddl;
DROP EVENT TRIGGER pg_tenant_row_quota_drop;
DROP FUNCTION tenant._forget_dropped_tables(), tenant._guard_ddl_command_end(), tenant._guard_sql_drop(),
    tenant._protect_new_children(), tenant._row_quota_ddl(), tenant._row_quota_dropped();

-- Registry: the plan and tenant checks are C++ (one TN003 and one TN001 text).

CREATE OR REPLACE FUNCTION tenant._check_plan(plan text) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_plan';
CREATE OR REPLACE FUNCTION tenant._check_tenant(tenant uuid) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_tenant';
CREATE OR REPLACE FUNCTION tenant."create"(name text, slug text, plan text DEFAULT 'free') RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_name ALIAS FOR $1;
    p_slug ALIAS FOR $2;
    p_plan ALIAS FOR $3;
    new_id uuid;
BEGIN
    IF p_name IS NULL OR p_slug IS NULL OR p_plan IS NULL THEN
        RAISE EXCEPTION 'tenant name, slug and plan must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.btrim(p_name) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'tenant name must not be empty' USING ERRCODE = '22023';
    END IF;
    IF NOT tenant.is_valid_slug(p_slug) THEN
        RAISE EXCEPTION 'invalid tenant slug: "%"', p_slug USING ERRCODE = '22023',
            DETAIL = 'A slug is a DNS label: 1 to 63 of a-z, 0-9 and "-", not starting or ending with "-", and not shaped like a uuid.';
    END IF;
    PERFORM tenant._check_plan(p_plan);
    BEGIN
        INSERT INTO tenant.tenants (name, slug, plan) VALUES (p_name, p_slug, p_plan)
            RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'tenant slug "%" is already taken', p_slug USING ERRCODE = '23505';
    END;
    RETURN new_id;
END
$$;
CREATE OR REPLACE FUNCTION tenant._set_status(id uuid, new_status text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM tenant._check_tenant($1);
    UPDATE tenant.tenants t SET status = $2 WHERE t.id OPERATOR(pg_catalog.=) $1;
END
$$;

-- Limits: the resource-name and period rules, the effective limit and TN006 are C++.
CREATE FUNCTION tenant.is_valid_resource(resource text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_is_valid_resource';
COMMENT ON FUNCTION tenant.is_valid_resource(text) IS 'true when resource is a valid resource name: 1 to 63 of a-z, 0-9, _, . and -';
CREATE FUNCTION tenant.is_valid_period(period text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_is_valid_period';
COMMENT ON FUNCTION tenant.is_valid_period(text) IS 'true when period is second, minute, hour, day, month or none';
ALTER TABLE tenant.plan_limits
    DROP CONSTRAINT plan_limits_resource_format,
    ADD CONSTRAINT plan_limits_resource_format CHECK (tenant.is_valid_resource(resource)),
    DROP CONSTRAINT plan_limits_period_known,
    ADD CONSTRAINT plan_limits_period_known CHECK (tenant.is_valid_period(period));
ALTER TABLE tenant.tenant_limits
    DROP CONSTRAINT tenant_limits_resource_format,
    ADD CONSTRAINT tenant_limits_resource_format CHECK (tenant.is_valid_resource(resource)),
    DROP CONSTRAINT tenant_limits_period_known,
    ADD CONSTRAINT tenant_limits_period_known CHECK (tenant.is_valid_period(period));
ALTER TABLE tenant.row_quotas
    DROP CONSTRAINT row_quotas_resource_format,
    ADD CONSTRAINT row_quotas_resource_format CHECK (tenant.is_valid_resource(resource));
CREATE OR REPLACE FUNCTION tenant._check_resource(resource text) RETURNS void
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_resource';
CREATE OR REPLACE FUNCTION tenant._check_limit(resource text, "limit" bigint, period text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $2 IS NULL OR $3 IS NULL THEN
        RAISE EXCEPTION 'limit and period must not be NULL' USING ERRCODE = '22004',
            HINT = 'To make a resource unlimited, clear its limit.';
    END IF;
    PERFORM tenant._check_resource($1);
    IF $2 OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'a limit must not be negative, not %', $2 USING ERRCODE = '22023',
            HINT = 'A limit of 0 refuses the resource; clearing the limit makes it unlimited.';
    END IF;
    IF NOT tenant.is_valid_period($3) THEN
        RAISE EXCEPTION 'unknown period: "%"', $3 USING ERRCODE = '22023',
            HINT = 'A period is one of second, minute, hour, day, month or none.';
    END IF;
    IF $3 OPERATOR(pg_catalog.<>) 'none'
       AND EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.resource OPERATOR(pg_catalog.=) $1) THEN
        RAISE EXCEPTION 'resource "%" counts rows (tenant.limit_rows): its limit cannot have a period', $1
            USING ERRCODE = '22023', HINT = 'Use period ''none'' for a row quota.';
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION tenant.effective_limit(tenant uuid, resource text,
                                       OUT "limit" bigint, OUT period text, OUT source text, OUT upgrade_url text)
    RETURNS record
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_effective_limit';
CREATE OR REPLACE FUNCTION tenant._raise_limit_reached(resource text, "limit" bigint, used bigint, upgrade_url text,
                                            period text DEFAULT 'none')
    RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'pg_tenant_raise_limit_reached';

-- Policies: one reader of a table's protection (tenant._protection replaces _policy_state), one
-- walker of a table's partitions and children, the configured tenant column as the default.
CREATE FUNCTION tenant.tenant_column() RETURNS name
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_tenant_column';
COMMENT ON FUNCTION tenant.tenant_column() IS 'the configured tenant column name (pg_tenant.tenant_column)';
CREATE FUNCTION tenant._protection(rel regclass, tenant_column name,
                                   OUT column_is_uuid boolean, OUT column_not_null boolean,
                                   OUT has_foreign_key boolean, OUT has_leading_index boolean,
                                   OUT rls_enabled boolean, OUT rls_forced boolean,
                                   OUT isolation_policy text, OUT guard_policy text)
    RETURNS record
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_protection';
CREATE FUNCTION tenant._table_tree(rel regclass) RETURNS SETOF regclass
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_table_tree';
CREATE OR REPLACE FUNCTION tenant.protect(rel regclass, tenant_column name DEFAULT tenant.tenant_column())
    RETURNS SETOF regclass
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_protect';
CREATE OR REPLACE FUNCTION tenant.policy_sql(rel regclass, tenant_column name DEFAULT tenant.tenant_column())
    RETURNS text
    LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_policy_sql';
CREATE OR REPLACE FUNCTION tenant.protect_all(schema name DEFAULT 'public', tenant_column name DEFAULT tenant.tenant_column())
    RETURNS SETOF regclass
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t regclass;
BEGIN
    IF schema IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'schema and tenant column must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000';
    END IF;
    -- Top-level tables only: partitions and children are protected with their parents.
    FOR t IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
               AND a.attname OPERATOR(pg_catalog.=) tenant_column AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname OPERATOR(pg_catalog.=) schema
           AND c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
         ORDER BY c.relname
    LOOP
        RETURN QUERY SELECT * FROM tenant.protect(t, tenant_column);
    END LOOP;
END
$$;
DROP FUNCTION tenant._policy_state(oid, name, boolean, name);

-- Guard and audit: one parser of pg_tenant.guarded_schemas.
CREATE FUNCTION tenant.guarded_schemas() RETURNS name[]
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_guarded_schemas';
COMMENT ON FUNCTION tenant.guarded_schemas() IS 'the schemas of pg_tenant.guarded_schemas, as the DDL guard reads them';
CREATE OR REPLACE FUNCTION tenant.audit()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
WITH
user_tables AS (          -- tables of users: not catalogs, not temporary, not an extension's
    SELECT c.oid AS relid, c.relname, n.nspname, c.relkind, c.relowner, c.relacl
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')),
scoped AS (
    SELECT t.*, s.tenant_column AS col, a.attnum, p.*
      FROM tenant.scoped_tables s
      JOIN user_tables t ON t.relid = s.relid::oid
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = s.tenant_column AND NOT a.attisdropped
     CROSS JOIN LATERAL tenant._protection(s.relid, s.tenant_column) AS p),
findings AS (
    -- A table with the tenant column that tenant.protect() never saw.
    SELECT t.relid::regclass::text, 'unprotected_table', 'critical',
           format('has a uuid column "%s" but no generated policies: every tenant reads every row', a.attname),
           format('SELECT tenant.protect(%L);', t.relid::regclass::text)
      FROM user_tables t
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                         AND a.atttypid = 'uuid'::regtype
     WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
    UNION ALL
    SELECT s.relid::regclass::text, 'rls_not_enabled', 'critical',
           'row level security is disabled: the policies are ignored',
           format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', s.relid::regclass)
      FROM scoped s WHERE NOT s.rls_enabled
    UNION ALL
    SELECT s.relid::regclass::text, 'rls_not_forced', 'critical',
           'row level security is not forced: the table owner reads every tenant''s rows',
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', s.relid::regclass)
      FROM scoped s WHERE NOT s.rls_forced
    UNION ALL
    SELECT s.relid::regclass::text,
           CASE st.state WHEN 'missing' THEN 'policy_missing' ELSE 'policy_changed' END, 'critical',
           format('generated policy %I is %s', st.policy,
                  CASE st.state WHEN 'missing' THEN 'missing' ELSE 'not what tenant.protect() created' END),
           format('SELECT tenant.protect(%L, %L);', s.relid::regclass::text, s.col)
      FROM scoped s
     CROSS JOIN LATERAL (VALUES ('tenant_isolation', s.isolation_policy),
                                ('tenant_isolation_guard', s.guard_policy)) AS st(policy, state)
     WHERE st.state <> 'current'
    UNION ALL
    SELECT s.relid::regclass::text, 'no_tenant_index', 'warning',
           format('no index leads with %I: every tenant-scoped query scans the whole table', s.col),
           format('CREATE INDEX ON %s (%I);', s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_leading_index
    UNION ALL
    -- A uniqueness check across tenants tells one tenant which values another one uses.
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
      FROM scoped s
      JOIN pg_index i ON i.indrelid = s.relid AND i.indisunique
      JOIN pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = s.relid AND k.contype IN ('p', 'u')
     CROSS JOIN LATERAL (SELECT string_agg(pg_get_indexdef(i.indexrelid, n, true), ', ' ORDER BY n) AS list
                           FROM generate_series(1, i.indnkeyatts) AS n) AS cols
     WHERE NOT (s.attnum = ANY (i.indkey::int2[]))
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)  -- flagged on the parent
    UNION ALL
    SELECT s.relid::regclass::text, 'no_tenant_foreign_key', 'high',
           format('%I has no foreign key to tenant.tenants: rows can name tenants that do not exist', s.col),
           format('ALTER TABLE %s ADD FOREIGN KEY (%I) REFERENCES tenant.tenants (id) ON DELETE CASCADE;',
                  s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_foreign_key
    UNION ALL
    -- Row level security never applies to superusers and BYPASSRLS roles.
    SELECT quote_ident(r.rolname), 'bypassrls_role', 'high',
           format('login role %I has BYPASSRLS and can use %s: it reads every tenant''s rows', r.rolname,
                  string_agg(DISTINCT s.relid::regclass::text, ', ')),
           format('ALTER ROLE %I NOBYPASSRLS;', r.rolname)
      FROM pg_roles r
      JOIN scoped s ON s.relowner = r.oid
                    OR EXISTS (SELECT 1 FROM aclexplode(s.relacl) g WHERE g.grantee = r.oid)
     WHERE r.rolcanlogin AND r.rolbypassrls AND NOT r.rolsuper
     GROUP BY r.rolname
    UNION ALL
    SELECT s.relid::regclass::text, 'superuser_owner', 'high',
           format('owned by login superuser %I, to whom row level security never applies', r.rolname),
           format('DO $fix$ BEGIN CREATE ROLE tenant_table_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $fix$; ALTER TABLE %s OWNER TO tenant_table_owner;',
                  s.relid::regclass)
      FROM scoped s JOIN pg_roles r ON r.oid = s.relowner
     WHERE r.rolcanlogin AND r.rolsuper
    UNION ALL
    -- TRUNCATE ignores row level security: a grantee can erase every tenant's rows.
    SELECT s.relid::regclass::text, 'truncate_granted', 'high',
           format('TRUNCATE is granted to %s; row level security does not apply to TRUNCATE',
                  CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END),
           format('REVOKE TRUNCATE ON %s FROM %s;', s.relid::regclass,
                  CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END)
      FROM scoped s CROSS JOIN LATERAL aclexplode(s.relacl) g
     WHERE g.privilege_type = 'TRUNCATE' AND g.grantee <> s.relowner
    UNION ALL
    -- A view runs with its owner's rights unless security_invoker is set.
    SELECT v.oid::regclass::text, 'view_without_security_invoker', 'critical',
           format('reads %s with the rights of its owner %I, not of the querying role',
                  string_agg(DISTINCT s.relid::regclass::text, ', '), pg_get_userbyid(v.relowner)),
           format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass)
      FROM pg_class v
      JOIN pg_rewrite rw ON rw.ev_class = v.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                      AND d.refclassid = 'pg_class'::regclass
      JOIN scoped s ON s.relid = d.refobjid
     WHERE v.relkind = 'v'
       AND NOT coalesce('security_invoker=true' = ANY (v.reloptions)
                     OR 'security_invoker=on' = ANY (v.reloptions), false)
     GROUP BY v.oid, v.relowner
    UNION ALL
    -- In a guarded schema, a shared table is a recorded decision.
    SELECT t.relid::regclass::text, 'table_without_tenant_column', 'high',
           format('schema %I is guarded, and the table has no tenant column and no exemption', t.nspname),
           format('SELECT tenant.exempt(%L, %L);', t.relid::regclass::text, 'shared: <why>')
      FROM user_tables t
     WHERE t.nspname = ANY (tenant.guarded_schemas())
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = tenant.tenant_column()
                          AND NOT a.attisdropped)
       AND NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid::oid = t.relid)
       AND NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = t.relid)
)
SELECT * FROM findings AS f(object, rule, severity, detail, fix)
 ORDER BY CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, f.object, f.rule, f.detail
$$;

-- Row quotas: counting in C++; the DDL bookkeeping as steps of the door.
CREATE OR REPLACE FUNCTION tenant._row_quota_apply(resource text, tenants uuid[], deltas bigint[], enforce boolean)
    RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_apply';
CREATE OR REPLACE FUNCTION tenant._row_quota_inserted() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE OR REPLACE FUNCTION tenant._row_quota_deleted() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE OR REPLACE FUNCTION tenant._row_quota_updated() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE OR REPLACE FUNCTION tenant.limit_rows(rel regclass, resource text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_rel ALIAS FOR $1;
    p_resource ALIAS FOR $2;
    col name;
    existing record;
    member regclass;
BEGIN
    IF p_rel IS NULL OR p_resource IS NULL THEN
        RAISE EXCEPTION 'table and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._require_owner(p_rel);
    PERFORM tenant._check_resource(p_resource);
    SELECT s.tenant_column INTO col FROM tenant.scoped_tables s WHERE s.relid OPERATOR(pg_catalog.=) p_rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not tenant-scoped', p_rel USING ERRCODE = '55000',
            DETAIL = 'A row quota counts rows per tenant, and only a protected table has a trusted tenant column.',
            HINT = pg_catalog.format('Protect it first: SELECT tenant.protect(%L);', p_rel::pg_catalog.text);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) p_rel) THEN
        RAISE EXCEPTION 'table % is a partition or child', p_rel USING ERRCODE = '55000',
            DETAIL = 'A statement on its parent would not fire its triggers.',
            HINT = 'Count the rows of the parent: tenant.limit_rows(parent, resource) counts every partition and child.';
    END IF;
    SELECT q.resource, q.root INTO existing FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) p_rel;
    IF FOUND AND existing.resource OPERATOR(pg_catalog.<>) p_resource THEN
        RAISE EXCEPTION 'table % already counts rows for "%"', p_rel, existing.resource USING ERRCODE = '55000',
            HINT = 'Run tenant.unlimit_rows() first to count it for another resource.';
    END IF;
    SELECT t INTO member FROM tenant._table_tree(p_rel) AS t
     WHERE t OPERATOR(pg_catalog.<>) p_rel
       AND EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) t AND q.root IS NULL)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % has its own row quota', member USING ERRCODE = '55000',
            HINT = pg_catalog.format('Run tenant.unlimit_rows(%L) first.', member::pg_catalog.text);
    END IF;
    IF EXISTS (SELECT 1 FROM tenant.plan_limits l
                WHERE l.resource OPERATOR(pg_catalog.=) p_resource AND l.period OPERATOR(pg_catalog.<>) 'none'
               UNION ALL
               SELECT 1 FROM tenant.tenant_limits l
                WHERE l.resource OPERATOR(pg_catalog.=) p_resource AND l.period OPERATOR(pg_catalog.<>) 'none') THEN
        RAISE EXCEPTION 'resource "%" has a limit with a period', p_resource USING ERRCODE = '22023',
            DETAIL = 'A count of rows has no window; periods are for meters.',
            HINT = 'Give the rows another resource name, or set its limits with period ''none''.';
    END IF;
    PERFORM tenant._row_quota_require_read_committed('tenant.limit_rows()');

    -- Triggers first: CREATE TRIGGER waits for the writers in flight and holds off new ones
    -- until commit, so the count below (a fresh READ COMMITTED snapshot) misses nothing.
    FOR member IN SELECT * FROM tenant._table_tree(p_rel) LOOP
        PERFORM tenant._row_quota_install(member, p_resource, col);
        INSERT INTO tenant.row_quotas (relid, resource, tenant_column, root)
             VALUES (member, p_resource, col, CASE WHEN member OPERATOR(pg_catalog.=) p_rel THEN NULL ELSE p_rel END)
        ON CONFLICT ON CONSTRAINT row_quotas_pkey DO NOTHING;
    END LOOP;
    RETURN tenant._row_quota_recount(p_resource);
END
$$;
CREATE FUNCTION tenant._row_quota_after_ddl(touched oid[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    m record;
    c record;
BEGIN
    IF touched IS NULL OR NOT EXISTS (
        SELECT 1 FROM tenant.row_quotas q
         WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (touched)
            OR q.relid::pg_catalog.oid IN (SELECT i.inhparent FROM pg_catalog.pg_inherits i
                                            WHERE i.inhrelid OPERATOR(pg_catalog.=) ANY (touched))
            OR q.relid::pg_catalog.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                                            WHERE i.inhparent OPERATOR(pg_catalog.=) ANY (touched))) THEN
        RETURN;
    END IF;

    SELECT q.relid, q.resource, i.inhparent::pg_catalog.regclass AS parent INTO c
      FROM tenant.row_quotas q
      JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) q.relid
     WHERE q.root IS NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % counts rows for "%" and cannot become a partition or child of %', c.relid, c.resource, c.parent
            USING ERRCODE = '55000',
                  DETAIL = 'Statements on the parent would not fire its quota triggers.',
                  HINT = 'Run tenant.unlimit_rows() on it first; tenant.limit_rows() on the parent counts every partition.';
    END IF;

    -- New members.
    FOR m IN
        SELECT t AS relid, q.relid AS root, q.resource, q.tenant_column
          FROM tenant.row_quotas q
         CROSS JOIN LATERAL tenant._table_tree(q.relid) AS t
         WHERE q.root IS NULL AND t OPERATOR(pg_catalog.<>) q.relid
           AND NOT EXISTS (SELECT 1 FROM tenant.row_quotas x WHERE x.relid OPERATOR(pg_catalog.=) t)
    LOOP
        PERFORM tenant._row_quota_install(m.relid, m.resource, m.tenant_column);
        INSERT INTO tenant.row_quotas (relid, resource, tenant_column, root)
             VALUES (m.relid, m.resource, m.tenant_column, m.root)
        ON CONFLICT ON CONSTRAINT row_quotas_pkey DO NOTHING;
        IF FOUND THEN
            SELECT * INTO c FROM tenant._row_quota_count(m.relid, m.tenant_column, true);
            IF c.tenants IS NOT NULL THEN
                PERFORM tenant._row_quota_require_read_committed('attaching a table with rows to a counted table');
                PERFORM tenant._row_quota_apply(m.resource, c.tenants, c.counts, false);
            END IF;
        END IF;
    END LOOP;

    -- Members that left the tree (DETACH PARTITION, NO INHERIT) but still exist.
    FOR m IN
        SELECT q.relid, q.resource, q.tenant_column
          FROM tenant.row_quotas q
         WHERE q.root IS NOT NULL
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) q.relid::pg_catalog.oid)
           AND NOT EXISTS (SELECT 1 FROM tenant._table_tree(q.root) AS t WHERE t OPERATOR(pg_catalog.=) q.relid)
    LOOP
        DELETE FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) m.relid;
        IF FOUND THEN
            SELECT * INTO c FROM tenant._row_quota_count(m.relid, m.tenant_column, true);
            IF c.tenants IS NOT NULL THEN
                PERFORM tenant._row_quota_apply(m.resource, c.tenants,
                                                ARRAY(SELECT OPERATOR(pg_catalog.-) n FROM pg_catalog.unnest(c.counts) AS n),
                                                false);
            END IF;
            PERFORM tenant._row_quota_uninstall(m.relid);
        END IF;
    END LOOP;

    IF NOT tenant._row_quota_restoring() THEN
        SELECT q.relid, g.tgname INTO c
          FROM tenant.row_quotas q
          JOIN pg_catalog.pg_trigger g ON g.tgrelid OPERATOR(pg_catalog.=) q.relid
         WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (touched)
           AND g.tgfoid OPERATOR(pg_catalog.=) ANY (tenant._row_quota_functions())
           AND g.tgenabled OPERATOR(pg_catalog.<>) 'A'
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'trigger % of table % must stay ENABLE ALWAYS', c.tgname, c.relid USING ERRCODE = '55000',
                  DETAIL = 'The table''s row quota is kept by it.',
                  HINT = 'tenant.unlimit_rows() removes the quota with its triggers.';
        END IF;
    END IF;
END
$$;
CREATE FUNCTION tenant._row_quota_after_drop(dropped oid[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    resources text[] := '{}';
    r record;
    res text;
BEGIN
    IF dropped IS NOT NULL AND pg_catalog.cardinality(dropped) OPERATOR(pg_catalog.>) 0 THEN
        FOR r IN DELETE FROM tenant.row_quotas q
                  WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (dropped)
                     OR q.root::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (dropped)
                 RETURNING q.relid, q.resource
        LOOP
            resources := resources OPERATOR(pg_catalog.||) r.resource;
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) r.relid::pg_catalog.oid) THEN
                PERFORM tenant._row_quota_uninstall(r.relid);  -- a child that outlived its dropped root
            END IF;
        END LOOP;
        FOR res IN SELECT DISTINCT u FROM pg_catalog.unnest(resources) AS u LOOP
            IF EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.resource OPERATOR(pg_catalog.=) res) THEN
                PERFORM tenant._row_quota_recount(res);
            ELSE
                DELETE FROM tenant.row_counts c WHERE c.resource OPERATOR(pg_catalog.=) res;
            END IF;
        END LOOP;
    END IF;

    IF NOT tenant._row_quota_restoring() THEN
        SELECT q.relid INTO r
          FROM tenant.row_quotas q
         WHERE (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g
                 WHERE g.tgrelid OPERATOR(pg_catalog.=) q.relid
                   AND g.tgfoid OPERATOR(pg_catalog.=) ANY (tenant._row_quota_functions())) OPERATOR(pg_catalog.<) 4
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'the row quota triggers of table % cannot be dropped', r.relid USING ERRCODE = '55000',
                  HINT = 'tenant.unlimit_rows() removes the quota with its triggers.';
        END IF;
    END IF;
END
$$;
DROP FUNCTION tenant._row_quota_reached(text, uuid, bigint), tenant._row_quota_tree(regclass);

-- Usage: effective limits from tenant.effective_limit().
CREATE OR REPLACE FUNCTION tenant.usage(tenant uuid DEFAULT tenant.current_id())
    RETURNS TABLE (resource text, used bigint, "limit" bigint, period text, window_start timestamptz, kind text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_tenant ALIAS FOR $1;
    caller name := tenant._calling_role();
    tenant_plan text;
BEGIN
    IF p_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant given and no tenant is set' USING ERRCODE = '22004',
            HINT = 'Call tenant.set() first, or pass a tenant id.';
    END IF;
    IF p_tenant IS DISTINCT FROM tenant.current_id()
       AND NOT pg_catalog.has_table_privilege(caller, 'tenant.row_counts', 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for the usage of another tenant' USING ERRCODE = '42501',
            DETAIL = pg_catalog.format('Role %I may read the usage of the current tenant only.', caller),
            HINT = 'Call tenant.usage() inside the tenant (tenant.set()); reading every tenant''s usage needs SELECT on tenant.row_counts.';
    END IF;
    PERFORM tenant._check_tenant(p_tenant);
    SELECT t.plan INTO tenant_plan FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_tenant;
    RETURN QUERY
    WITH limited AS (
        SELECT l.resource FROM tenant.tenant_limits l WHERE l.tenant_id OPERATOR(pg_catalog.=) p_tenant
        UNION
        SELECT l.resource FROM tenant.plan_limits l WHERE l.plan OPERATOR(pg_catalog.=) tenant_plan),
    counted AS (
        SELECT q.resource FROM tenant.row_quotas q
        UNION
        SELECT c.resource FROM tenant.row_counts c WHERE c.tenant_id OPERATOR(pg_catalog.=) p_tenant),
    met AS (
        SELECT DISTINCT ON (u.resource) u.resource, u.window_start, u.used
          FROM tenant._meter_usage(p_tenant) AS u
         ORDER BY u.resource, u.window_start DESC NULLS LAST),
    names AS (
        SELECT l.resource FROM limited l
        UNION SELECT c.resource FROM counted c
        UNION SELECT m.resource FROM met m)
    SELECT n.resource,
           CASE WHEN k.resource IS NOT NULL THEN COALESCE(rc.rows, 0)
                ELSE COALESCE(m.used, 0) END::bigint,
           l."limit",
           l.period,
           CASE WHEN k.resource IS NULL THEN m.window_start END,
           CASE WHEN k.resource IS NOT NULL THEN 'rows' ELSE 'meter' END
      FROM names n
     CROSS JOIN LATERAL tenant.effective_limit(p_tenant, n.resource) AS l
      LEFT JOIN counted k ON k.resource OPERATOR(pg_catalog.=) n.resource
      LEFT JOIN tenant.row_counts rc ON rc.tenant_id OPERATOR(pg_catalog.=) p_tenant
                                    AND rc.resource OPERATOR(pg_catalog.=) n.resource
      LEFT JOIN met m ON m.resource OPERATOR(pg_catalog.=) n.resource
     ORDER BY n.resource;
END
$$;

-- The DDL door.
CREATE FUNCTION tenant._on_ddl_command_end() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_on_ddl_command_end';
CREATE EVENT TRIGGER pg_tenant_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA', 'ALTER TABLE',
                 'ALTER POLICY', 'CREATE MATERIALIZED VIEW')
    EXECUTE FUNCTION tenant._on_ddl_command_end();
ALTER EVENT TRIGGER pg_tenant_ddl_command_end ENABLE ALWAYS;

CREATE FUNCTION tenant._on_sql_drop() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_on_sql_drop';
CREATE EVENT TRIGGER pg_tenant_sql_drop ON sql_drop
    EXECUTE FUNCTION tenant._on_sql_drop();
ALTER EVENT TRIGGER pg_tenant_sql_drop ENABLE ALWAYS;

REVOKE ALL ON FUNCTION tenant.is_valid_resource(text), tenant.is_valid_period(text), tenant.tenant_column(),
    tenant._protection(regclass, name), tenant._table_tree(regclass), tenant.guarded_schemas(),
    tenant._row_quota_after_ddl(oid[]), tenant._row_quota_after_drop(oid[]),
    tenant._on_ddl_command_end(), tenant._on_sql_drop() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant.tenant_column() TO PUBLIC;
