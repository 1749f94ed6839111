-------------------------------------------------------------------------------------------------
-- Isolation audit: one SQL query over the catalogs. A scoped table's protection comes from the
-- one reader protect and the guard use (tenant._protection), the guarded schemas from the
-- guard's own parser (tenant.guarded_schemas()), the tenant column from its setting.
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant.audit()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
WITH RECURSIVE
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
ancestry AS (             -- every ancestor of every table, with the table just under it
    SELECT i.inhrelid AS relid, i.inhparent AS ancestor, i.inhrelid AS below FROM pg_inherits i
    UNION
    SELECT a.relid, i.inhparent, a.ancestor FROM ancestry a JOIN pg_inherits i ON i.inhrelid = a.ancestor),
extension_functions AS (
    SELECT d.objid AS oid FROM pg_depend d
     WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'),
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
    -- (named before 0.9.0, when the key was a foreign key; the name stays for those who match on it)
    SELECT s.relid::regclass::text, 'no_tenant_foreign_key', 'high',
           format('%I has no tenant key (trigger tenant_key): rows can name tenants that do not exist, and deleted tenants'' rows stay', s.col),
           format('SELECT tenant.protect(%L, %L);', s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_tenant_key AND NOT tenant._is_citus_table('tenant.tenants')
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
    UNION ALL
    -- A query on an unprotected ancestor reads the rows of a scoped table without its policies.
    SELECT s.relid::regclass::text, 'unprotected_ancestor', 'critical',
           format('its ancestor %s is not protected: a query on it reads this table''s rows without its policies',
                  a.ancestor::regclass),
           CASE WHEN EXISTS (SELECT 1 FROM pg_attribute c WHERE c.attrelid = a.ancestor AND c.attname = s.col
                                AND c.atttypid = 'uuid'::regtype AND NOT c.attisdropped)
                THEN format('SELECT tenant.protect(%L, %L);', a.ancestor::regclass::text, s.col)
                WHEN p.relkind = 'p' THEN format('ALTER TABLE %s DETACH PARTITION %s;', a.ancestor::regclass, a.below::regclass)
                ELSE format('ALTER TABLE %s NO INHERIT %s;', a.below::regclass, a.ancestor::regclass) END
      FROM scoped s
      JOIN ancestry a ON a.relid = s.relid
      JOIN pg_class p ON p.oid = a.ancestor
     WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables t WHERE t.relid::oid = a.ancestor)
    UNION ALL
    -- A tenant column that is not uuid cannot hold tenant ids: protect refuses the table.
    SELECT t.relid::regclass::text, 'tenant_column_not_uuid', 'high',
           format('column %I is %s, not uuid: it cannot hold tenant ids, and the table cannot be protected',
                  a.attname, format_type(a.atttypid, a.atttypmod)),
           format('ALTER TABLE %s ALTER COLUMN %I TYPE uuid USING %I::uuid;', t.relid::regclass, a.attname, a.attname)
      FROM user_tables t
      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped
                         AND a.atttypid <> 'uuid'::regtype
     WHERE NOT EXISTS (SELECT 1 FROM tenant.exemptions e WHERE e.schema_name = t.nspname AND e.table_name = t.relname)
    UNION ALL
    -- A materialized view holds a copy of what it read, outside row level security (followed
    -- through views, CTEs and SQL functions).
    SELECT m.oid::regclass::text, 'materialized_view_reads_scoped', 'critical',
           format('holds a copy of the rows of %s, readable without their policies', array_to_string(r.tables, ', ')),
           format('DROP MATERIALIZED VIEW %s;', m.oid::regclass)
      FROM pg_class m
      JOIN pg_namespace n ON n.oid = m.relnamespace
     CROSS JOIN LATERAL (SELECT tenant._reads_scoped(m.oid) AS tables) r
     WHERE m.relkind = 'm' AND cardinality(r.tables) > 0 AND n.nspname <> 'tenant'
    UNION ALL
    -- A rule can copy or redirect every tenant's rows past row level security.
    SELECT s.relid::regclass::text, 'rule_on_scoped_table', 'critical',
           format('rule %I can copy or redirect every tenant''s rows past row level security', r.rulename),
           format('DROP RULE %I ON %s;', r.rulename, s.relid::regclass)
      FROM scoped s JOIN pg_rewrite r ON r.ev_class = s.relid AND r.rulename <> '_RETURN'
    UNION ALL
    -- Triggers are legitimate; these two kinds deserve a review (warnings).
    SELECT s.relid::regclass::text, 'trigger_security_definer', 'warning',
           format('trigger %I runs %s with the rights of its owner %I, who may not be bound by row level security',
                  g.tgname, p.oid::regprocedure, pg_get_userbyid(p.proowner)),
           format('ALTER FUNCTION %s SECURITY INVOKER;', p.oid::regprocedure)
      FROM scoped s
      JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
      JOIN pg_proc p ON p.oid = g.tgfoid
     WHERE p.prosecdef AND p.oid NOT IN (SELECT f.oid FROM extension_functions f)
    UNION ALL
    SELECT s.relid::regclass::text, 'trigger_writes_unscoped', 'warning',
           format('trigger %I runs %s, which writes to %s: rows copied there are readable without the policies',
                  g.tgname, p.oid::regprocedure, array_to_string(w.unscoped, ', ')),
           format('DROP TRIGGER %I ON %s;', g.tgname, s.relid::regclass)
      FROM scoped s
      JOIN pg_trigger g ON g.tgrelid = s.relid AND NOT g.tgisinternal
      JOIN pg_proc p ON p.oid = g.tgfoid
     CROSS JOIN LATERAL (SELECT array_agg(x ORDER BY x::text) AS unscoped FROM unnest(tenant._writes_to(p.oid)) AS x
                          WHERE NOT EXISTS (SELECT 1 FROM tenant.scoped_tables k WHERE k.relid = x)) w
     WHERE w.unscoped IS NOT NULL AND p.oid NOT IN (SELECT f.oid FROM extension_functions f)
    UNION ALL
    -- On Citus: every shard of a scoped table, on every node (src/citus/citus.sql).
    SELECT c.object, c.rule, c.severity, c.detail, c.fix FROM tenant._citus_shard_findings() c
)
SELECT * FROM findings AS f(object, rule, severity, detail, fix)
 ORDER BY CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, f.object, f.rule, f.detail
$$;
COMMENT ON FUNCTION tenant.audit() IS 'one row per isolation finding: object, rule, severity, detail, fix SQL';

REVOKE ALL ON FUNCTION tenant.audit() FROM PUBLIC;
