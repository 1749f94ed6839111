-- One definition per rule (0.5.0): the guarded-schema list, the tenant column, the resource-name
-- and period rules, the protection state and the SQLSTATEs are each defined once, and every
-- user of a rule (guard, audit, protect, CHECK constraints) gives the same answer.
BEGIN;
SELECT plan(46);

CREATE FUNCTION pg_temp.rules(object text) RETURNS text[] LANGUAGE sql AS
    $$ SELECT coalesce(array_agg(rule ORDER BY rule), '{}') FROM tenant.audit() a WHERE a.object = $1 $$;

-------------------------------------------------------------------------------------------------
-- pg_tenant.guarded_schemas: parsed once, as PostgreSQL parses search_path
-------------------------------------------------------------------------------------------------
CREATE SCHEMA "Billing";
CREATE SCHEMA billing2;
-- Tables that exist before the schemas are guarded: the audit must find both.
CREATE TABLE "Billing".old_invoices (id int);
CREATE TABLE billing2.old_invoices (id int);
SET LOCAL pg_tenant.guarded_schemas = '"Billing", BILLING2';
SELECT is(tenant.guarded_schemas(), ARRAY['Billing', 'billing2']::name[],
          'a quoted name keeps its case, an unquoted one is folded to lower case');
SELECT throws_ok($$CREATE TABLE "Billing".invoices (id int)$$, 'TN004', NULL,
                 'the guard refuses a table without the tenant column in the quoted schema');
SELECT throws_ok($$CREATE TABLE billing2.invoices (id int)$$, 'TN004', NULL,
                 '... and in the unquoted one');
SELECT throws_ok($$CREATE TABLE "Billing".copy AS SELECT 1 AS id$$, 'TN004', NULL,
                 '... also through CREATE TABLE AS');
SELECT is(pg_temp.rules('"Billing".old_invoices'), ARRAY['table_without_tenant_column'],
          'the audit reports a table without the tenant column in the quoted schema');
SELECT is(pg_temp.rules('billing2.old_invoices'), ARRAY['table_without_tenant_column'],
          '... and in the unquoted one');
SELECT lives_ok($$CREATE TABLE "Billing".lines (tenant_id uuid NOT NULL, id int)$$,
                'a table with the tenant column is allowed there');
SELECT throws_ok($$SET LOCAL pg_tenant.guarded_schemas = '"unterminated'$$, '22023', NULL,
                 'a list that does not parse is refused when set');
SELECT is(current_setting('pg_tenant.guarded_schemas'), '"Billing", BILLING2', '... and the list in force stays');
SELECT lives_ok($$SET LOCAL pg_tenant.guarded_schemas = ''$$, 'an empty list guards nothing');
SELECT is(tenant.guarded_schemas(), '{}'::name[], '... and reads back empty');
SELECT lives_ok($$CREATE TABLE billing2.free_for_all (id int)$$, '... so a table without the column is allowed');
SET LOCAL pg_tenant.guarded_schemas = 'public';

-- A temporary table of the same name does not hide the table CREATE TABLE AS makes.
CREATE TEMP TABLE shadowed (id int);
SELECT throws_ok($$CREATE TABLE public.shadowed AS SELECT 1 AS id$$, 'TN004', NULL,
                 'CREATE TABLE AS next to a temporary table of the same name is checked (qualified)');
SELECT throws_ok($$SET LOCAL search_path = public; CREATE TABLE shadowed AS SELECT 1 AS id$$, 'TN004', NULL,
                 '... and unqualified');
RESET search_path;

-------------------------------------------------------------------------------------------------
-- pg_tenant.tenant_column: the guard, auto_protect, the audit and protect's default
-------------------------------------------------------------------------------------------------
SET LOCAL pg_tenant.tenant_column = 'org_id';
SELECT is(tenant.tenant_column(), 'org_id'::name, 'tenant.tenant_column() reads the setting');
SELECT throws_ok($$CREATE TABLE public.orgs_plain (tenant_id uuid, id int)$$, 'TN004',
                 'table public.orgs_plain has no tenant column',
                 'the guard requires the configured column, not tenant_id');
SELECT lives_ok($$CREATE TABLE public.orgs_items (org_id uuid, id int)$$, 'the configured column is enough');
CREATE ROLE pt_structure_owner NOLOGIN;
ALTER TABLE public.orgs_items OWNER TO pt_structure_owner;  -- a superuser owner is a finding of its own
SELECT is(pg_temp.rules('public.orgs_items'), ARRAY['unprotected_table'], 'the audit finds it unprotected');
SELECT is(ARRAY(SELECT tenant.protect('public.orgs_items')::text), ARRAY['orgs_items'],
          'protect without a column protects the configured one');
SELECT is((SELECT tenant_column FROM tenant.scoped_tables WHERE relid = 'public.orgs_items'::regclass),
          'org_id'::name, '... and records it');
SELECT is(pg_temp.rules('public.orgs_items'), '{}'::text[], 'the audit is clean for it');
SELECT throws_ok($$SET LOCAL pg_tenant.tenant_column = ''$$, '22023', NULL, 'an empty tenant column is refused');
RESET pg_tenant.tenant_column;
SELECT is(tenant.tenant_column(), 'tenant_id'::name, 'the default is tenant_id');

-------------------------------------------------------------------------------------------------
-- The protection state: one reader (protect, guard and audit agree)
-------------------------------------------------------------------------------------------------
SELECT is((SELECT row(p.*)::text FROM tenant._protection('public.orgs_items', 'org_id') AS p),
          '(t,t,t,t,t,t,current,current)', 'a protected table: every part present, both policies current');
ALTER TABLE public.orgs_items ADD COLUMN note text;
SELECT is(tenant.policy_sql('public.orgs_items', 'org_id'), '', 'protect has nothing to add after an unrelated ALTER');
-- Only a superuser with the guard off can weaken it; the three readers then agree.
SET LOCAL pg_tenant.enforce = off;
ALTER POLICY tenant_isolation ON public.orgs_items USING (true);
SET LOCAL pg_tenant.enforce = error;
SELECT is((SELECT isolation_policy FROM tenant._protection('public.orgs_items', 'org_id')), 'different',
          'a changed policy reads as different');
SELECT is(pg_temp.rules('public.orgs_items'), ARRAY['policy_changed'], 'the audit reports it');
SELECT matches(tenant.policy_sql('public.orgs_items', 'org_id'), '^DROP POLICY "tenant_isolation"',
               'protect would recreate it');

-------------------------------------------------------------------------------------------------
-- The resource-name and period rules: one C++ definition behind the CHECK constraints
-------------------------------------------------------------------------------------------------
SELECT is(ARRAY[tenant.is_valid_resource('api_calls'), tenant.is_valid_resource('API'), tenant.is_valid_resource(repeat('a', 64))],
          ARRAY[true, false, false], 'tenant.is_valid_resource');
SELECT is(ARRAY[tenant.is_valid_period('hour'), tenant.is_valid_period('week')], ARRAY[true, false],
          'tenant.is_valid_period');
SELECT throws_ok($$INSERT INTO tenant.plan_limits (plan, resource, "limit") VALUES ('free', 'Bad Name', 1)$$, '23514',
                 NULL, 'the CHECK constraint of plan_limits calls the rule');
SELECT throws_ok($$INSERT INTO tenant.plan_limits (plan, resource, "limit", period) VALUES ('free', 'ok', 1, 'week')$$,
                 '23514', NULL, '... and the period rule');

-- Enforcement (hard or soft): one SQL definition behind both CHECK constraints and the checker.
SELECT is(ARRAY[tenant._is_valid_enforcement('hard'), tenant._is_valid_enforcement('soft'), tenant._is_valid_enforcement('Hard')],
          ARRAY[true, true, false], 'tenant._is_valid_enforcement');
SELECT is((SELECT array_agg(conrelid::regclass::text ORDER BY 1) FROM pg_constraint
            WHERE conname LIKE '%\_enforcement\_known' AND pg_get_constraintdef(oid) ~ '_is_valid_enforcement\(enforcement\)'),
          ARRAY['tenant.plan_limits', 'tenant.tenant_limits'], 'both enforcement CHECK constraints call the rule');
SELECT throws_ok($$INSERT INTO tenant.plan_limits (plan, resource, "limit", enforcement) VALUES ('free', 'ok', 1, 'medium')$$,
                 '23514', NULL, '... and refuse what it refuses');
SELECT throws_ok($$SELECT tenant.set_limit('free', 'ok', 1, 'none', 'medium')$$, '22023', 'unknown enforcement: "medium"',
                 'tenant._check_enforcement asks the same rule');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'tenant'::regnamespace AND p.prosrc ~ $re$'hard', 'soft'$re$),
          ARRAY['tenant._is_valid_enforcement(text)'], 'no other function writes the list');

-------------------------------------------------------------------------------------------------
-- The restrictive guard: one text (the generator), whether protect creates it or
-- tenant._restore_restrictive_guard makes Citus's permissive copy on a shard restrictive again
-- (here on a plain table: no Citus needed)
-------------------------------------------------------------------------------------------------
CREATE SCHEMA shard_like;
CREATE TABLE shard_like.items_102008 (org_id uuid NOT NULL, id int);
SELECT ok(strpos(tenant.policy_sql('shard_like.items_102008', 'org_id'),
                 tenant._guard_policy_sql('shard_like.items_102008', 'org_id') || ';') > 0,
          'tenant._guard_policy_sql is the statement protect runs for the guard');
CREATE POLICY tenant_isolation_guard ON shard_like.items_102008 AS PERMISSIVE FOR ALL TO PUBLIC
    USING (org_id OPERATOR(pg_catalog.=) tenant.current_id()) WITH CHECK (org_id OPERATOR(pg_catalog.=) tenant.current_id());
SELECT ok(tenant._restore_restrictive_guard('shard_like.items_102008'), 'a permissive copy of the guard is restored');
SELECT is((SELECT guard_policy FROM tenant._protection('shard_like.items_102008', 'org_id')), 'current',
          '... as protect creates it (restrictive, the same expressions)');
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'shard_like.items_102008'::regclass), 1, '... once');
SELECT ok(NOT tenant._restore_restrictive_guard('shard_like.items_102008'), 'a restrictive guard is left alone');
CREATE TABLE shard_like.other_102009 (org_id uuid NOT NULL, id int);
CREATE POLICY tenant_isolation_guard ON shard_like.other_102009 AS PERMISSIVE FOR ALL TO PUBLIC USING (true);
SELECT ok(NOT tenant._restore_restrictive_guard('shard_like.other_102009'), 'a permissive policy by that name that reads no column ...');
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'shard_like.other_102009'::regclass), 0, '... is dropped: it could only widen');

-------------------------------------------------------------------------------------------------
-- SQLSTATEs: the TN codes are raised by C++ only (src/bridge/errcodes.hpp)
-------------------------------------------------------------------------------------------------
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'tenant'::regnamespace AND p.prolang <> 13 AND p.prosrc ~ 'TN0[0-9][0-9]'),
          NULL, 'no SQL or PL/pgSQL function of the extension names a TN code');

-- Function markings follow PostgreSQL's rules: an IMMUTABLE function is PARALLEL SAFE.
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'tenant'::regnamespace AND p.provolatile = 'i' AND p.proparallel <> 's'),
          NULL, 'every IMMUTABLE function of the extension is PARALLEL SAFE');

SELECT * FROM finish();
ROLLBACK;
