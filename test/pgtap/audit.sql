-- tenant.audit(): each rule is planted, found, and its fix SQL makes the finding go away.
BEGIN;
SELECT plan(49);

CREATE ROLE audit_owner NOLOGIN;
CREATE ROLE audit_app NOLOGIN;
SET LOCAL pg_tenant.guarded_schemas = 'public';
-- The audit finds what a database without the DDL guard (or from before it) has accumulated.
SET LOCAL pg_tenant.enforce = off;

-- How many findings of a rule on an object.
CREATE FUNCTION pg_temp.findings(p_rule text, p_object text) RETURNS int LANGUAGE sql AS
    $$ SELECT count(*)::int FROM tenant.audit() WHERE rule = p_rule AND object = p_object $$;
CREATE FUNCTION pg_temp.fix_of(p_rule text, p_object text) RETURNS text LANGUAGE sql AS
    $$ SELECT fix FROM tenant.audit() WHERE rule = p_rule AND object = p_object LIMIT 1 $$;
-- A correctly protected table owned by a NOLOGIN role.
CREATE FUNCTION pg_temp.good_table(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE public.%I (tenant_id uuid NOT NULL, id bigint NOT NULL, code text, PRIMARY KEY (tenant_id, id))', name);
    EXECUTE format('ALTER TABLE public.%I OWNER TO audit_owner', name);
    PERFORM tenant.protect(format('public.%I', name)::regclass);
END $$;

-- A clean schema has no findings.
SELECT pg_temp.good_table('clean');
SELECT tenant.exempt('public.countries', 'shared reference data');
CREATE TABLE public.countries (code text PRIMARY KEY);
SELECT is((SELECT count(*)::int FROM tenant.audit()), 0, 'a clean schema has no findings');

-- unprotected_table
CREATE TABLE public.a_unprotected (tenant_id uuid, v int);
ALTER TABLE public.a_unprotected OWNER TO audit_owner;
SELECT is(pg_temp.findings('unprotected_table', 'public.a_unprotected'), 1, 'unprotected_table found');
SELECT is((SELECT severity FROM tenant.audit() WHERE object = 'public.a_unprotected' AND rule = 'unprotected_table'),
          'critical', 'unprotected_table is critical');
SELECT lives_ok(pg_temp.fix_of('unprotected_table', 'public.a_unprotected'), 'unprotected_table fix runs');
SELECT is(pg_temp.findings('unprotected_table', 'public.a_unprotected'), 0, 'unprotected_table gone');

-- rls_not_enabled
SELECT pg_temp.good_table('b_disabled');
ALTER TABLE public.b_disabled DISABLE ROW LEVEL SECURITY;
SELECT is(pg_temp.findings('rls_not_enabled', 'public.b_disabled'), 1, 'rls_not_enabled found');
SELECT lives_ok(pg_temp.fix_of('rls_not_enabled', 'public.b_disabled'), 'rls_not_enabled fix runs');
SELECT is(pg_temp.findings('rls_not_enabled', 'public.b_disabled'), 0, 'rls_not_enabled gone');

-- rls_not_forced
SELECT pg_temp.good_table('c_not_forced');
ALTER TABLE public.c_not_forced NO FORCE ROW LEVEL SECURITY;
SELECT is(pg_temp.findings('rls_not_forced', 'public.c_not_forced'), 1, 'rls_not_forced found');
SELECT lives_ok(pg_temp.fix_of('rls_not_forced', 'public.c_not_forced'), 'rls_not_forced fix runs');
SELECT is(pg_temp.findings('rls_not_forced', 'public.c_not_forced'), 0, 'rls_not_forced gone');

-- policy_missing
SELECT pg_temp.good_table('d_policy_dropped');
DROP POLICY tenant_isolation_guard ON public.d_policy_dropped;
SELECT is(pg_temp.findings('policy_missing', 'public.d_policy_dropped'), 1, 'policy_missing found');
SELECT lives_ok(pg_temp.fix_of('policy_missing', 'public.d_policy_dropped'), 'policy_missing fix runs');
SELECT is(pg_temp.findings('policy_missing', 'public.d_policy_dropped'), 0, 'policy_missing gone');

-- policy_changed (a widened USING, and a policy limited to one role)
SELECT pg_temp.good_table('e_policy_changed');
ALTER POLICY tenant_isolation ON public.e_policy_changed USING (true);
ALTER POLICY tenant_isolation_guard ON public.e_policy_changed TO audit_app;
SELECT is(pg_temp.findings('policy_changed', 'public.e_policy_changed'), 2, 'policy_changed found (both policies)');
SELECT lives_ok(pg_temp.fix_of('policy_changed', 'public.e_policy_changed'), 'policy_changed fix runs');
SELECT is(pg_temp.findings('policy_changed', 'public.e_policy_changed'), 0, 'policy_changed gone');

-- no_tenant_index
SELECT pg_temp.good_table('f_no_index');
ALTER TABLE public.f_no_index DROP CONSTRAINT f_no_index_pkey;
SELECT is(pg_temp.findings('no_tenant_index', 'public.f_no_index'), 1, 'no_tenant_index found');
SELECT lives_ok(pg_temp.fix_of('no_tenant_index', 'public.f_no_index'), 'no_tenant_index fix runs');
SELECT is(pg_temp.findings('no_tenant_index', 'public.f_no_index'), 0, 'no_tenant_index gone');

-- unique_without_tenant: a unique constraint, a partial unique index, a primary key
CREATE TABLE public.g_unique (tenant_id uuid, id bigint PRIMARY KEY, email text UNIQUE, sku text, active boolean);
CREATE UNIQUE INDEX g_unique_sku ON public.g_unique (lower(sku)) WHERE active;
ALTER TABLE public.g_unique OWNER TO audit_owner;
SELECT is((SELECT count(*)::int FROM tenant.protect('public.g_unique')), 1, 'g_unique protected');
SELECT is(pg_temp.findings('unique_without_tenant', 'public.g_unique'), 3, 'unique_without_tenant found three times');
SELECT is((SELECT array_agg(severity ORDER BY severity) FROM tenant.audit()
            WHERE rule = 'unique_without_tenant' AND object = 'public.g_unique'),
          ARRAY['high', 'high', 'warning'], 'unique constraints are high, the primary key a warning');
SELECT lives_ok((SELECT string_agg(fix, ' ') FROM tenant.audit()
                  WHERE rule = 'unique_without_tenant' AND object = 'public.g_unique'), 'unique_without_tenant fixes run');
SELECT is(pg_temp.findings('unique_without_tenant', 'public.g_unique'), 0, 'unique_without_tenant gone');
SELECT ok((SELECT pg_get_indexdef('public.g_unique_sku'::regclass) LIKE '%(tenant_id, lower(sku)) WHERE active'),
          'the rebuilt partial expression index keeps its expression and predicate');

-- no_tenant_foreign_key (0.9.0: the tenant key)
SELECT pg_temp.good_table('h_no_key');
DROP TRIGGER tenant_key ON public.h_no_key;
SELECT is(pg_temp.findings('no_tenant_foreign_key', 'public.h_no_key'), 1, 'no_tenant_foreign_key found');
SELECT lives_ok(pg_temp.fix_of('no_tenant_foreign_key', 'public.h_no_key'), 'no_tenant_foreign_key fix runs');
SELECT is(pg_temp.findings('no_tenant_foreign_key', 'public.h_no_key'), 0, 'no_tenant_foreign_key gone');

-- bypassrls_role
SELECT pg_temp.good_table('i_bypass');
CREATE ROLE audit_bypass LOGIN BYPASSRLS;
GRANT SELECT ON public.i_bypass TO audit_bypass;
SELECT is(pg_temp.findings('bypassrls_role', 'audit_bypass'), 1, 'bypassrls_role found');
SELECT lives_ok(pg_temp.fix_of('bypassrls_role', 'audit_bypass'), 'bypassrls_role fix runs');
SELECT is(pg_temp.findings('bypassrls_role', 'audit_bypass'), 0, 'bypassrls_role gone');
SELECT ok(NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'audit_bypass'), 'the role lost BYPASSRLS');

-- superuser_owner
SELECT pg_temp.good_table('j_superuser');
CREATE ROLE audit_super LOGIN SUPERUSER;
ALTER TABLE public.j_superuser OWNER TO audit_super;
SELECT is(pg_temp.findings('superuser_owner', 'public.j_superuser'), 1, 'superuser_owner found');
SELECT lives_ok(pg_temp.fix_of('superuser_owner', 'public.j_superuser'), 'superuser_owner fix runs');
SELECT is(pg_temp.findings('superuser_owner', 'public.j_superuser'), 0, 'superuser_owner gone');

-- truncate_granted (to a role and to PUBLIC)
SELECT pg_temp.good_table('k_truncate');
GRANT TRUNCATE ON public.k_truncate TO audit_app;
GRANT TRUNCATE ON public.k_truncate TO PUBLIC;
SELECT is(pg_temp.findings('truncate_granted', 'public.k_truncate'), 2, 'truncate_granted found twice');
SELECT lives_ok((SELECT string_agg(fix, ' ') FROM tenant.audit() WHERE rule = 'truncate_granted'),
                'truncate_granted fixes run');
SELECT is(pg_temp.findings('truncate_granted', 'public.k_truncate'), 0, 'truncate_granted gone');

-- view_without_security_invoker
SELECT pg_temp.good_table('l_viewed');
CREATE VIEW public.l_view AS SELECT * FROM public.l_viewed;
CREATE VIEW public.l_view_ok WITH (security_invoker = true) AS SELECT * FROM public.l_viewed;
SELECT is(pg_temp.findings('view_without_security_invoker', 'public.l_view'), 1, 'view_without_security_invoker found');
SELECT is(pg_temp.findings('view_without_security_invoker', 'public.l_view_ok'), 0, 'a security_invoker view is fine');
SELECT lives_ok(pg_temp.fix_of('view_without_security_invoker', 'public.l_view'), 'view fix runs');
SELECT is(pg_temp.findings('view_without_security_invoker', 'public.l_view'), 0, 'view_without_security_invoker gone');

-- table_without_tenant_column (guarded schema), and not in an unguarded one
CREATE TABLE public.m_shared (code text);
CREATE SCHEMA audit_unguarded;
CREATE TABLE audit_unguarded.m_elsewhere (code text);
SELECT is(pg_temp.findings('table_without_tenant_column', 'public.m_shared'), 1, 'table_without_tenant_column found');
SELECT is(pg_temp.findings('table_without_tenant_column', 'audit_unguarded.m_elsewhere'), 0,
          'tables in unguarded schemas are not reported');
SELECT ok(pg_temp.fix_of('table_without_tenant_column', 'public.m_shared') LIKE 'SELECT tenant.exempt(%',
          'the fix is an exemption');
SELECT lives_ok(pg_temp.fix_of('table_without_tenant_column', 'public.m_shared'), 'exemption fix runs');
SELECT is(pg_temp.findings('table_without_tenant_column', 'public.m_shared'), 0, 'table_without_tenant_column gone');

-- Everything planted was fixed: the schema is clean again.
SELECT is((SELECT count(*)::int FROM tenant.audit()), 0, 'after every fix, no findings');

SELECT * FROM finish();
ROLLBACK;
