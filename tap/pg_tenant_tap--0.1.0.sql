\echo Use "CREATE EXTENSION pg_tenant_tap" to load this file. \quit

-------------------------------------------------------------------------------------------------
-- pg_tenant_tap 0.1.0: pgTAP assertions for schemas that use pg_tenant.
--
-- Each function is one pgTAP assertion: it returns the TAP line of ok() (with diag() lines that
-- say what was wrong when it fails), so it counts as one test in plan() and works with
-- check_test(). None is SECURITY DEFINER: each runs with the rights of the role calling it, so a
-- test sees exactly what that role sees. Checks that write (is_isolated, quota_holds) do it in a
-- subtransaction they roll back: they leave no tenants, rows, settings or role behind.
-- Identifiers reach dynamic SQL only through regclass or format('%I'). The search_path of every
-- function is pinned at the end of this script (this schema, pgTAP's, pg_catalog, pg_temp).
-------------------------------------------------------------------------------------------------

DO $check$
BEGIN
    IF to_regprocedure('tenant.tenant_column()') IS NULL THEN
        RAISE EXCEPTION 'pg_tenant_tap needs pg_tenant 0.5.0 or later'
              USING ERRCODE = 'feature_not_supported', HINT = 'ALTER EXTENSION pg_tenant UPDATE;';
    END IF;
END
$check$;

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- Why a role is not subject to row level security, or NULL when it is.
CREATE FUNCTION @extschema@._bypasses_rls(role_name name) RETURNS text
    LANGUAGE sql STABLE
    AS $$
SELECT CASE WHEN r.rolname IS NULL THEN format('role %I does not exist', role_name)
            WHEN r.rolsuper THEN format('role %I is a superuser: row level security never applies to it', role_name)
            WHEN r.rolbypassrls THEN format('role %I has BYPASSRLS: row level security never applies to it', role_name)
       END
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname = role_name
$$;

-- One TAP line: ok() and, when there are problems, one diag() line each.
CREATE FUNCTION @extschema@._result(problems text[], description text) RETURNS text
    LANGUAGE sql
    AS $$
SELECT CASE WHEN coalesce(cardinality(problems), 0) = 0 THEN ok(true, description)
            ELSE ok(false, description) || E'\n' || diag(array_to_string(problems, E'\n'))
       END
$$;

-- The tenant column of a table: as protected, else the configured one.
CREATE FUNCTION @extschema@._tenant_column(tbl regclass) RETURNS name
    LANGUAGE sql STABLE
    AS $$
SELECT coalesce((SELECT s.tenant_column FROM tenant.scoped_tables s WHERE s.relid = tbl), tenant.tenant_column())
$$;

-- A table's name, always schema-qualified (regclass prints it bare when it is on the search_path).
CREATE FUNCTION @extschema@._qualified(tbl regclass) RETURNS text
    LANGUAGE sql STABLE
    AS $$
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = tbl
$$;

-- A slug no tenant uses yet, for the throwaway tenants of the checks.
CREATE FUNCTION @extschema@._fresh_slug(prefix text) RETURNS text
    LANGUAGE sql VOLATILE
    AS $$
SELECT prefix || '-' || substr(md5(random()::text || clock_timestamp()::text), 1, 16)
$$;

-------------------------------------------------------------------------------------------------
-- as_tenant(tenant): enters the tenant (tenant.set, by slug or id) for the rest of the
-- transaction, as the current role. Fails (instead of raising) when the tenant cannot be entered.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.as_tenant(tenant text, description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    entered uuid;
    descr text := coalesce(description, format('enter tenant %s', tenant));
BEGIN
    BEGIN
        EXECUTE 'SELECT tenant.set($1)' INTO entered USING tenant;
    EXCEPTION WHEN OTHERS THEN
        RETURN @extschema@._result(ARRAY[format('tenant.set(%L) failed: %s %s', tenant, SQLSTATE, SQLERRM)], descr);
    END;
    RETURN @extschema@._result(
        CASE WHEN tenant.current_id() IS DISTINCT FROM entered
             THEN ARRAY[format('tenant.current_id() is %s after entering %s', tenant.current_id(), entered)] END,
        descr);
END
$$;

-------------------------------------------------------------------------------------------------
-- as_role(role, tenant): SET LOCAL ROLE to an application role and enter the tenant as that role,
-- for the rest of the transaction (call it inside BEGIN ... ROLLBACK). Fails for a role that
-- row level security does not apply to (superuser, BYPASSRLS), or one that cannot enter tenants.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.as_role(role_name name, tenant text, description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    entered uuid;
    why text := @extschema@._bypasses_rls(role_name);
    descr text := coalesce(description, format('act as role %I in tenant %s', role_name, tenant));
BEGIN
    IF why IS NOT NULL THEN
        RETURN @extschema@._result(ARRAY[why], descr);
    END IF;
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', role_name);
        -- Dynamic SQL, so the role's EXECUTE right on tenant.set is checked now: PL/pgSQL keeps
        -- simple expressions prepared for the whole transaction, checked for an earlier role.
        EXECUTE 'SELECT tenant.set($1)' INTO entered USING tenant;
    EXCEPTION WHEN OTHERS THEN   -- the subtransaction also undoes the SET ROLE
        RETURN @extschema@._result(ARRAY[format('as role %I, tenant.set(%L) failed: %s %s', role_name, tenant, SQLSTATE, SQLERRM)], descr);
    END;
    RETURN @extschema@._result(
        CASE WHEN tenant.current_id() IS DISTINCT FROM entered OR current_user <> role_name
             THEN ARRAY[format('running as %I in tenant %s', current_user, tenant.current_id())] END,
        descr);
END
$$;

-------------------------------------------------------------------------------------------------
-- create_test_tenants(n, plan, prefix): registers tenants <prefix>-1 .. <prefix>-n for the test
-- (they go away with the test's ROLLBACK). Needs the right to call tenant.create().
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.create_test_tenants(n integer, plan text DEFAULT 'free', prefix text DEFAULT 'test-tenant')
    RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    descr text := format('create %s test tenants %s-1 .. %s-%s on plan %s', n, prefix, prefix, n, plan);
BEGIN
    IF n IS NULL OR n < 1 THEN
        RETURN @extschema@._result(ARRAY['n must be at least 1'], descr);
    END IF;
    BEGIN
        FOR i IN 1 .. n LOOP
            PERFORM tenant.create(format('%s %s', prefix, i), format('%s-%s', prefix, i), plan);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN   -- none of them is kept
        RETURN @extschema@._result(ARRAY[format('tenant.create failed: %s %s', SQLSTATE, SQLERRM)], descr);
    END;
    RETURN @extschema@._result(NULL, descr);
END
$$;

-------------------------------------------------------------------------------------------------
-- is_isolated(tbl, app_role): plants one row for a tenant A and two for a tenant B through the
-- table's own defaults (INSERT ... DEFAULT VALUES as app_role in each tenant), then checks as
-- app_role that in A: SELECT sees exactly A's row; UPDATE touches only it and cannot move it to
-- B; DELETE cannot reach B's rows; INSERT cannot write a row for B; with no tenant nothing is
-- visible; and B's rows are intact afterwards. Everything is rolled back. Needs the right to call
-- tenant.create() (run it as the test's superuser and name the application role).
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.is_isolated(tbl regclass, app_role name DEFAULT current_user, description text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    descr text := coalesce(description, format('%s is isolated between tenants for role %I', @extschema@._qualified(tbl), app_role));
    col name := @extschema@._tenant_column(tbl);
    why text := @extschema@._bypasses_rls(app_role);
    problems text[] := '{}';
    a uuid;
    b uuid;
    seen bigint;
    foreign_rows bigint;
    touched bigint;
BEGIN
    IF why IS NOT NULL THEN
        RETURN @extschema@._result(ARRAY[why], descr);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = tbl AND attname = col AND NOT attisdropped) THEN
        RETURN @extschema@._result(ARRAY[format('%s has no tenant column %I', @extschema@._qualified(tbl), col)], descr);
    END IF;

    BEGIN
        a := tenant.create('tenant_tap A', @extschema@._fresh_slug('tap-a'));
        b := tenant.create('tenant_tap B', @extschema@._fresh_slug('tap-b'));
        EXECUTE format('SET LOCAL ROLE %I', app_role);

        BEGIN
            EXECUTE 'SELECT tenant.set($1)' USING a;
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
            EXECUTE 'SELECT tenant.set($1)' USING b;
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('could not plant rows through the table''s defaults as %I: %s %s (give every column a default)',
                                           app_role, SQLSTATE, SQLERRM);
            RAISE SQLSTATE 'TTAP0';
        END;

        EXECUTE 'SELECT tenant.set($1)' USING a;
        BEGIN
            EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %I IS DISTINCT FROM $1) FROM %s', col, tbl)
               INTO seen, foreign_rows USING a;
            IF seen <> 1 OR foreign_rows <> 0 THEN
                problems := problems || format('SELECT in tenant A sees %s rows, %s of them not A''s (expected its 1 row)', seen, foreign_rows);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('SELECT in tenant A failed: %s %s', SQLSTATE, SQLERRM);
        END;

        BEGIN
            PERFORM pg_catalog.set_config('pg_tenant.tenant_id', '', true);
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO seen;
            IF seen <> 0 THEN
                problems := problems || format('with no tenant, SELECT sees %s rows (expected none)', seen);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('SELECT with no tenant failed: %s %s', SQLSTATE, SQLERRM);
        END;
        EXECUTE 'SELECT tenant.set($1)' USING a;

        BEGIN
            EXECUTE format('UPDATE %s SET %I = %I', tbl, col, col);
            GET DIAGNOSTICS touched = ROW_COUNT;
            IF touched <> 1 THEN
                problems := problems || format('UPDATE in tenant A changed %s rows (expected its 1 row)', touched);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('UPDATE in tenant A failed: %s %s', SQLSTATE, SQLERRM);
        END;

        BEGIN
            EXECUTE format('UPDATE %s SET %I = $1', tbl, col) USING b;
            GET DIAGNOSTICS touched = ROW_COUNT;
            IF touched > 0 THEN
                problems := problems || format('UPDATE in tenant A moved %s rows into tenant B', touched);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN NULL;   -- the policy's WITH CHECK refused it
                  WHEN OTHERS THEN
            problems := problems || format('UPDATE moving a row to tenant B failed with %s %s (expected 42501)', SQLSTATE, SQLERRM);
        END;

        BEGIN
            EXECUTE format('INSERT INTO %s (%I) VALUES ($1)', tbl, col) USING b;
            problems := problems || 'INSERT in tenant A wrote a row for tenant B'::text;
        EXCEPTION WHEN insufficient_privilege THEN NULL;
                  WHEN OTHERS THEN
            problems := problems || format('INSERT of a row for tenant B failed with %s %s (expected 42501)', SQLSTATE, SQLERRM);
        END;

        BEGIN
            EXECUTE format('DELETE FROM %s WHERE %I = $1', tbl, col) USING b;
            GET DIAGNOSTICS touched = ROW_COUNT;
            IF touched > 0 THEN
                problems := problems || format('DELETE in tenant A deleted %s rows of tenant B', touched);
            END IF;
            EXECUTE format('DELETE FROM %s', tbl);
            GET DIAGNOSTICS touched = ROW_COUNT;
            IF touched <> 1 THEN
                problems := problems || format('DELETE in tenant A deleted %s rows (expected its 1 row)', touched);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('DELETE in tenant A failed: %s %s', SQLSTATE, SQLERRM);
        END;

        BEGIN
            EXECUTE 'SELECT tenant.set($1)' USING b;
            EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', tbl, col) INTO seen USING b;
            IF seen <> 2 THEN
                problems := problems || format('tenant B has %s of its 2 rows after tenant A''s UPDATE and DELETE', seen);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('SELECT in tenant B failed: %s %s', SQLSTATE, SQLERRM);
        END;

        RAISE SQLSTATE 'TTAP0';   -- undo everything: rows, tenants, role, context
    EXCEPTION WHEN SQLSTATE 'TTAP0' THEN NULL;
              WHEN OTHERS THEN
        problems := problems || format('%s %s', SQLSTATE, SQLERRM);
    END;
    RETURN @extschema@._result(problems, descr);
END
$$;

-------------------------------------------------------------------------------------------------
-- all_tables_protected(schema): every table of the schema (partitions and children through their
-- parent) either has the tenant column and is fully protected (tenant.protect's policies, RLS
-- enabled and forced, the foreign key: tenant.audit()'s rules say so), or is a recorded exemption
-- (tenant.exempt). Needs the right to call tenant.audit().
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.all_tables_protected(schema_name name, description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    descr text := coalesce(description, format('every table of schema %I is protected or exempted', schema_name));
    problems text[];
BEGIN
    IF to_regnamespace(quote_ident(schema_name)) IS NULL THEN
        RETURN @extschema@._result(ARRAY[format('schema %I does not exist', schema_name)], descr);
    END IF;
    WITH tables AS (
        SELECT c.oid::regclass AS rel, c.relname, format('%I.%I', all_tables_protected.schema_name, c.relname) AS qualified,
               EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = tenant.tenant_column() AND NOT a.attisdropped) AS has_column
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = to_regnamespace(quote_ident(schema_name))
           AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = c.oid)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')),
    findings AS (
        SELECT to_regclass(f.object) AS rel, f.rule, f.detail
          FROM tenant.audit() f
         WHERE f.rule IN ('unprotected_table', 'rls_not_enabled', 'rls_not_forced', 'policy_missing',
                          'policy_changed', 'no_tenant_foreign_key'))
    SELECT array_agg(p ORDER BY p) INTO problems FROM (
        SELECT format('%s: no tenant column %I and no exemption (tenant.exempt)', t.qualified, tenant.tenant_column()) AS p
          FROM tables t
         WHERE NOT t.has_column
           AND NOT EXISTS (SELECT 1 FROM tenant.exemptions e
                            WHERE e.schema_name = all_tables_protected.schema_name AND e.table_name = t.relname)
           AND NOT EXISTS (SELECT 1 FROM tenant.scoped_tables s WHERE s.relid = t.rel)
        UNION ALL
        SELECT format('%s: %s (%s)', t.qualified, f.rule, f.detail)
          FROM tables t JOIN findings f ON f.rel = t.rel
    ) AS found;
    RETURN @extschema@._result(problems, descr);
END
$$;

-------------------------------------------------------------------------------------------------
-- audit_is_clean(): tenant.audit() finds nothing; each finding is one diag line with its fix.
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.audit_is_clean(description text DEFAULT 'tenant.audit() finds nothing') RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    problems text[];
BEGIN
    SELECT array_agg(format('%s %s %s: %s (fix: %s)', f.severity, f.rule, f.object, f.detail, f.fix))
      INTO problems FROM tenant.audit() f;
    RETURN @extschema@._result(problems, description);
END
$$;

-------------------------------------------------------------------------------------------------
-- quota_holds(tbl, resource): the table's rows are counted against `resource` exactly: for a
-- throwaway tenant with a limit of 2 on it, two rows go in, the third is refused with TN006,
-- tenant.usage() counts 2, and after a DELETE a row fits again. Runs as the current role;
-- everything is rolled back. Needs the rights to call tenant.create() and tenant.set_tenant_limit().
-------------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.quota_holds(tbl regclass, resource text, description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    descr text := coalesce(description, format('%s is counted exactly against resource %s', @extschema@._qualified(tbl), resource));
    col name := @extschema@._tenant_column(tbl);
    problems text[] := '{}';
    t uuid;
    used bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.relid = tbl AND q.resource = quota_holds.resource) THEN
        problems := problems || format('%s is not counted for %s (SELECT tenant.limit_rows(%L, %L))',
                                       @extschema@._qualified(tbl), resource, @extschema@._qualified(tbl), resource);
    END IF;
    BEGIN
        t := tenant.create('tenant_tap quota', @extschema@._fresh_slug('tap-q'));
        PERFORM tenant.set_tenant_limit(t, resource, 2);
        PERFORM tenant.set(t);
        BEGIN
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('2 rows under a limit of 2 were refused: %s %s', SQLSTATE, SQLERRM);
            RAISE SQLSTATE 'TTAP0';
        END;
        BEGIN
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
            problems := problems || 'a 3rd row under a limit of 2 was accepted'::text;
        EXCEPTION WHEN SQLSTATE 'TN006' THEN NULL;
                  WHEN OTHERS THEN
            problems := problems || format('the 3rd row failed with %s %s (expected TN006)', SQLSTATE, SQLERRM);
        END;
        SELECT u.used INTO used FROM tenant.usage(t) u WHERE u.resource = quota_holds.resource AND u.kind = 'rows';
        IF used IS DISTINCT FROM 2 THEN
            problems := problems || format('tenant.usage() counts %s rows of %s (expected 2)', coalesce(used::text, 'no'), resource);
        END IF;
        EXECUTE format('DELETE FROM %s WHERE ctid = (SELECT ctid FROM %s WHERE %I = $1 LIMIT 1)', tbl, tbl, col) USING t;
        BEGIN
            EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
        EXCEPTION WHEN OTHERS THEN
            problems := problems || format('after a DELETE, a row under the limit was refused: %s %s', SQLSTATE, SQLERRM);
        END;
        RAISE SQLSTATE 'TTAP0';
    EXCEPTION WHEN SQLSTATE 'TTAP0' THEN NULL;
              WHEN OTHERS THEN
        problems := problems || format('%s %s', SQLSTATE, SQLERRM);
    END;
    RETURN @extschema@._result(problems, descr);
END
$$;

-- Pin every function's search_path: this schema, pgTAP's (for ok() and diag()), pg_catalog, pg_temp.
DO $pin$
DECLARE
    pgtap_schema name := (SELECT e.extnamespace::regnamespace::name FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap');
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p WHERE p.pronamespace = '@extschema@'::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, %I, pg_catalog, pg_temp', f, '@extschema@', pgtap_schema);
    END LOOP;
END
$pin$;
