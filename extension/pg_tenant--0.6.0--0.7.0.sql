-- pg_tenant 0.6.0 -> 0.7.0: tenant lifecycle (provisioning hooks, suspend and read-only with
-- reasons and history, purge, export and import), signed tenant context, a context that cannot
-- be forgotten (pg_tenant.missing_context, pg_tenant.require_signed_context: in the library), and
-- Citus (the registry as reference tables, triggers that do nothing on its shards, the door on
-- CREATE POLICY, limit_rows refused on Citus tables).
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.7.0'" to load this file. \quit

-- The door now also sees CREATE POLICY. Dropped first, so that it does not fire on the
-- statements below; created again at the end.
DROP EVENT TRIGGER pg_tenant_ddl_command_end;

-- Registry: the read_only status and the reason of a status.
ALTER TABLE tenant.tenants DROP CONSTRAINT tenants_status_known;
ALTER TABLE tenant.tenants ADD CONSTRAINT tenants_status_known
    CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'read_only', 'suspended']));
ALTER TABLE tenant.tenants ADD COLUMN status_reason text;
COMMENT ON COLUMN tenant.tenants.status IS 'active; read_only (reads and deletes only, TN010); suspended (cannot be entered, TN002)';
COMMENT ON COLUMN tenant.tenants.status_reason IS 'why the tenant is suspended or read-only (tenant.suspend, tenant.set_read_only)';

-- The registry's triggers do nothing on Citus's shards of it.
CREATE OR REPLACE FUNCTION tenant._touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    IF TG_NARGS OPERATOR(pg_catalog.>) 0 AND TG_ARGV[0] OPERATOR(pg_catalog.=) 'plans' THEN
        NEW.builtin := false;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER plans_touch_updated_at ON tenant.plans;
CREATE TRIGGER plans_touch_updated_at BEFORE UPDATE ON tenant.plans
    FOR EACH ROW EXECUTE FUNCTION tenant._touch_updated_at('plans');
CREATE OR REPLACE FUNCTION tenant._merge_seeded_plan() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF TG_TABLE_NAME OPERATOR(pg_catalog.<>) 'plans' THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM tenant.plans p
               WHERE p.name OPERATOR(pg_catalog.=) NEW.name AND p.builtin) THEN
        DELETE FROM tenant.plans p WHERE p.name OPERATOR(pg_catalog.=) NEW.name AND p.builtin;
    END IF;
    RETURN NEW;
END
$$;

-- tenant.create() runs the provisioning hooks.
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
    -- Provisioning hooks (src/lifecycle), in this transaction: if one fails, nothing remains.
    PERFORM tenant._run_create_hooks(new_id);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION tenant."create"(text, text, text) IS 'registers a tenant, runs the provisioning hooks (tenant.on_create) and returns its id';

-- Signed context (src/context/signed.cpp): tokens are compact JWS (HS256) under
-- pg_tenant.context_secret; tenant.sign is for trusted issuers only.
CREATE FUNCTION tenant.sign(id uuid, ttl interval, claims jsonb DEFAULT '{}') RETURNS text
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_sign';
CREATE FUNCTION tenant.set_signed(token text) RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_set_signed';
COMMENT ON FUNCTION tenant.sign(uuid, interval, jsonb) IS 'a token (JWT HS256) that enters the tenant for ttl, signed with the first key of pg_tenant.context_secret';
COMMENT ON FUNCTION tenant.set_signed(text) IS 'enters, for the current transaction, the tenant a valid token names';
REVOKE ALL ON FUNCTION tenant.sign(uuid, interval, jsonb), tenant.set_signed(text) FROM PUBLIC;

-- Citus (src/citus/citus.sql).
CREATE FUNCTION tenant._is_citus_table(rel regclass) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'pg_tenant_is_citus_table';

-- Makes the registry reference tables, so that every node reads it (pg_tenant reads each node's
-- copy). Citus refuses triggers on reference tables unless told they are safe: the registry's
-- write no other table on a shard. The foreign keys between them stay between reference tables.
-- Returns the registry's tables; running it again distributes what is not yet.
CREATE FUNCTION tenant.distribute_registry() RETURNS SETOF regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    registry_table regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
            HINT = 'CREATE EXTENSION citus on the coordinator first (README, section Citus).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node d WHERE d.groupid OPERATOR(pg_catalog.=) 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the Citus metadata' USING ERRCODE = '55000',
            DETAIL = 'pg_tenant reads the registry from the copy of its reference tables on each node, the coordinator included.',
            HINT = 'SELECT citus_set_coordinator_host(''<host>'', <port>) first.';
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    FOREACH registry_table IN ARRAY
        ARRAY['tenant.plans', 'tenant.tenants', 'tenant.plan_limits', 'tenant.tenant_limits', 'tenant.status_history']::regclass[]
    LOOP
        IF NOT tenant._is_citus_table(registry_table) THEN
            PERFORM pg_catalog.create_reference_table(registry_table);
        END IF;
        RETURN NEXT registry_table;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.distribute_registry() IS
    'on a Citus coordinator: makes the registry (plans, tenants, limits, status history) reference tables that every node reads';

-- Called by the DDL door on a shard that just got tenant_isolation_guard from Citus, as
-- permissive: the same policy again, restrictive.
CREATE FUNCTION tenant._restore_restrictive_guard(shard regclass) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    guard record;
BEGIN
    SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
      INTO guard
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) shard AND p.polname OPERATOR(pg_catalog.=) 'tenant_isolation_guard'
       AND p.polpermissive;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP POLICY tenant_isolation_guard ON %s', shard);
    EXECUTE pg_catalog.format('CREATE POLICY tenant_isolation_guard ON %s AS RESTRICTIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                              shard, guard.qual, guard.with_check);
    RETURN true;
END
$$;

-- For tenant.audit(): every placement of every scoped Citus table, read on its node, must have
-- row level security forced, tenant_isolation permissive, tenant_isolation_guard restrictive and
-- no other permissive policy. Nothing when Citus is not installed.
CREATE FUNCTION tenant._citus_shard_findings()
    RETURNS TABLE (object text, rule text, severity text, detail text, fix text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    scoped regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    FOR scoped IN SELECT s.relid FROM tenant.scoped_tables s WHERE tenant._is_citus_table(s.relid) ORDER BY s.relid::text LOOP
        RETURN QUERY
            SELECT scoped::text, 'citus_shard_policy', 'critical',
                   pg_catalog.format('shard %s on %s:%s: %s', r.shardid, r.nodename, r.nodeport, r.result),
                   pg_catalog.format('SELECT tenant.unprotect(%L); SELECT tenant.protect(%L);', scoped::text, scoped::text)
              FROM pg_catalog.run_command_on_placements(scoped, $shard$
SELECT CASE WHEN c.relrowsecurity AND c.relforcerowsecurity
             AND (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation' AND p.polpermissive) = 1
             AND (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation_guard' AND NOT p.polpermissive) = 1
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> 'tenant_isolation')
            THEN 'ok'
            ELSE 'row level security ' || CASE WHEN c.relforcerowsecurity THEN 'forced' ELSE 'not forced' END || ', policies: ' ||
                 coalesce((SELECT pg_catalog.string_agg(p.polname || CASE WHEN p.polpermissive THEN ' (permissive)' ELSE ' (restrictive)' END, ', ' ORDER BY p.polname)
                             FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid), 'none')
       END
  FROM pg_catalog.pg_class c WHERE c.oid = '%s'::pg_catalog.regclass
$shard$) r
             WHERE r.result IS DISTINCT FROM 'ok';
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION tenant._is_citus_table(regclass), tenant.distribute_registry(), tenant._restore_restrictive_guard(regclass),
    tenant._citus_shard_findings()
FROM PUBLIC;

-- The audit reads every shard of a scoped Citus table.
CREATE OR REPLACE FUNCTION tenant.audit()
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
    SELECT s.relid::regclass::text, 'no_tenant_foreign_key', 'high',
           format('%I has no foreign key to tenant.tenants: rows can name tenants that do not exist', s.col),
           format('ALTER TABLE %s ADD FOREIGN KEY (%I) REFERENCES tenant.tenants (id) ON DELETE CASCADE;',
                  s.relid::regclass, s.col)
      FROM scoped s
     WHERE NOT s.has_foreign_key AND NOT tenant._is_citus_table('tenant.tenants')
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

-- Row quotas refuse Citus tables.
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
    IF tenant._is_citus_table(p_rel) THEN
        RAISE EXCEPTION 'table % is a Citus table: its rows cannot be counted exactly', p_rel USING ERRCODE = '0A000',
            DETAIL = 'A row quota counts in triggers, and Citus does not run triggers of a distributed table where all its rows meet.',
            HINT = 'Count with tenant.meter() and pg_tenant.meter_backend = redis: Redis counts across the Citus cluster.';
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

-- For tenant.purge(): forgets the tenant's meters, its shared memory entries when the
-- transaction commits and its Redis keys now.
CREATE FUNCTION tenant._forget_meters(tenant uuid) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_forget_meters';
REVOKE ALL ON FUNCTION tenant._forget_meters(uuid) FROM PUBLIC;

-- Provisioning hooks: tenant.create() calls each, lowest priority first, with the new tenant's
-- id and the new tenant as the context, as the hook's owner (src/lifecycle/lifecycle.cpp).
CREATE TABLE tenant.create_hooks (
    fn        regprocedure PRIMARY KEY,
    priority  integer NOT NULL DEFAULT 100,
    added_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    added_by  name NOT NULL DEFAULT pg_catalog.session_user()
);
COMMENT ON TABLE tenant.create_hooks IS 'functions (uuid) that tenant.create() runs for a new tenant, by priority';
SELECT pg_catalog.pg_extension_config_dump('tenant.create_hooks', '');
REVOKE ALL ON tenant.create_hooks FROM PUBLIC;

CREATE FUNCTION tenant._run_create_hooks(tenant uuid) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_run_create_hooks';

CREATE FUNCTION tenant.on_create(fn regprocedure, priority integer DEFAULT 100) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_fn ALIAS FOR $1;
    p_priority ALIAS FOR $2;
BEGIN
    IF p_fn IS NULL OR p_priority IS NULL THEN
        RAISE EXCEPTION 'hook and priority must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                   WHERE p.oid OPERATOR(pg_catalog.=) p_fn AND p.prokind OPERATOR(pg_catalog.=) 'f'
                     AND p.proargtypes OPERATOR(pg_catalog.=) '2950'::pg_catalog.oidvector) THEN
        RAISE EXCEPTION 'a provisioning hook is a function of one uuid argument: % is not', p_fn
            USING ERRCODE = '42P13', HINT = 'CREATE FUNCTION hook(tenant uuid) RETURNS void ...';
    END IF;
    INSERT INTO tenant.create_hooks AS h (fn, priority) VALUES (p_fn, p_priority)
        ON CONFLICT ON CONSTRAINT create_hooks_pkey DO UPDATE SET priority = EXCLUDED.priority;
END
$$;
COMMENT ON FUNCTION tenant.on_create(regprocedure, integer) IS
    'registers fn(tenant uuid) to run in tenant.create(), lowest priority first, as its owner';

CREATE FUNCTION tenant.remove_hook(fn regprocedure) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'hook must not be NULL' USING ERRCODE = '22004';
    END IF;
    DELETE FROM tenant.create_hooks h WHERE h.fn OPERATOR(pg_catalog.=) $1;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tenant.remove_hook(regprocedure) IS 'unregisters a provisioning hook; false when it was not registered';

-- Status changes made by the functions below, each with who, when and why.
CREATE TABLE tenant.status_history (
    tenant_id   uuid NOT NULL REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    status      text NOT NULL,
    reason      text,
    changed_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    changed_by  name NOT NULL DEFAULT pg_catalog.session_user()
);
CREATE INDEX status_history_tenant ON tenant.status_history (tenant_id, changed_at);
COMMENT ON TABLE tenant.status_history IS 'every change of a tenant''s status or reason made by tenant.suspend, set_read_only or resume: who (the session user), when, why';
SELECT pg_catalog.pg_extension_config_dump('tenant.status_history', '');
REVOKE ALL ON tenant.status_history FROM PUBLIC;

-- Records the change here, not in a trigger: on Citus a trigger of tenant.tenants also fires on
-- each shard of it, where it must not write other tables.
CREATE FUNCTION tenant._set_status(id uuid, new_status text, reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM tenant._check_tenant($1);
    UPDATE tenant.tenants t SET status = $2, status_reason = $3
     WHERE t.id OPERATOR(pg_catalog.=) $1
       AND (t.status IS DISTINCT FROM $2 OR t.status_reason IS DISTINCT FROM $3);
    IF FOUND THEN
        INSERT INTO tenant.status_history (tenant_id, status, reason) VALUES ($1, $2, $3);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tenant.suspend(id uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'suspended', NULL) $$;
CREATE FUNCTION tenant.suspend(id uuid, reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'suspended', $2) $$;
CREATE FUNCTION tenant.set_read_only(id uuid, reason text DEFAULT NULL) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'read_only', $2) $$;
CREATE OR REPLACE FUNCTION tenant.resume(id uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'active', NULL) $$;
-- suspend(uuid) and resume(uuid) no longer call the two-argument _set_status.
DROP FUNCTION tenant._set_status(uuid, text);
COMMENT ON FUNCTION tenant.suspend(uuid) IS 'suspends a tenant: it cannot be entered, and sessions in it are refused (TN002)';
COMMENT ON FUNCTION tenant.suspend(uuid, text) IS 'suspends a tenant, recording why';
COMMENT ON FUNCTION tenant.set_read_only(uuid, text) IS 'makes a tenant read-only: reads and deletes pass, inserts and updates fail (TN010)';
COMMENT ON FUNCTION tenant.resume(uuid) IS 'makes a suspended or read-only tenant active again';

-- Top-level scoped tables (partitions and inheritance children go with their parent), children
-- before parents: a table comes after every other scoped table that references it by a foreign
-- key. Tables in a cycle of foreign keys come last, in name order.
CREATE FUNCTION tenant._scoped_tables_children_first()
    RETURNS TABLE (rel regclass, tenant_column name)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    remaining regclass[];
    ready regclass[];
    top regclass;
BEGIN
    SELECT pg_catalog.array_agg(s.relid ORDER BY s.relid::text) INTO remaining
        FROM tenant.scoped_tables s WHERE s.parent IS NULL;
    WHILE pg_catalog.cardinality(remaining) OPERATOR(pg_catalog.>) 0 LOOP
        -- the tables no other remaining table references (a table's partitions count as it)
        SELECT pg_catalog.array_agg(t ORDER BY t::text) INTO ready
            FROM pg_catalog.unnest(remaining) AS t
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_constraint c
                JOIN tenant.scoped_tables child ON child.relid OPERATOR(pg_catalog.=) c.conrelid
                JOIN tenant.scoped_tables parent ON parent.relid OPERATOR(pg_catalog.=) c.confrelid
                WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                  AND COALESCE(parent.parent, parent.relid) OPERATOR(pg_catalog.=) t
                  AND COALESCE(child.parent, child.relid) OPERATOR(pg_catalog.<>) t
                  AND COALESCE(child.parent, child.relid) OPERATOR(pg_catalog.=) ANY (remaining));
        IF ready IS NULL THEN
            ready := remaining;  -- a cycle: the foreign keys decide
        END IF;
        FOREACH top IN ARRAY ready LOOP
            rel := top;
            SELECT s.tenant_column INTO tenant_column FROM tenant.scoped_tables s WHERE s.relid OPERATOR(pg_catalog.=) top;
            RETURN NEXT;
        END LOOP;
        SELECT pg_catalog.array_agg(t ORDER BY t::text) INTO remaining
            FROM pg_catalog.unnest(remaining) AS t WHERE t OPERATOR(pg_catalog.<>) ALL (ready);
    END LOOP;
END
$$;

-- What purges leave behind: that the tenant was erased, when, by whom, how many rows.
CREATE TABLE tenant.purges (
    tenant_id   uuid NOT NULL,
    slug        text NOT NULL,
    forced      boolean NOT NULL,
    deleted     jsonb NOT NULL,
    purged_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    purged_by   name NOT NULL DEFAULT pg_catalog.session_user()
);
COMMENT ON TABLE tenant.purges IS 'one row per tenant.purge(): tenant id and slug, rows deleted per table, when and by whom';
SELECT pg_catalog.pg_extension_config_dump('tenant.purges', '');
REVOKE ALL ON tenant.purges FROM PUBLIC;

CREATE FUNCTION tenant.purge(id uuid, force boolean DEFAULT false)
    RETURNS TABLE (rel regclass, deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    p_force ALIAS FOR $2;
    target tenant.tenants%ROWTYPE;
    counts jsonb := '{}';
    scoped record;
BEGIN
    IF p_id IS NULL OR p_force IS NULL THEN
        RAISE EXCEPTION 'tenant and force must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- Locked: no status change or second purge runs meanwhile.
    SELECT * INTO target FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tenant._check_tenant(p_id);
    END IF;
    IF target.status OPERATOR(pg_catalog.<>) 'suspended' AND NOT p_force THEN
        RAISE EXCEPTION 'tenant "%" is %, not suspended', target.slug, target.status USING ERRCODE = '55000',
            HINT = 'Suspend it first (tenant.suspend), or call tenant.purge(id, force => true).';
    END IF;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() LOOP
        rel := scoped.rel;
        EXECUTE pg_catalog.format('DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) $1', scoped.rel, scoped.tenant_column)
            USING p_id;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        counts := counts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(scoped.rel::text, deleted);
        RETURN NEXT;
    END LOOP;
    DELETE FROM tenant.meter_counts m WHERE m.tenant_id OPERATOR(pg_catalog.=) p_id;
    PERFORM tenant._forget_meters(p_id);
    -- Limits, row counts and status history go with the registry row (ON DELETE CASCADE).
    DELETE FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    INSERT INTO tenant.purges (tenant_id, slug, forced, deleted) VALUES (p_id, target.slug, p_force, counts);
END
$$;
COMMENT ON FUNCTION tenant.purge(uuid, boolean) IS
    'erases a suspended tenant (or any, with force): its rows in every scoped table, children first, its meters, limits and registry row; tenant.purges keeps the record';

-- Export format 1: JSON lines. The first line describes the export; every other line is one row
-- of a scoped table: {"table": "schema.table", "row": {column: value, ...}} without the tenant
-- column, parents before children, each table's rows in the order of their text.
CREATE FUNCTION tenant.export(id uuid) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    target tenant.tenants%ROWTYPE;
    scoped record;
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_tenant(p_id);
    SELECT * INTO target FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    RETURN NEXT pg_catalog.jsonb_build_object(
        'format', 'pg_tenant export', 'format_version', 1,
        'extension_version', (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_tenant'),
        'tenant', pg_catalog.jsonb_build_object('id', target.id, 'slug', target.slug, 'name', target.name, 'plan', target.plan),
        'exported_at', pg_catalog.now())::text;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() WITH ORDINALITY AS s(rel, tenant_column, n)
                  ORDER BY s.n DESC LOOP
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''table'', %L, ''row'', pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.-) %L)::text
               FROM %s r WHERE r.%I OPERATOR(pg_catalog.=) $1 ORDER BY r::text',
            scoped.rel::text, scoped.tenant_column, scoped.rel, scoped.tenant_column) USING p_id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.export(uuid) IS 'every row of the tenant in every scoped table, as JSON lines (format 1, README)';

-- Loads an export (its lines joined by newlines) into an existing tenant that has no rows yet,
-- the same or another id. Only scoped tables are written, in the export's order.
CREATE FUNCTION tenant.import(id uuid, export text) RETURNS TABLE (rel regclass, inserted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_id ALIAS FOR $1;
    p_export ALIAS FOR $2;
    header jsonb;
    scoped record;
    batch record;
    columns text;
    holds boolean;
BEGIN
    IF p_id IS NULL OR p_export IS NULL THEN
        RAISE EXCEPTION 'tenant and export must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._check_tenant(p_id);
    PERFORM 1 FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    BEGIN
        header := pg_catalog.split_part(p_export, E'\n', 1)::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        header := NULL;
    END;
    IF header IS NULL OR pg_catalog.jsonb_typeof(header) OPERATOR(pg_catalog.<>) 'object'
       OR header OPERATOR(pg_catalog.->>) 'format' IS DISTINCT FROM 'pg_tenant export'
       OR header OPERATOR(pg_catalog.->>) 'format_version' IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'not a pg_tenant export (format 1)' USING ERRCODE = '22023',
            DETAIL = 'The first line must be the header tenant.export() writes.';
    END IF;
    FOR scoped IN SELECT * FROM tenant._scoped_tables_children_first() LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s r WHERE r.%I OPERATOR(pg_catalog.=) $1)',
                                  scoped.rel, scoped.tenant_column) INTO holds USING p_id;
        IF holds THEN
            RAISE EXCEPTION 'tenant % already has rows in %', p_id, scoped.rel USING ERRCODE = '55000',
                HINT = 'Import into a tenant without data (a new one, or one purged and created again).';
        END IF;
    END LOOP;
    FOR batch IN
        WITH lines AS (
            SELECT l.n, l.line::jsonb AS line
            FROM pg_catalog.unnest(pg_catalog.string_to_array(p_export, E'\n')) WITH ORDINALITY AS l(line, n)
            WHERE l.n OPERATOR(pg_catalog.>) 1 AND pg_catalog.btrim(l.line) OPERATOR(pg_catalog.<>) '')
        SELECT l.line OPERATOR(pg_catalog.->>) 'table' AS name, pg_catalog.min(l.n) AS first,
               pg_catalog.jsonb_agg(l.line OPERATOR(pg_catalog.->) 'row' ORDER BY l.n) AS rows
        FROM lines l GROUP BY 1 ORDER BY 2
    LOOP
        SELECT s.relid AS rel, s.tenant_column INTO scoped FROM tenant.scoped_tables s
            WHERE s.parent IS NULL AND s.relid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(batch.name);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table "%" of the export is not a tenant-scoped table here', batch.name USING ERRCODE = '42P01';
        END IF;
        -- every stored column (generated ones are computed again); the tenant column is the target
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) scoped.rel AND a.attnum OPERATOR(pg_catalog.>) 0
              AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
        EXECUTE pg_catalog.format(
            'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_catalog.jsonb_populate_recordset(NULL::%s, $1)',
            scoped.rel, columns, columns, scoped.rel)
            USING (SELECT pg_catalog.jsonb_agg(r OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(scoped.tenant_column, p_id))
                   FROM pg_catalog.jsonb_array_elements(batch.rows) AS r);
        GET DIAGNOSTICS inserted = ROW_COUNT;
        rel := scoped.rel;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.import(uuid, text) IS 'loads a tenant.export() into a tenant without rows (same or another id)';

REVOKE ALL ON FUNCTION tenant._run_create_hooks(uuid), tenant.on_create(regprocedure, integer),
    tenant.remove_hook(regprocedure), tenant._set_status(uuid, text, text),
    tenant.suspend(uuid), tenant.suspend(uuid, text), tenant.set_read_only(uuid, text), tenant.resume(uuid),
    tenant._scoped_tables_children_first(), tenant.purge(uuid, boolean),
    tenant.export(uuid), tenant.import(uuid, text)
FROM PUBLIC;

CREATE EVENT TRIGGER pg_tenant_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE SCHEMA', 'ALTER SCHEMA', 'ALTER TABLE',
                 'CREATE POLICY', 'ALTER POLICY', 'CREATE MATERIALIZED VIEW', 'CREATE RULE')
    EXECUTE FUNCTION tenant._on_ddl_command_end();
ALTER EVENT TRIGGER pg_tenant_ddl_command_end ENABLE ALWAYS;
