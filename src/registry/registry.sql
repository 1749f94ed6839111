-------------------------------------------------------------------------------------------------
-- Registry
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant.is_valid_slug(slug text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_is_valid_slug';
COMMENT ON FUNCTION tenant.is_valid_slug(text) IS
    'true when slug is a DNS label (a-z, 0-9, hyphen; 1-63; no hyphen at either end) without uuid shape';

CREATE TABLE tenant.plans (
    name         text PRIMARY KEY
                 CONSTRAINT plans_name_format CHECK (name OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]{0,62}$'),
    description  text,
    features     jsonb NOT NULL DEFAULT '{}'
                 CONSTRAINT plans_features_object CHECK (pg_catalog.jsonb_typeof(features) OPERATOR(pg_catalog.=) 'object'),
    upgrade_url  text,
    builtin      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant.plans IS 'Subscription plans; tenants.plan refers to plans.name';
COMMENT ON COLUMN tenant.plans.builtin IS 'true for the row this extension seeded and nobody changed yet';

CREATE TABLE tenant.tenants (
    id                 uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    name               text NOT NULL
                       CONSTRAINT tenants_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    slug               text NOT NULL
                       CONSTRAINT tenants_slug_format CHECK (tenant.is_valid_slug(slug)),
    plan               text NOT NULL DEFAULT 'free',
    status             text NOT NULL DEFAULT 'active'
                       CONSTRAINT tenants_status_known CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'read_only', 'suspended'])),
    feature_overrides  jsonb NOT NULL DEFAULT '{}'
                       CONSTRAINT tenants_feature_overrides_object CHECK (pg_catalog.jsonb_typeof(feature_overrides) OPERATOR(pg_catalog.=) 'object'),
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    status_reason      text,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_plan_fkey FOREIGN KEY (plan) REFERENCES tenant.plans (name) ON UPDATE CASCADE
);
COMMENT ON TABLE tenant.tenants IS 'One row per tenant; read by tenant.set() and tenant.current_id()';
COMMENT ON COLUMN tenant.tenants.status IS 'active; read_only (reads and deletes only, TN010); suspended (cannot be entered, TN002)';
COMMENT ON COLUMN tenant.tenants.status_reason IS 'why the tenant is suspended or read-only (tenant.suspend, tenant.set_read_only)';

-- Keep updated_at current; an edit to the seeded plan makes it an ordinary row (the argument
-- names the plans trigger: on Citus the triggers also fire on the registry's shards, whose
-- names differ).
CREATE FUNCTION tenant._touch_updated_at() RETURNS trigger
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
CREATE TRIGGER tenants_touch_updated_at BEFORE UPDATE ON tenant.tenants
    FOR EACH ROW EXECUTE FUNCTION tenant._touch_updated_at();
CREATE TRIGGER plans_touch_updated_at BEFORE UPDATE ON tenant.plans
    FOR EACH ROW EXECUTE FUNCTION tenant._touch_updated_at('plans');

-- pg_dump dumps every plan row, the seeded one too, and the restore's CREATE EXTENSION seeds it
-- again: a restored row for a plan that is still the untouched seed replaces the seed instead
-- of failing on the primary key, so no edit of a plan is lost and nothing collides. Only on the
-- table itself: on Citus the trigger also fires on the registry's shards (as Citus copies rows
-- into them), where it must not write.
CREATE FUNCTION tenant._merge_seeded_plan() RETURNS trigger
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
CREATE TRIGGER plans_merge_seeded BEFORE INSERT ON tenant.plans
    FOR EACH ROW EXECUTE FUNCTION tenant._merge_seeded_plan();

-- Every committed change to the registry reaches every backend's cache at its next transaction.
CREATE FUNCTION tenant._registry_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'pg_tenant_registry_changed';
CREATE TRIGGER tenants_invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._registry_changed();
CREATE TRIGGER plans_invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant.plans
    FOR EACH STATEMENT EXECUTE FUNCTION tenant._registry_changed();

INSERT INTO tenant.plans (name, description, builtin) VALUES ('free', 'Seeded by pg_tenant', true);

SELECT pg_catalog.pg_extension_config_dump('tenant.plans', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.tenants', '');

-------------------------------------------------------------------------------------------------
-- Registry administration (not granted to PUBLIC)
-------------------------------------------------------------------------------------------------

-- Argument checks shared by the admin functions of every capability: 22004 for NULL, TN003 for a
-- plan and TN001 for a tenant that does not exist (C: src/registry/registry.cpp).
CREATE FUNCTION tenant._check_plan(plan text) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_plan';
CREATE FUNCTION tenant._check_tenant(tenant uuid) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_check_tenant';

CREATE FUNCTION tenant."create"(name text, slug text, plan text DEFAULT 'free') RETURNS uuid
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

REVOKE ALL ON tenant.plans, tenant.tenants FROM PUBLIC;
CREATE FUNCTION tenant.cache_info(OUT entries bigint, OUT capacity integer, OUT hits bigint,
                                  OUT misses bigint, OUT resets bigint) RETURNS record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pg_tenant_cache_info';
COMMENT ON FUNCTION tenant.cache_info() IS 'this backend''s tenant cache: entries, capacity, hits, misses, resets';

REVOKE ALL ON FUNCTION tenant.is_valid_slug(text), tenant._touch_updated_at(), tenant._merge_seeded_plan(), tenant._registry_changed(),
    tenant._check_plan(text), tenant._check_tenant(uuid),
    tenant."create"(text, text, text), tenant.cache_info()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant.is_valid_slug(text) TO PUBLIC;
