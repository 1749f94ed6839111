-- Shared by the regression tests that follow (they run in order in one database).
CREATE EXTENSION pg_tenant;
SELECT e.extversion = a.default_version AS default_version_installed
  FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'pg_tenant';

-- error_of(sql): 'SQLSTATE: message' of the error sql raises, or 'no error'.
CREATE FUNCTION public.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
