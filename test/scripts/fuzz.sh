#!/usr/bin/env bash
# The project's own adversarial suite (0.10.0, issue 19): calls every function of schema tenant,
# listed from pg_proc at run time (new functions are covered without editing this file; only
# aggregates are skipped, and said so), with edge and hostile arguments, as four roles:
#   postgres   the cluster's superuser,
#   fz_owner   LOGIN NOSUPERUSER, owns the protected table public.fz_items (granted what README's
#              "Grants for an application role" block grants migrator, plus protect and set),
#   fz_app     LOGIN, granted what that block grants app (meter, try_meter, has_feature,
#              require_feature, usage) and DML on public.fz_items,
#   fz_nobody  LOGIN, no grants at all.
# For each function: one all-NULL call, then each argument in turn over its type's edge values while
# the others keep their type's first non-NULL value (no cartesian product). Trigger and event-trigger
# functions are called directly too (they must refuse: 0A000, 39P01), and attached as triggers to
# the role's own temporary tables (tenant column uuid, bigint or text; with and without an id
# column) and to the protected table, with odd trigger arguments and timings; event-trigger
# functions to each event. Each call is one DO statement of its own (its own transaction,
# statement_timeout 5s, lock_timeout 2s) catching any error and printing its SQLSTATE as a NOTICE;
# one psql session per role runs all of that role's calls. A session that dies (a crash) is counted
# and restarted after the crashed call's group (its function's direct calls, or its trigger calls
# on one table with one timing), at most 8 times per role.
# Each role gets a fresh database pt_fuzz with fresh fixtures (two tenants, the protected table with
# rows and a row quota, a hook function), so destructive calls (purge, unprotect, suspend...) of
# one role cannot change what the next finds; within a role they run last. Nothing of the cluster
# changes: roles fz_*, database pt_fuzz (dropped at the end); the script checks that databases,
# other roles, role/database settings and the configuration files are as before.
# Pass criteria: no call ends in XX000, no crash (server log, pg_postmaster_start_time, which a
# crash restart keeps, and a session open throughout, which it ends), every role
# finished all its calls, the role with no grants gained nothing (attributes, memberships, the
# tables of schema tenant and the protected table unchanged), trigger functions refuse.
# FUZZ_MAX_PER_FN (default 80) caps the direct calls of one function (values round robin over the
# arguments, so a cap drops the last values of each); FUZZ_KEEP=1 keeps the database and files.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_fuzz
password=fz-test-password
max_per_fn=${FUZZ_MAX_PER_FN:-80}
work=$(mktemp -d /tmp/pg_tenant-fuzz.XXXXXX)
chmod 755 "$work"
started=$SECONDS
roles=(fz_nobody fz_app fz_owner postgres)   # least privileged first; each in a database of its own

super() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
as_role() {  # as_role ROLE psql-args...: the superuser runs with the caller's connection settings
  local role=$1; shift
  if [ "$role" = postgres ]; then psql -X -d "$db" "$@"
  else PGUSER=$role PGPASSWORD=$password psql -X -d "$db" "$@"; fi
}

# --- the cluster before: its start time, its log, what the fuzz must not change ------------------
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
superuser=$(q "$db" "SELECT current_user")
roles[3]=$superuser
start_time=$(q "$db" "SELECT pg_postmaster_start_time()")
# The server log: the postmaster's standard error (pg_ctl -l, pg_virtualenv), read through /proc.
postmaster=$(head -n 1 "$(q "$db" "SELECT current_setting('data_directory')")/postmaster.pid" 2>/dev/null)
log=$(readlink "/proc/$postmaster/fd/2" 2>/dev/null)
log_offset=0
if [ -f "$log" ]; then log_offset=$(stat -c %s "$log"); else log=""; fi
# Everything cluster-wide a function could touch: databases, roles and their attributes,
# memberships, per-role/per-database settings, configuration files (ALTER SYSTEM).
cluster_state_sql="SELECT md5(concat_ws(' | ',
  (SELECT string_agg(datname || ':' || datallowconn || ':' || datconnlimit, ',' ORDER BY datname) FROM pg_database WHERE datname <> '$db'),
  (SELECT string_agg(concat_ws(':', rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                               rolreplication, rolbypassrls, rolconnlimit), ',' ORDER BY rolname) FROM pg_roles),
  (SELECT string_agg(roleid::regrole || '>' || member::regrole, ',' ORDER BY 1) FROM pg_auth_members),
  (SELECT string_agg(coalesce(d.datname, '*') || ':' || coalesce(r.rolname, '*') || ':' || s.setconfig::text, ',' ORDER BY 1)
     FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
    WHERE d.datname IS DISTINCT FROM '$db'),
  (SELECT string_agg(concat_ws(':', sourcefile, sourceline, name, setting), ',' ORDER BY sourcefile, seqno) FROM pg_file_settings)))"

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
DO \$\$ DECLARE r text; BEGIN
  FOREACH r IN ARRAY ARRAY['fz_owner', 'fz_app', 'fz_nobody'] LOOP
    BEGIN EXECUTE format('CREATE ROLE %I LOGIN', r); EXCEPTION WHEN duplicate_object THEN NULL; END;
    -- The suite's cluster asks for passwords over TCP.
    EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', r, '$password');
  END LOOP; END \$\$;
SQL
cluster_before=$(q "$db" "$cluster_state_sql")
# A session open for the whole run: a crash restart of the server ends it (pg_postmaster_start_time
# does not change on a crash restart; this does).
PGAPPNAME=fz_sentinel psql -X -q -d postgres -c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
sentinel=$!
deadline=$((SECONDS + 10))
until [ "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fz_sentinel'")" = 1 ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
role_attrs() { q "$db" "SELECT concat_ws(',', rolsuper::text, rolcreaterole::text, rolcreatedb::text, rolbypassrls::text, rolreplication::text,
  (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)) FROM pg_roles r WHERE rolname = '$1'"; }

# --- fixtures and the plan, in a fresh database for each role ------------------------------------
setup_db() {
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db" || return 1
  psql -X -q -v ON_ERROR_STOP=1 -v max_per_fn="$max_per_fn" -d "$db" >/dev/null <<'SQL' || return 1
SET client_min_messages = warning;
SELECT set_config('fz.max_per_fn', :'max_per_fn', false);
CREATE EXTENSION pg_tenant;
GRANT CREATE ON SCHEMA public TO fz_owner;
-- README, "Grants for an application role": app's line, and migrator's for the table owner.
GRANT EXECUTE ON FUNCTION tenant.meter(text, bigint), tenant.try_meter(text, bigint),
                          tenant.has_feature(text), tenant.require_feature(text),
                          tenant.usage(uuid) TO fz_app;
GRANT EXECUTE ON FUNCTION tenant.limit_rows(regclass, text), tenant.unlimit_rows(regclass),
                          tenant.protect(regclass, name), tenant.set(text) TO fz_owner;
-- The fuzz's own objects, in a schema the guard does not watch.
CREATE SCHEMA fz_free;
CREATE FUNCTION fz_free.fz_hook(t uuid) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT tenant.create('FZ A', 'fz-a'), tenant.create('FZ B', 'fz-b');
SET ROLE fz_owner;
CREATE TABLE public.fz_items (tenant_id uuid NOT NULL, id int, note text);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.fz_items TO fz_app;
RESET ROLE;
SELECT tenant.protect('public.fz_items');
SELECT tenant.set_limit('free', 'fz_rows', 1000);
SELECT tenant.limit_rows('public.fz_items', 'fz_rows');
INSERT INTO public.fz_items SELECT t.id, g, 'row ' || g FROM tenant.tenants t, generate_series(1, 3) g
 WHERE t.slug IN ('fz-a', 'fz-b');

-- The superuser's session signs with this secret too (sign, set_signed reach past "not set").
SET pg_tenant.context_secret = 'fz:fuzz-secret-0123456789-0123456789-abcdef';

-- Edge values per type (SQL expressions, most as format('%L') literals with a cast); ord 1 is the
-- "reasonable" default the other arguments take, ord 0 (NULL) is added for every type.
CREATE TABLE fz_free.vals (typ regtype, ord int, expr text, PRIMARY KEY (typ, ord));
CREATE FUNCTION fz_free.add(t regtype, e text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO fz_free.vals SELECT t, coalesce(max(ord), 0) + 1, e FROM fz_free.vals WHERE typ = t $$;
CREATE FUNCTION fz_free.lit(t regtype, VARIADIC v text[]) RETURNS void LANGUAGE sql AS $$
  SELECT fz_free.add(t, format('%L::%s', x, format_type(t, NULL))) FROM unnest(v) WITH ORDINALITY u(x, o) ORDER BY o $$;
DO $$
DECLARE
  a text := (SELECT id FROM tenant.tenants WHERE slug = 'fz-a');
  hostile text[] := ARRAY['', 'x''; DROP TABLE y; --', E'o''brien\x01', 'public.t', '"Weird"."Name"', 'tenant-ß-日本-🙂'];
BEGIN
  PERFORM fz_free.lit('text', VARIADIC ARRAY['fz-a'] || hostile);
  PERFORM fz_free.add('text', $e$repeat('x', 10240)$e$);
  PERFORM fz_free.lit('text', tenant.sign(a::uuid, '1 hour'));   -- a valid token for set_signed
  PERFORM fz_free.lit('name', VARIADIC ARRAY['tenant_id'] || hostile);
  PERFORM fz_free.add('name', $e$repeat('n', 100)::name$e$);
  PERFORM fz_free.lit('uuid', a, '6f1c3a52-0000-4000-8000-00000000f0f0', '00000000-0000-0000-0000-000000000000');
  PERFORM fz_free.lit('integer', '0', '-1', '2147483647', '-2147483648');
  PERFORM fz_free.lit('bigint', '0', '-1', '9223372036854775807', '-9223372036854775808');
  PERFORM fz_free.lit('smallint', '0', '-1', '32767', '-32768');
  PERFORM fz_free.lit('numeric', 'NaN', '1e1000', '-0');
  PERFORM fz_free.lit('double precision', '0', 'NaN', 'Infinity', '-1e308');
  PERFORM fz_free.lit('boolean', 'true', 'false');
  PERFORM fz_free.lit('regclass', 'public.fz_items', 'pg_class', 'tenant.tenants');
  PERFORM fz_free.add('regclass', '999999::oid::regclass');   -- an OID that names no relation
  PERFORM fz_free.add('regclass', '0::oid::regclass');
  PERFORM fz_free.lit('regclass', 'pg_temp.fz_tmp');          -- each session's own temporary table
  PERFORM fz_free.lit('regprocedure', 'fz_free.fz_hook(uuid)', 'pg_catalog.now()', 'tenant.purge(uuid,boolean)');
  PERFORM fz_free.add('regprocedure', '999999::oid::regprocedure');
  PERFORM fz_free.lit('jsonb', '{}', '[]', 'null', '{"id": "not a uuid"}');
  PERFORM fz_free.add('jsonb', $e$(repeat('[', 1000) || repeat(']', 1000))::jsonb$e$);
  PERFORM fz_free.lit('json', '{}', '[]', 'null');
  PERFORM fz_free.lit('text[]', '{}', '{NULL}', '{fz-a}');
  PERFORM fz_free.add('text[]', $e$ARRAY(SELECT 'x' || g FROM generate_series(1, 1000) g)$e$);
  PERFORM fz_free.lit('name[]', '{}', '{NULL}');
  PERFORM fz_free.lit('integer[]', '{}', '{NULL}', '{-1,0,2147483647}');
  PERFORM fz_free.add('integer[]', $e$ARRAY(SELECT g FROM generate_series(1, 1000) g)$e$);
  PERFORM fz_free.lit('bigint[]', '{}', '{NULL}', '{-9223372036854775808,9223372036854775807}');
  PERFORM fz_free.add('bigint[]', $e$ARRAY(SELECT g::bigint FROM generate_series(1, 1000) g)$e$);
  PERFORM fz_free.lit('uuid[]', '{}', '{NULL}', '{' || a || '}');
  PERFORM fz_free.add('uuid[]', $e$ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 1000))$e$);
  PERFORM fz_free.lit('oid[]', '{}', '{NULL}', '{0}');
  PERFORM fz_free.add('oid[]', $e$ARRAY['public.fz_items'::regclass::oid, 999999::oid]$e$);
  PERFORM fz_free.add('oid[]', $e$ARRAY(SELECT g::oid FROM generate_series(1, 1000) g)$e$);
  PERFORM fz_free.lit('interval', '1 hour', '-1 day', '1000000 years', '0');
  PERFORM fz_free.lit('timestamp with time zone', '2000-01-01 00:00:00+00', '-infinity', 'infinity');
  PERFORM fz_free.lit('timestamp without time zone', '2000-01-01 00:00:00', '-infinity', 'infinity');
  PERFORM fz_free.lit('date', '2000-01-01', '-infinity', 'infinity');
  PERFORM fz_free.lit('bytea', '', '\x00');
END $$;

-- A checksum of every table of schema tenant and of the protected table: "name=md5 name=md5 ...".
CREATE FUNCTION fz_free.digest() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r regclass; d text; out text[] := '{}';
BEGIN
  FOR r IN SELECT c.oid FROM pg_class c WHERE c.relkind IN ('r', 'p')
             AND (c.relnamespace = 'tenant'::regnamespace OR c.oid = 'public.fz_items'::regclass) ORDER BY 1 LOOP
    EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', r) INTO d;
    out := out || format('%s=%s', r, d);
  END LOOP;
  RETURN array_to_string(out, ' ');
END $$;

-- The plan: every function of schema tenant but aggregates.
-- grp: after a crash the rest of the crashed call's group is skipped (a function's direct calls;
-- its trigger calls on one table with one timing).
CREATE TABLE fz_free.plan (seq int PRIMARY KEY, fn text, args text, sql text, kind text, grp text);
CREATE TABLE fz_free.notes (note text);
DO $$
DECLARE
  f record; t oid; c text; ok boolean; i int; v record; args text[]; defs text[]; nulls text[];
  call text; g text; n int := 0;
  template text := $t$DO $fz$ DECLARE s text := '00000'; m text := ''; t0 timestamptz := clock_timestamp(); BEGIN BEGIN @CALL@; EXCEPTION WHEN query_canceled THEN s := SQLSTATE; m := SQLERRM; WHEN OTHERS THEN s := SQLSTATE; m := SQLERRM; END; RAISE NOTICE 'fzres|@SEQ@|%|%|%', s, round(extract(epoch FROM clock_timestamp() - t0) * 1000), left(translate(m, E'\n\r\t', '   '), 300); END $fz$;$t$;
BEGIN
  -- Types with no edge values here: NULL, plus the first of a few minimal inputs the type accepts.
  FOR t IN SELECT DISTINCT u.t FROM pg_proc p, unnest(p.proargtypes::oid[]) u(t)
            WHERE p.pronamespace = 'tenant'::regnamespace AND p.prokind <> 'a'
              AND u.t NOT IN (SELECT typ FROM fz_free.vals) LOOP
    INSERT INTO fz_free.notes VALUES ('type without edge values: ' || format_type(t, NULL));
    FOREACH c IN ARRAY ARRAY['0', '', '{}', 'x'] LOOP
      BEGIN
        EXECUTE format('SELECT %L::%s', c, format_type(t, NULL)); ok := true;
      EXCEPTION WHEN OTHERS THEN ok := false; END;
      IF ok THEN PERFORM fz_free.lit(t::regtype, c); EXIT; END IF;
    END LOOP;
  END LOOP;
  INSERT INTO fz_free.vals SELECT DISTINCT typ, 0, format('NULL::%s', format_type(typ, NULL)) FROM fz_free.vals;
  INSERT INTO fz_free.vals SELECT DISTINCT u.t, 0, format('NULL::%s', format_type(u.t, NULL))
    FROM pg_proc p, unnest(p.proargtypes::oid[]) u(t)
   WHERE p.pronamespace = 'tenant'::regnamespace AND u.t NOT IN (SELECT typ FROM fz_free.vals);
  INSERT INTO fz_free.notes SELECT 'aggregate skipped: ' || oid::regprocedure FROM pg_proc
   WHERE pronamespace = 'tenant'::regnamespace AND prokind = 'a';
  FOR f IN
    SELECT p.oid, format('%I.%I', p.pronamespace::regnamespace, p.proname) AS qname, p.prokind, p.proretset, p.prorettype,
           ARRAY(SELECT unnest(p.proargtypes::oid[])) AS types
      FROM pg_proc p
     WHERE p.pronamespace = 'tenant'::regnamespace AND p.prokind <> 'a'
     -- What erases, unprotects, suspends or forgets goes last; purge the very last.
     ORDER BY p.proname = 'purge',
              p.proname ~ '^(purge|suspend|resume|set_read_only|_set_status|unprotect|unlimit_rows|_row_quota_uninstall|_forget_meters|_forget_stats|stats_reset|import|unexempt|remove_hook|clear_limit|clear_tenant_limit|distribute_registry)$',
              p.oid::regprocedure::text
  LOOP
    defs := ARRAY(SELECT (SELECT expr FROM fz_free.vals WHERE typ = x AND ord = CASE WHEN EXISTS
                   (SELECT FROM fz_free.vals WHERE typ = x AND ord = 1) THEN 1 ELSE 0 END)
                  FROM unnest(f.types) WITH ORDINALITY u(x, k) ORDER BY k);
    nulls := ARRAY(SELECT format('NULL::%s', format_type(x, NULL)) FROM unnest(f.types) WITH ORDINALITY u(x, k) ORDER BY k);
    CREATE TEMP TABLE IF NOT EXISTS fz_calls (k serial, args text UNIQUE);
    TRUNCATE fz_calls;
    INSERT INTO fz_calls (args) VALUES (array_to_string(nulls, ', '));
    -- Round robin over the positions, value by value: a cap drops the last values of every position.
    FOR v IN SELECT x.ord, u.k AS pos, x.expr FROM unnest(f.types) WITH ORDINALITY u(t, k)
               JOIN fz_free.vals x ON x.typ = u.t ORDER BY x.ord = 0 DESC, x.ord, u.k LOOP
      args := defs; args[v.pos] := v.expr;
      INSERT INTO fz_calls (args) VALUES (array_to_string(args, ', ')) ON CONFLICT DO NOTHING;
    END LOOP;
    FOR c IN SELECT fc.args FROM fz_calls fc ORDER BY fc.k LIMIT current_setting('fz.max_per_fn')::int LOOP
      n := n + 1;
      call := CASE WHEN f.prokind = 'p' THEN format('CALL %s(%s)', f.qname, c)
                   WHEN f.proretset THEN format('PERFORM count(*) FROM %s(%s)', f.qname, c)
                   WHEN f.prokind = 'w' THEN format('PERFORM %s(%s) OVER ()', f.qname, c)
                   ELSE format('PERFORM %s(%s)', f.qname, c) END;
      INSERT INTO fz_free.plan VALUES (n, f.oid::regprocedure::text, c,
        replace(replace(template, '@CALL@', call), '@SEQ@', n::text), 'call', 'call');
    END LOOP;
    -- Trigger functions are also fired as triggers the role attaches to its own temporary table
    -- (tenant column uuid, bigint or text) or to the protected table, with odd trigger arguments
    -- and timings; event-trigger functions are attached to every event (superuser only).
    IF f.prorettype = 'trigger'::regtype THEN
      FOR c, call, g IN
        SELECT format('%s %s, %s, args (%s)', tm, CASE WHEN cols IS NULL THEN 'public.fz_items' ELSE 'temp (' || cols || ')' END, ev, ta),
               concat_ws('; ',
                 CASE WHEN cols IS NOT NULL THEN format('CREATE TEMP TABLE fz_trg (%s)', cols) END,
                 format('CREATE TRIGGER fz_trg %s %s ON %s %s EXECUTE FUNCTION %s(%s)', split_part(tm, ' ', 1), ev, tbl,
                        'FOR EACH ' || split_part(tm, ' ', 2), f.qname, ta),
                 format('INSERT INTO %s VALUES (%s, %s%L)', tbl,
                        coalesce((SELECT expr FROM fz_free.vals WHERE typ = tt::regtype AND ord = 1), 'NULL'),
                        CASE WHEN has_id THEN '-1, ' ELSE '' END, 'fz'),
                 format('UPDATE %s SET %s WHERE note = %L', tbl, CASE WHEN has_id THEN 'id = -2' ELSE 'note = note' END, 'fz'),
                 format('DELETE FROM %s WHERE note = %L', tbl, 'fz'),
                 CASE WHEN ev LIKE '%TRUNCATE%' THEN format('TRUNCATE %s', tbl) END,
                 CASE WHEN cols IS NULL THEN 'DROP TRIGGER fz_trg ON public.fz_items' ELSE 'DROP TABLE fz_trg' END),
               tm || coalesce(cols, 'fz_items')
          -- The role's own temporary table (tenant column uuid, bigint or text; one without an id
          -- column), or the protected table.
          FROM (VALUES ('uuid', 'tenant_id uuid, id int, note text', true), ('bigint', 'tenant_id bigint, id int, note text', true),
                       ('text', 'tenant_id text, id int, note text', true), ('uuid', 'tenant_id uuid, note text', false),
                       ('uuid', NULL, true)) t(tt, cols, has_id)
          CROSS JOIN LATERAL (SELECT CASE WHEN cols IS NULL THEN 'public.fz_items' ELSE 'fz_trg' END) b(tbl)
          CROSS JOIN (VALUES (''), ('''tenant_id'''), ('''fz_rows'', ''tenant_id'''), ('''nope'', ''x''''y'', ''''')) a(ta)
          CROSS JOIN (VALUES ('BEFORE ROW', 'INSERT OR UPDATE OR DELETE'), ('AFTER ROW', 'INSERT OR UPDATE OR DELETE'),
                             ('AFTER STATEMENT', 'INSERT OR UPDATE OR DELETE OR TRUNCATE')) m(tm, ev)
          -- TRUNCATE of the protected table would erase the fixture: its statement triggers get no TRUNCATE.
          WHERE NOT (cols IS NULL AND ev LIKE '%TRUNCATE%')
      LOOP
        n := n + 1;
        INSERT INTO fz_free.plan VALUES (n, f.oid::regprocedure::text, 'as trigger: ' || c,
          replace(replace(template, '@CALL@', call), '@SEQ@', n::text), 'trigger', g);
      END LOOP;
    ELSIF f.prorettype = 'event_trigger'::regtype THEN
      FOR c IN SELECT unnest(ARRAY['ddl_command_start', 'ddl_command_end', 'sql_drop', 'table_rewrite']) LOOP
        n := n + 1;
        call := format('CREATE EVENT TRIGGER fz_evt ON %s EXECUTE FUNCTION %s(); CREATE TABLE fz_free.fz_ev (tenant_id uuid, v int); '
                       'ALTER TABLE fz_free.fz_ev ALTER COLUMN v TYPE bigint; DROP TABLE fz_free.fz_ev; DROP EVENT TRIGGER fz_evt', c, f.qname);
        INSERT INTO fz_free.plan VALUES (n, f.oid::regprocedure::text, 'as event trigger on ' || c,
          replace(replace(template, '@CALL@', call), '@SEQ@', n::text), 'event trigger', c);
      END LOOP;
    END IF;
  END LOOP;
END $$;
SQL
}

# NOTICE lines "fzres|seq|sqlstate|ms|message" of a session's output -> CSV role,seq,sqlstate,ms,message
parse_results() {
  awk -v role="$1" '{ i = index($0, "fzres|"); if (i == 0) next; s = substr($0, i + 6);
    n = split(s, f, "|"); if (n < 4) next; msg = substr(s, length(f[1]) + length(f[2]) + length(f[3]) + 4);
    gsub(/"/, "\"\"", msg); printf "%s,%s,%s,%s,\"%s\"\n", role, f[1], f[2], f[3], msg }'
}

# --- each role's pass ---------------------------------------------------------------------------
: >"$work/plan.csv"; : >"$work/results.csv"; : >"$work/crashes.txt"; : >"$work/notes.txt"
nobody_tables_before="" nobody_tables_after=""
digest_sql="SELECT fz_free.digest()"
for role in "${roles[@]}"; do
  if ! setup_db; then fail "fuzz: fixtures and plan for $role"; continue; fi
  planned=$(q "$db" "SELECT count(*) FROM fz_free.plan")
  q "$db" "SELECT note FROM fz_free.notes" >>"$work/notes.txt"
  super -c "\\copy (SELECT '$role', seq, fn, args, kind FROM fz_free.plan ORDER BY seq) TO '$work/plan.csv.part' csv"
  cat "$work/plan.csv.part" >>"$work/plan.csv"
  [ "$role" = fz_nobody ] && nobody_tables_before=$(q "$db" "$digest_sql")
  from=0 restarts=0
  while :; do
    {
      echo "SET statement_timeout = '5s'; SET lock_timeout = '2s'; SET client_min_messages = notice;"
      echo "CREATE TEMP TABLE fz_tmp (tenant_id uuid, id int);"
      [ "$role" = "$superuser" ] && echo "SET pg_tenant.context_secret = 'fz:fuzz-secret-0123456789-0123456789-abcdef';"
      q "$db" "SELECT sql FROM fz_free.plan WHERE seq > $from ORDER BY seq"
    } >"$work/calls.sql"
    as_role "$role" -q -f "$work/calls.sql" >/dev/null 2>"$work/session.out"
    rc=$?
    parse_results "$role" <"$work/session.out" >>"$work/results.csv"
    [ $rc -eq 0 ] && break
    # The session died (psql exits 2): the first call after the last one recorded killed it.
    last=$(awk -F, -v r="$role" '$1 == r && $2 + 0 > m { m = $2 + 0 } END { print m + 0 }' "$work/results.csv")
    [ "$last" -lt "$from" ] && last=$from
    [ "$last" -ge "$planned" ] && break
    crashed=$((last + 1))
    echo "  (the $role session died at call $crashed, psql exit $rc: $(grep -v fzres "$work/session.out" | tail -n 2 | tr '\n' ' '))"
    deadline=$((SECONDS + 60))
    until q "$db" "SELECT 1" >/dev/null 2>&1 || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
    echo "$role: $(q "$db" "SELECT fn || '(' || args || ')' FROM fz_free.plan WHERE seq = $crashed" 2>/dev/null || echo "call $crashed")" \
      >>"$work/crashes.txt"
    restarts=$((restarts + 1))
    [ $restarts -gt 8 ] && break
    # The rest of the crashed call's group is skipped: its function's direct calls, or its trigger
    # calls on that table with that timing.
    from=$(q "$db" "SELECT max(seq) FROM fz_free.plan WHERE (fn, grp) = (SELECT fn, grp FROM fz_free.plan WHERE seq = $crashed)" 2>/dev/null || echo "$crashed")
  done
  if [ "$role" = fz_nobody ]; then
    nobody_tables_after=$(q "$db" "$digest_sql")
    check_eq "fuzz: fz_nobody is still NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION, member of nothing" \
      "false,false,false,false,false,0" "$(role_attrs fz_nobody)"
    changed=$(join -v 2 <(tr ' ' '\n' <<<"$nobody_tables_before" | sort) <(tr ' ' '\n' <<<"$nobody_tables_after" | sort) | cut -d= -f1 | tr '\n' ' ')
    check_eq "fuzz: fz_nobody's calls changed no row of tenant.tenants, public.fz_items or any table of schema tenant" "" "${changed% }"
    check "fuzz: (the tables' checksums were taken: tenant.tenants and public.fz_items among them)" \
      bash -c 'grep -q "tenant.tenants=" <<<"$1" && grep -q "fz_items=" <<<"$1"' _ "$nobody_tables_before"
  fi
done
for role in fz_owner fz_app; do
  check_eq "fuzz: $role is still NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION, member of nothing" \
    "false,false,false,false,false,0" "$(role_attrs "$role")"
done

# --- the counts ---------------------------------------------------------------------------------
super >/dev/null <<SQL
CREATE TABLE fz_free.all_plan (role text, seq int, fn text, args text, kind text);
CREATE TABLE fz_free.all_results (role text, seq int, sqlstate text, ms int, message text);
\\copy fz_free.all_plan FROM '$work/plan.csv' csv
\\copy fz_free.all_results FROM '$work/results.csv' csv
SQL
report() { q "$db" "$1"; }
functions=$(report "SELECT count(DISTINCT fn) FROM fz_free.all_plan")
calls=$(report "SELECT count(*) FROM fz_free.all_plan")
per_role=$(report "SELECT string_agg(format('%s %s/%s', p.role, coalesce(r.n, 0), p.n), ', ' ORDER BY p.role)
  FROM (SELECT role, count(*) n FROM fz_free.all_plan GROUP BY role) p
  LEFT JOIN (SELECT role, count(DISTINCT seq) n FROM fz_free.all_results GROUP BY role) r USING (role)")
classes=$(report "SELECT string_agg(format('%s %s', c, n), ', ' ORDER BY n DESC, c)
  FROM (SELECT left(sqlstate, 2) c, count(*) n FROM fz_free.all_results GROUP BY 1) x")
echo "fuzz: $functions functions, $calls calls, per role (recorded/planned): $per_role; by SQLSTATE class: $classes"
echo "fuzz: by role and SQLSTATE: $(report "SELECT string_agg(format('%s %s', role, s), '; ' ORDER BY role) FROM (
  SELECT role, string_agg(format('%s=%s', sqlstate, n), ' ' ORDER BY n DESC, sqlstate) s
    FROM (SELECT role, sqlstate, count(*) n FROM fz_free.all_results GROUP BY 1, 2) x GROUP BY role) y")"
echo "fuzz: slowest calls: $(report "SELECT string_agg(format('%s ms %s %s(%s) %s', r.ms, r.role, p.fn, left(p.args, 60), r.sqlstate), '; ' ORDER BY r.ms DESC)
  FROM (SELECT * FROM fz_free.all_results ORDER BY ms DESC LIMIT 3) r JOIN fz_free.all_plan p USING (role, seq)")"
sort -u "$work/notes.txt" | sed 's/^/fuzz: note: /'

check "fuzz: at least one call per function of schema tenant ($functions functions)" \
  test "$(report "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant'::regnamespace AND prokind <> 'a'")" = "$functions"
xx=$(report "SELECT string_agg(format('%s: %s(%s): %s', p.role, p.fn, translate(p.args, chr(1), '?'), r.message), ' || ' ORDER BY p.role, p.seq)
  FROM fz_free.all_results r JOIN fz_free.all_plan p USING (role, seq) WHERE r.sqlstate = 'XX000'")
check_eq "fuzz: no call ended in XX000 (internal error)" "" "$xx"
for role in "${roles[@]}"; do
  check_eq "fuzz: the $role session finished all its calls (recorded = planned)" \
    "$(report "SELECT count(*) FROM fz_free.all_plan WHERE role = '$role'")" \
    "$(report "SELECT count(DISTINCT seq) FROM fz_free.all_results WHERE role = '$role'")"
done
check_eq "fuzz: no session died during a call (crash)" "" "$(tr '\n' ' ' <"$work/crashes.txt" | sed 's/ $//')"
check_eq "fuzz: trigger and event-trigger functions refuse to run outside a trigger (no call succeeded)" "" \
  "$(report "SELECT string_agg(DISTINCT p.fn, ', ') FROM fz_free.all_results r JOIN fz_free.all_plan p USING (role, seq)
    JOIN pg_proc f ON f.oid::regprocedure::text = p.fn WHERE p.kind = 'call' AND r.sqlstate = '00000' AND f.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype)")"
if [ -n "$log" ]; then
  check_eq "fuzz: the server log has no 'terminated by signal'" "" \
    "$(tail -c +$((log_offset + 1)) "$log" | grep -m 3 'terminated by signal' | tr '\n' ' ')"
else
  echo "  (the server log is not readable here: 'terminated by signal' was not looked for)"
fi
check_eq "fuzz: the server did not restart (pg_postmaster_start_time)" "$start_time" "$(q "$db" "SELECT pg_postmaster_start_time()")"
check_eq "fuzz: a session open through the whole fuzz survived it (no crash restart)" "1" \
  "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fz_sentinel'")"
q postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fz_sentinel'" >/dev/null
wait "$sentinel" 2>/dev/null
check_eq "fuzz: nothing cluster-wide changed (databases, roles, memberships, role/database settings, configuration files)" \
  "$cluster_before" "$(q "$db" "$cluster_state_sql")"

[ -n "${FUZZ_KEEP:-}" ] || dropdb "$db"
[ -n "${FUZZ_KEEP:-}" ] || for role in fz_owner fz_app fz_nobody; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1; done
[ -n "${FUZZ_KEEP:-}" ] && echo "fuzz: kept $work" || rm -rf "$work"
echo "fuzz: ran in $((SECONDS - started)) s"
