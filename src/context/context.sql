-------------------------------------------------------------------------------------------------
-- Tenant context
-------------------------------------------------------------------------------------------------

CREATE FUNCTION tenant.set(id uuid) RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_set_id';
CREATE FUNCTION tenant.set(slug text) RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_set_slug';
CREATE FUNCTION tenant.set_session(id uuid) RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_set_session_id';
CREATE FUNCTION tenant.set_session(slug text) RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_set_session_slug';
CREATE FUNCTION tenant.reset() RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_reset';
CREATE FUNCTION tenant.current_id() RETURNS uuid
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'pg_tenant_current_id';

COMMENT ON FUNCTION tenant.set(uuid) IS 'enters an active tenant for the current transaction';
COMMENT ON FUNCTION tenant.set(text) IS 'enters an active tenant (by slug, or id as text) for the current transaction';
COMMENT ON FUNCTION tenant.set_session(uuid) IS 'enters an active tenant until tenant.reset() or disconnect';
COMMENT ON FUNCTION tenant.set_session(text) IS 'enters an active tenant (by slug) until tenant.reset() or disconnect';
COMMENT ON FUNCTION tenant.reset() IS 'leaves the tenant context';
COMMENT ON FUNCTION tenant.current_id() IS 'the current tenant id, or NULL when none is set';

REVOKE ALL ON FUNCTION tenant.set(uuid), tenant.set(text), tenant.set_session(uuid), tenant.set_session(text),
    tenant.reset(), tenant.current_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant.current_id() TO PUBLIC;

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
