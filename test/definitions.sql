-- The full definition of the installed pg_tenant, one block per object, in a stable order:
-- every member object, and for each its definition (functions with pg_get_functiondef, tables
-- with columns, constraints, indexes, triggers and RLS flags, views, event triggers), its ACL,
-- its comment, and the extension's configuration tables. Two installs that print the same text
-- are the same extension (test/scripts/upgrade.sh compares a fresh install with every upgrade).
-- OIDs, and names derived from OIDs (internal RI triggers), are left out.
\set QUIET on
\pset format unaligned
\pset tuples_only on
\pset footer off
WITH ext AS (
    SELECT e.oid, e.extconfig, e.extcondition FROM pg_extension e WHERE e.extname = 'pg_tenant'),
members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
blocks AS (
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid) AS block FROM members m
    UNION ALL
    SELECT 'schema ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default')
           || ' comment ' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
      FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    SELECT 'config ' || coalesce((SELECT string_agg(c::regclass::text || ' ' || coalesce(w, ''), ', ' ORDER BY c::regclass::text)
                                    FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(c, w)), '')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text
           || E'\n  acl ' || coalesce(p.proacl::text, 'default')
           || E'\n  comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
           || E'\n' || CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text || ' kind ' || c.relkind::text
           || ' persistence ' || c.relpersistence::text
           || ' rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity
           || ' options ' || coalesce(c.reloptions::text, '-')
           || E'\n  acl ' || coalesce(c.relacl::text, 'default')
           || E'\n  comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
           || coalesce((SELECT string_agg(E'\n  column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                          || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                          || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                                          || coalesce(' comment ' || col_description(c.oid, a.attnum), '')
                                          || coalesce(' acl ' || a.attacl::text, ''),
                                          '' ORDER BY a.attnum)
                          FROM pg_attribute a
                          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
           || coalesce((SELECT string_agg(E'\n  constraint ' || k.conname || ' ' || pg_get_constraintdef(k.oid),
                                          '' ORDER BY k.conname)
                          FROM pg_constraint k WHERE k.conrelid = c.oid), '')
           || coalesce((SELECT string_agg(E'\n  index ' || pg_get_indexdef(i.indexrelid), '' ORDER BY pg_get_indexdef(i.indexrelid))
                          FROM pg_index i WHERE i.indrelid = c.oid), '')
           || coalesce((SELECT string_agg(E'\n  trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text,
                                          '' ORDER BY t.tgname)
                          FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '')
           || coalesce((SELECT string_agg(E'\n  policy ' || p.polname || ' ' || p.polcmd::text || ' ' || p.polpermissive
                                          || ' ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-')
                                          || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-'),
                                          '' ORDER BY p.polname)
                          FROM pg_policy p WHERE p.polrelid = c.oid), '')
           || CASE WHEN c.relkind IN ('v', 'm') THEN E'\n  view ' || pg_get_viewdef(c.oid) ELSE '' END
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    SELECT 'event trigger ' || t.evtname || ' on ' || t.evtevent || ' tags ' || coalesce(t.evttags::text, '-')
           || ' function ' || t.evtfoid::regprocedure::text || ' enabled ' || t.evtenabled::text
           || ' comment ' || coalesce(obj_description(t.oid, 'pg_event_trigger'), '-')
      FROM members m JOIN pg_event_trigger t ON m.classid = 'pg_event_trigger'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid)
SELECT block FROM blocks ORDER BY block;
