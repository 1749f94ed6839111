-- Included by pgTAP files (\ir include/err.sql): pg_temp.err(sql) runs a statement and returns
-- 'SQLSTATE | message' of its error, or 'ok'.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
    RETURN s || ' | ' || m;
END $$;
