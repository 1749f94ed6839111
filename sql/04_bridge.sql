-- The C++/PostgreSQL bridge. The probes live in the test-only library pg_tenant_bridge_probes
-- (test/bridge/), built from the bridge's source; the test declares them here, as superuser.
CREATE SCHEMA bridge_test;
CREATE FUNCTION bridge_test.throw(kind text) RETURNS void
    LANGUAGE c STRICT AS 'pg_tenant_bridge_probes', 'pg_tenant_selftest_throw';
CREATE FUNCTION bridge_test.pg_error(input text) RETURNS integer
    LANGUAGE c STRICT AS 'pg_tenant_bridge_probes', 'pg_tenant_selftest_pg_error';
CREATE FUNCTION bridge_test.throw_in_pgcall(input text) RETURNS integer
    LANGUAGE c STRICT AS 'pg_tenant_bridge_probes', 'pg_tenant_selftest_throw_in_pgcall';
CREATE FUNCTION bridge_test.live_probes() RETURNS bigint
    LANGUAGE c STRICT AS 'pg_tenant_bridge_probes', 'pg_tenant_selftest_live_probes';
CREATE FUNCTION bridge_test.backend_bytes() RETURNS bigint LANGUAGE sql AS
    $$ SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts $$;
-- Resident memory of this backend (C++ heap included), from /proc.
CREATE FUNCTION bridge_test.rss_kb() RETURNS bigint LANGUAGE sql AS
    $$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]::bigint $$;

-- A C++ exception becomes an ERROR with a SQLSTATE; the backend lives on.
\set VERBOSITY default
SELECT bridge_test.throw('error');
SELECT 1 AS backend_alive;
SELECT error_of($$SELECT bridge_test.throw('error')$$);
SELECT error_of($$SELECT bridge_test.throw('bad_alloc')$$);
SELECT error_of($$SELECT bridge_test.throw('std')$$);
SELECT error_of($$SELECT bridge_test.throw('unknown')$$);
SELECT bridge_test.throw('none') AS no_throw;
SELECT 1 AS backend_alive;

-- A PostgreSQL error raised under C++ frames keeps its own SQLSTATE and message ...
SELECT bridge_test.pg_error('41');
SELECT bridge_test.pg_error('forty-one');
SELECT error_of($$SELECT bridge_test.pg_error('99999999999')$$);
-- ... and unwinds the C++ destructors of every frame it crosses.
-- A C++ exception that leaves a PgCall restores PostgreSQL's error stack: a later error is an
-- ERROR, not a jump into a dead frame.
SELECT bridge_test.throw_in_pgcall('7');
SELECT error_of($$SELECT bridge_test.throw_in_pgcall('seven')$$);
SELECT 1 AS backend_alive;
SELECT bridge_test.live_probes();

-- 10,000 failing calls of each kind: no probe left alive, no memory kept.
SELECT bridge_test.backend_bytes() AS before_bytes, bridge_test.rss_kb() AS before_rss \gset
DO $$
DECLARE
    i int;
BEGIN
    FOR i IN 1..10000 LOOP
        BEGIN
            PERFORM bridge_test.pg_error('x' || i);
        EXCEPTION WHEN invalid_text_representation THEN
            NULL;
        END;
        BEGIN
            PERFORM bridge_test.throw('error');
        EXCEPTION WHEN invalid_parameter_value THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT bridge_test.live_probes() AS live_probes_after_20000_failures;
SELECT bridge_test.backend_bytes() - :before_bytes < 1024 * 1024 AS memory_contexts_flat;
-- Leaked probes would hold about 90 MB of C++ heap.
SELECT bridge_test.rss_kb() - :before_rss < 16 * 1024 AS rss_flat;

DROP SCHEMA bridge_test CASCADE;
