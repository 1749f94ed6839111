-- Exact quotas (tenant.limit_rows), counted per transaction (0.9.0). Statement-level AFTER
-- triggers with transition tables count each statement's rows per tenant and hand the deltas to
-- the transaction's ledger (C++: src/quotas/ledger.cpp), which keeps tenant.row_counts exact:
-- * the first statement of a transaction that touches a (resource, tenant) counter finds its row
--   by the key and locks it (FOR NO KEY UPDATE; a transaction holding it is waited for, and its
--   update followed to the latest version), reading the committed count; no other transaction
--   can change that count until this one ends. A counter that does not exist yet is created by
--   SQL (INSERT ... ON CONFLICT DO NOTHING: its tenant is checked by the foreign key).
-- * every later statement of the transaction checks its limit against that count plus the
--   transaction's own deltas, in backend memory, without SQL; the statement that would pass the
--   limit fails whole (TN006 with the tenant's own numbers), and a multi-row INSERT adds nothing.
-- * the deltas are written once, just before commit (XACT_EVENT_PRE_COMMIT; PRE_PREPARE for
--   PREPARE TRANSACTION, whose counter rows then stay locked until COMMIT/ROLLBACK PREPARED): one
--   update of each counter row, with the table access method (no SQL). An error there fails the
--   COMMIT and rolls the transaction back, counts included.
-- * ROLLBACK gives the rows back; ROLLBACK TO SAVEPOINT (and a PL/pgSQL exception block) takes
--   back what the subtransaction counted, wrote and locked (the ledger is undone to its state
--   at the subtransaction's start, as PostgreSQL undoes the rows and the locks).
-- * a decrement (DELETE, a row moving to another tenant) locks the counter too: a concurrent
--   writer at the limit waits for it, and passes only if the delete commits.
-- * a statement that reads or writes tenant.row_counts in the writing transaction (tenant.usage(),
--   a recount, a tenant's deletion) first gets the pending deltas written (ExecutorStart), so it
--   reads the transaction's own count; after one that may write the counts, the ledger reads
--   them again.
-- Writers of one tenant's quota serialize on its counter row until commit, at every isolation
-- level (under REPEATABLE READ and SERIALIZABLE they wait too, as under READ COMMITTED, instead
-- of failing with 40001: the count read under the lock is always the latest committed one).
-- The triggers are ENABLE ALWAYS, so session_replication_role = replica (logical replication
-- apply, some restore tools) counts too.
--
-- Partitioned tables and inheritance. PostgreSQL fires statement triggers only on the table a
-- statement names; their transition tables hold the rows of every partition or child it touched
-- (a row moved to another partition by an UPDATE is an old row and a new row). So the quota
-- triggers are put on the named table AND on every partition and child: whichever table a
-- statement names counts, and nothing counts twice. tenant.row_quotas lists every member (root
-- = the table limit_rows was called for). Partitions created or attached later get the triggers
-- in the same transaction (a step of the DDL door); attached rows are added,
-- detached rows subtracted (a scan of that partition only). DROP of a member and TRUNCATE of
-- anything but the whole quota recount the resource (a scan of all its remaining rows).
--
-- Limits of the design (documented in the README):
-- * writers of one tenant's quota serialize on its counter row until commit: the price of
--   exactness. Other tenants are not slowed.
-- * tenant.row_counts is written by the ledger below SQL: no trigger, rule or constraint a user
--   adds to it runs for those updates; COPY tenant.row_counts TO in the writing transaction
--   does not see its pending deltas (a SELECT does).
-- * UPDATE materialises old and new rows (transition tables) for every UPDATE of a counted
--   table, even when no tenant changes; COPY and INSERT ... SELECT materialise the new rows.
-- * counts are dumped with the data (pg_extension_config_dump, same snapshot); after a
--   data-only restore, or writes with the triggers disabled by a superuser, run
--   tenant.limit_rows(rel, resource) again: it recounts.
-- * a row quota ignores the period of a limit: set_limit refuses a period for a counted
--   resource, and limit_rows a resource with a periodic limit.
-- * do not replicate tenant.row_counts with logical replication: the subscriber's triggers
--   (ENABLE ALWAYS) count the replicated rows themselves.

-------------------------------------------------------------------------------------------------

-- Which table counts for which resource. One row per member: the table limit_rows was called
-- for (root IS NULL) and each of its partitions and children (root = that table). Several
-- tables may count for one resource (their rows add up). Dumped by pg_dump.
CREATE TABLE tenant.row_quotas (
    relid          regclass PRIMARY KEY,
    resource       text NOT NULL
                   CONSTRAINT row_quotas_resource_format CHECK (tenant.is_valid_resource(resource)),
    tenant_column  name NOT NULL,
    root           regclass,
    limited_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    limited_by     name NOT NULL DEFAULT pg_catalog.session_user()
);
CREATE INDEX row_quotas_resource ON tenant.row_quotas (resource);
COMMENT ON TABLE tenant.row_quotas IS
    'Tables whose rows count for a resource (tenant.limit_rows); root is set for partitions and children counted with it';

-- The counts. Dumped too: pg_dump reads them in the same snapshot as the tables' rows, so a
-- restore has them right; tenant.limit_rows() on a counted table recounts them.
CREATE TABLE tenant.row_counts (
    tenant_id  uuid NOT NULL REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    resource   text NOT NULL,
    rows       bigint NOT NULL,
    PRIMARY KEY (tenant_id, resource)
);
CREATE INDEX row_counts_resource ON tenant.row_counts (resource, tenant_id);
-- A counter row is updated by every transaction that writes rows of its tenant: a page holds few
-- of them (0.9.0), so the pruning of a page's dead versions, which the next look-up of a counter
-- on it pays, scans about a dozen line pointers rather than a hundred and thirty. Counters made
-- before 0.9.0 spread out with VACUUM FULL tenant.row_counts.
ALTER TABLE tenant.row_counts SET (fillfactor = 10);
COMMENT ON TABLE tenant.row_counts IS
    'Rows per tenant and resource, kept by the triggers of tenant.limit_rows in the writing transaction';

SELECT pg_catalog.pg_extension_config_dump('tenant.row_quotas', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.row_counts', '');

-- Adds deltas (one per tenant) to a resource's counts through the transaction's ledger, as the
-- triggers do; with enforce, raises TN006 when an increment passes the tenant's limit. Counters
-- are locked in tenant order so two multi-tenant statements cannot deadlock. Decrements only
-- change an existing counter: a tenant being deleted may have lost its counter already (ON
-- DELETE CASCADE), and no counter is created for it again.
CREATE FUNCTION tenant._row_quota_apply(resource text, tenants uuid[], deltas bigint[], enforce boolean)
    RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_apply';

-- The statement triggers (arguments: resource, tenant column): they count the transition
-- tables' rows per tenant and hand the deltas to the transaction's ledger. One C++ function for
-- the three events. Neither SECURITY DEFINER nor SET search_path (0.9.0): the ledger reads and
-- writes the counter rows with the table access method (no privilege applies, no name is
-- resolved), and creates a missing counter as the extension owner itself; the function call
-- then costs no role and search_path switch per statement.
CREATE FUNCTION tenant._row_quota_inserted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE FUNCTION tenant._row_quota_deleted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
-- Old and new rows are not paired in transition tables: per tenant, new rows minus old rows.
-- An UPDATE that keeps every row's tenant changes nothing.
CREATE FUNCTION tenant._row_quota_updated() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';


-- Recounts a resource from scratch: every table counting for it is locked in SHARE mode (no
-- writer is in flight, none starts before commit), then counted. Under REPEATABLE READ a
-- counter changed by a transaction this snapshot does not see raises 40001 instead of being
-- overwritten. Returns the total.
CREATE FUNCTION tenant._row_quota_recount(resource text) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET row_security = off
    AS $$
DECLARE
    p_resource ALIAS FOR $1;
    q record;
    parts text[] := '{}';
    total bigint;
BEGIN
    FOR q IN SELECT r.relid, r.tenant_column FROM tenant.row_quotas r
              WHERE r.resource OPERATOR(pg_catalog.=) p_resource AND r.root IS NULL
              ORDER BY r.relid::pg_catalog.oid
    LOOP
        EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', q.relid);  -- with its partitions and children
        parts := parts OPERATOR(pg_catalog.||) pg_catalog.format('SELECT r.%I AS t FROM %s r', q.tenant_column, q.relid);
    END LOOP;
    IF pg_catalog.cardinality(parts) OPERATOR(pg_catalog.=) 0 THEN
        parts := ARRAY['SELECT NULL::uuid AS t WHERE false'];
    END IF;
    EXECUTE pg_catalog.format(
        'WITH counted AS (
             SELECT u.t, pg_catalog.count(*) AS n FROM (%s) u WHERE u.t IS NOT NULL GROUP BY u.t),
         target AS (
             SELECT COALESCE(c.t, k.tenant_id) AS t, COALESCE(c.n, 0) AS n
               FROM counted c
               FULL JOIN (SELECT x.tenant_id FROM tenant.row_counts x
                           WHERE x.resource OPERATOR(pg_catalog.=) $1) k
                      ON k.tenant_id OPERATOR(pg_catalog.=) c.t),
         up AS (
             INSERT INTO tenant.row_counts AS rc (tenant_id, resource, rows)
             SELECT g.t, $1, g.n FROM target g ORDER BY g.t
             ON CONFLICT ON CONSTRAINT row_counts_pkey DO UPDATE SET rows = EXCLUDED.rows
              WHERE rc.rows IS DISTINCT FROM EXCLUDED.rows)
         SELECT COALESCE(pg_catalog.sum(c.n), 0)::bigint FROM counted c',
        pg_catalog.array_to_string(parts, ' UNION ALL '))
        USING p_resource INTO total;
    RETURN total;
END
$$;

-- TRUNCATE fires on every table it empties (a partitioned table and each partition). The whole
-- quota emptied: zero the counts. Part of it (a partition, TRUNCATE ONLY of a parent, one of
-- several tables of the resource): recount what is left. Counts already all zero: nothing to do.
CREATE FUNCTION tenant._row_quota_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_resource text := TG_ARGV[0];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant.row_counts c
                    WHERE c.resource OPERATOR(pg_catalog.=) p_resource AND c.rows OPERATOR(pg_catalog.<>) 0) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM tenant.row_quotas q
                WHERE q.relid OPERATOR(pg_catalog.=) TG_RELID::pg_catalog.regclass AND q.root IS NULL)
       AND NOT EXISTS (SELECT 1 FROM tenant.row_quotas q
                        WHERE q.resource OPERATOR(pg_catalog.=) p_resource AND q.root IS NULL
                          AND q.relid OPERATOR(pg_catalog.<>) TG_RELID::pg_catalog.regclass)
       AND (EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                     WHERE c.oid OPERATOR(pg_catalog.=) TG_RELID AND c.relkind OPERATOR(pg_catalog.=) 'p')
            OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) TG_RELID))
    THEN
        UPDATE tenant.row_counts c SET rows = 0
         WHERE c.resource OPERATOR(pg_catalog.=) p_resource AND c.rows OPERATOR(pg_catalog.<>) 0;
    ELSE
        PERFORM tenant._row_quota_recount(p_resource);
    END IF;
    RETURN NULL;
END
$$;

-- The four triggers of a counted table, created if missing and made ENABLE ALWAYS (idempotent);
-- and their removal. C++ (src/quotas/tables.cpp, 0.11.0), shared with the DDL door's steps.
CREATE FUNCTION tenant._row_quota_install(rel regclass, resource text, tenant_column name) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_install';
CREATE FUNCTION tenant._row_quota_uninstall(rel regclass) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_uninstall';

-- Counting reads a fresh snapshot after the triggers exist: only READ COMMITTED gives one (25000).
CREATE FUNCTION tenant._row_quota_require_read_committed(what text) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_require_read_committed';

-- 42501 unless the calling role (SET ROLE, else the session user) owns the table: the ownership
-- rule of tenant.protect (src/policy/protection.cpp, OwnsTable).
CREATE FUNCTION tenant._require_owner(rel regclass) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_require_owner';

CREATE FUNCTION tenant.limit_rows(rel regclass, resource text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_rel ALIAS FOR $1;
    p_resource ALIAS FOR $2;
    col name;
    existing record;
    member regclass;
BEGIN
    IF p_rel IS NULL OR p_resource IS NULL THEN
        RAISE EXCEPTION 'table and resource must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._require_owner(p_rel);
    PERFORM tenant._check_resource(p_resource);
    SELECT s.tenant_column INTO col FROM tenant.scoped_tables s WHERE s.relid OPERATOR(pg_catalog.=) p_rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not tenant-scoped', p_rel USING ERRCODE = '55000',
            DETAIL = 'A row quota counts rows per tenant, and only a protected table has a trusted tenant column.',
            HINT = pg_catalog.format('Protect it first: SELECT tenant.protect(%L);', p_rel::pg_catalog.text);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) p_rel) THEN
        RAISE EXCEPTION 'table % is a partition or child', p_rel USING ERRCODE = '55000',
            DETAIL = 'A statement on its parent would not fire its triggers.',
            HINT = 'Count the rows of the parent: tenant.limit_rows(parent, resource) counts every partition and child.';
    END IF;
    IF tenant._is_citus_table(p_rel) THEN
        RAISE EXCEPTION 'table % is a Citus table: its rows cannot be counted exactly', p_rel USING ERRCODE = '0A000',
            DETAIL = 'A row quota counts in triggers, and Citus does not run triggers of a distributed table where all its rows meet.',
            HINT = 'Count with tenant.meter() and pg_tenant.meter_backend = redis: Redis counts across the Citus cluster.';
    END IF;
    SELECT q.resource, q.root INTO existing FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) p_rel;
    IF FOUND AND existing.resource OPERATOR(pg_catalog.<>) p_resource THEN
        RAISE EXCEPTION 'table % already counts rows for "%"', p_rel, existing.resource USING ERRCODE = '55000',
            HINT = 'Run tenant.unlimit_rows() first to count it for another resource.';
    END IF;
    SELECT t INTO member FROM tenant._table_tree(p_rel) AS t
     WHERE t OPERATOR(pg_catalog.<>) p_rel
       AND EXISTS (SELECT 1 FROM tenant.row_quotas q WHERE q.relid OPERATOR(pg_catalog.=) t AND q.root IS NULL)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % has its own row quota', member USING ERRCODE = '55000',
            HINT = pg_catalog.format('Run tenant.unlimit_rows(%L) first.', member::pg_catalog.text);
    END IF;
    IF EXISTS (SELECT 1 FROM tenant.plan_limits l
                WHERE l.resource OPERATOR(pg_catalog.=) p_resource AND l.period OPERATOR(pg_catalog.<>) 'none'
               UNION ALL
               SELECT 1 FROM tenant.tenant_limits l
                WHERE l.resource OPERATOR(pg_catalog.=) p_resource AND l.period OPERATOR(pg_catalog.<>) 'none') THEN
        RAISE EXCEPTION 'resource "%" has a limit with a period', p_resource USING ERRCODE = '22023',
            DETAIL = 'A count of rows has no window; periods are for meters.',
            HINT = 'Give the rows another resource name, or set its limits with period ''none''.';
    END IF;
    PERFORM tenant._row_quota_require_read_committed('tenant.limit_rows()');

    -- Triggers first: CREATE TRIGGER waits for the writers in flight and holds off new ones
    -- until commit, so the count below (a fresh READ COMMITTED snapshot) misses nothing.
    FOR member IN SELECT * FROM tenant._table_tree(p_rel) LOOP
        PERFORM tenant._row_quota_install(member, p_resource, col);
        INSERT INTO tenant.row_quotas (relid, resource, tenant_column, root)
             VALUES (member, p_resource, col, CASE WHEN member OPERATOR(pg_catalog.=) p_rel THEN NULL ELSE p_rel END)
        ON CONFLICT ON CONSTRAINT row_quotas_pkey DO NOTHING;
    END LOOP;
    RETURN tenant._row_quota_recount(p_resource);
END
$$;
COMMENT ON FUNCTION tenant.limit_rows(regclass, text) IS
    'counts the rows of a protected table (and its partitions and children) per tenant for a resource, exactly and transactionally, refusing a statement that passes the tenant''s limit (TN006); returns the rows counted';

CREATE FUNCTION tenant.unlimit_rows(rel regclass) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p_rel ALIAS FOR $1;
    q record;
    member regclass;
BEGIN
    IF p_rel IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tenant._require_owner(p_rel);
    SELECT r.resource, r.root INTO q FROM tenant.row_quotas r WHERE r.relid OPERATOR(pg_catalog.=) p_rel;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF q.root IS NOT NULL THEN
        RAISE EXCEPTION 'table % is counted with %', p_rel, q.root USING ERRCODE = '55000',
            HINT = pg_catalog.format('Run tenant.unlimit_rows(%L).', q.root::pg_catalog.text);
    END IF;
    -- Forget first, then drop the triggers (the drop check sees a table no longer counted).
    FOR member IN DELETE FROM tenant.row_quotas r
                   WHERE r.relid OPERATOR(pg_catalog.=) p_rel OR r.root OPERATOR(pg_catalog.=) p_rel
                  RETURNING r.relid
    LOOP
        PERFORM tenant._row_quota_uninstall(member);
    END LOOP;
    IF EXISTS (SELECT 1 FROM tenant.row_quotas r WHERE r.resource OPERATOR(pg_catalog.=) q.resource) THEN
        PERFORM tenant._row_quota_recount(q.resource);
    ELSE
        DELETE FROM tenant.row_counts c WHERE c.resource OPERATOR(pg_catalog.=) q.resource;
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION tenant.unlimit_rows(regclass) IS
    'stops counting the rows of a table (and its partitions and children); returns whether it was counted';

REVOKE ALL ON tenant.row_quotas, tenant.row_counts FROM PUBLIC;
REVOKE ALL ON FUNCTION
    tenant._row_quota_apply(text, uuid[], bigint[], boolean),
    tenant._row_quota_inserted(), tenant._row_quota_deleted(), tenant._row_quota_updated(),
    tenant._row_quota_truncated(),
    tenant._row_quota_recount(text), tenant._row_quota_install(regclass, text, name),
    tenant._row_quota_uninstall(regclass),
    tenant._row_quota_require_read_committed(text), tenant._require_owner(regclass),
    tenant.limit_rows(regclass, text), tenant.unlimit_rows(regclass)
FROM PUBLIC;
