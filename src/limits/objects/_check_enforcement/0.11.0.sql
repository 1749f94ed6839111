-- 0.9.0: a limit's enforcement and alert levels (NULL: keep the limit's own). 22023 for a bad value.
CREATE OR REPLACE FUNCTION tenant._check_enforcement(enforcement text, alert_levels integer[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF $1 IS NOT NULL AND NOT tenant._is_valid_enforcement($1) THEN
        RAISE EXCEPTION 'unknown enforcement: "%"', $1 USING ERRCODE = '22023',
            HINT = 'A limit is hard (refuses what would pass it) or soft (lets it through and counts the overage).';
    END IF;
    IF $2 IS NOT NULL AND NOT tenant.is_valid_alert_levels($2) THEN
        RAISE EXCEPTION 'invalid alert levels: %', $2 USING ERRCODE = '22023',
            HINT = 'Alert levels are at most 8 percents of the limit, each from 1 to 1000, for example ''{80,100}''.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant._check_enforcement(text, integer[]) FROM PUBLIC;
