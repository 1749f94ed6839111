-- pg_tenant install script. `make` builds pg_tenant--<version>.sql from this header and then
-- src/<capability>/<capability>.sql in the order of CAPABILITIES in the Makefile (ARCHITECTURE.md).
\echo Use "CREATE EXTENSION pg_tenant" to load this file. \quit

-- Created here, without IF NOT EXISTS: CREATE EXTENSION fails if a schema "tenant" already
-- exists (nobody can plant objects in it beforehand), and the extension owns it (DROP EXTENSION
-- removes it). Nothing here is granted to PUBLIC except what policies need to evaluate: USAGE on
-- the schema and EXECUTE on tenant.current_id() and tenant.is_valid_slug(). Each capability
-- revokes its own objects from PUBLIC; the README shows the GRANTs for application roles.
CREATE SCHEMA tenant;
REVOKE ALL ON SCHEMA tenant FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant TO PUBLIC;
