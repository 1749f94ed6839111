-- pg_tenant 0.9.0 -> 0.10.0: least privilege by construction (issue 19). Work on a user's table
-- runs as that table's owner in a security-restricted operation; PUBLIC entry points validate
-- their input; a context entered without a signed token is no tenant under
-- require_signed_context; secrets are shown to superusers only; every shared table has a
-- per-tenant share.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.10.0'" to load this file. \quit
