-------------------------------------------------------------------------------------------------
-- Lifecycle: provisioning hooks, status with reasons and history, purge, export and import
-------------------------------------------------------------------------------------------------

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

CREATE FUNCTION tenant.suspend(id uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'suspended', NULL) $$;
CREATE FUNCTION tenant.suspend(id uuid, reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'suspended', $2) $$;
CREATE FUNCTION tenant.set_read_only(id uuid, reason text DEFAULT NULL) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'read_only', $2) $$;
CREATE FUNCTION tenant.resume(id uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT tenant._set_status($1, 'active', NULL) $$;
COMMENT ON FUNCTION tenant.suspend(uuid) IS 'suspends a tenant: it cannot be entered, and sessions in it are refused (TN002)';
COMMENT ON FUNCTION tenant.suspend(uuid, text) IS 'suspends a tenant, recording why';
COMMENT ON FUNCTION tenant.set_read_only(uuid, text) IS 'makes a tenant read-only: reads and deletes pass, inserts and updates fail (TN010)';
COMMENT ON FUNCTION tenant.resume(uuid) IS 'makes a suspended or read-only tenant active again';

--#include lifecycle/objects/_scoped_tables_children_first/0.11.0.sql

-- The statements purge, export and import run on a scoped table run as that table's owner, in
-- a security-restricted operation, acting for the tenant (0.10.0): the owner's triggers, casts,
-- defaults and index expressions never run with the extension owner's rights, and the owner's
-- policies confine the statement to the tenant's rows. The query returns rows ($1 the tenant, $2
-- rows as jsonb); the first column comes back as text.
CREATE FUNCTION tenant._query_as_owner(rel regclass, tenant uuid, query text, rows jsonb DEFAULT NULL)
    RETURNS SETOF text
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_query_as_owner';

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
    -- The counts per table, gathered in arrays (appending to one is cheap) and made jsonb once:
    -- adding to a jsonb value copies it, which over 5,000 tables cost more than the deletes.
    names text[] := '{}';
    counts bigint[] := '{}';
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
        deleted := tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'WITH d AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) $1 RETURNING 1) SELECT pg_catalog.count(*) FROM d',
            scoped.rel, scoped.tenant_column));
        names := pg_catalog.array_append(names, scoped.rel::text);
        counts := pg_catalog.array_append(counts, deleted);
        RETURN NEXT;
    END LOOP;
    DELETE FROM tenant.meter_counts m WHERE m.tenant_id OPERATOR(pg_catalog.=) p_id;
    DELETE FROM tenant.usage_alerts a WHERE a.tenant_id OPERATOR(pg_catalog.=) p_id;  -- 0.9.0
    PERFORM tenant._forget_meters(p_id);
    PERFORM tenant._forget_stats(p_id);
    -- Limits, row counts and status history go with the registry row (ON DELETE CASCADE).
    DELETE FROM tenant.tenants t WHERE t.id OPERATOR(pg_catalog.=) p_id;
    INSERT INTO tenant.purges (tenant_id, slug, forced, deleted)
    VALUES (p_id, target.slug, p_force,
            (SELECT COALESCE(pg_catalog.jsonb_object_agg(c.name, c.n), '{}')
               FROM ROWS FROM (pg_catalog.unnest(names), pg_catalog.unnest(counts)) AS c(name, n)));
END
$$;
COMMENT ON FUNCTION tenant.purge(uuid, boolean) IS
    'erases a suspended tenant (or any, with force): its rows in every scoped table, children first, its meters, usage alerts, statistics, limits and registry row; tenant.purges keeps the record';

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
        RETURN QUERY SELECT * FROM tenant._query_as_owner(scoped.rel, p_id, pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''table'', %L, ''row'', pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.-) %L)::text
               FROM %s r WHERE r.%I OPERATOR(pg_catalog.=) $1 ORDER BY r::text',
            scoped.rel::text, scoped.tenant_column, scoped.rel, scoped.tenant_column));
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant.export(uuid) IS 'every row of the tenant in every scoped table, as JSON lines (format 1, README)';

--#include lifecycle/objects/import/0.11.0.sql
COMMENT ON FUNCTION tenant.import(uuid, text) IS 'loads a tenant.export() into a tenant without rows (same or another id)';

REVOKE ALL ON FUNCTION tenant._run_create_hooks(uuid), tenant.on_create(regprocedure, integer),
    tenant._query_as_owner(regclass, uuid, text, jsonb),
    tenant.remove_hook(regprocedure), tenant._set_status(uuid, text, text),
    tenant.suspend(uuid), tenant.suspend(uuid, text), tenant.set_read_only(uuid, text), tenant.resume(uuid),
    tenant._scoped_tables_children_first(), tenant.purge(uuid, boolean),
    tenant.export(uuid), tenant.import(uuid, text)
FROM PUBLIC;
