-- pg_tenant 0.8.0 -> 0.9.0: exact row quotas counted per transaction (issue 15). The counting is
-- in the library (the transaction's ledger); the quota trigger functions are no longer SECURITY
-- DEFINER with a SET search_path (the ledger needs neither); tenant.row_counts keeps few counters
-- per page.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.9.0'" to load this file. \quit

-------------------------------------------------------------------------------------------------
-- Row quotas -- 0.9.0
-------------------------------------------------------------------------------------------------

-- A counter row is updated by every transaction that writes rows of its tenant: a page holds few
-- of them (0.9.0), so the pruning of a page's dead versions, which the next look-up of a counter
-- on it pays, scans about a dozen line pointers rather than a hundred and thirty. Counters made
-- before 0.9.0 spread out with VACUUM FULL tenant.row_counts.
ALTER TABLE tenant.row_counts SET (fillfactor = 10);

-- The statement triggers (arguments: resource, tenant column): they count the transition
-- tables' rows per tenant and hand the deltas to the transaction's ledger. One C++ function for
-- the three events. Neither SECURITY DEFINER nor SET search_path (0.9.0): the ledger reads and
-- writes the counter rows with the table access method (no privilege applies, no name is
-- resolved), and creates a missing counter as the extension owner itself; the function call
-- then costs no role and search_path switch per statement.
CREATE OR REPLACE FUNCTION tenant._row_quota_inserted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
CREATE OR REPLACE FUNCTION tenant._row_quota_deleted() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
-- Old and new rows are not paired in transition tables: per tenant, new rows minus old rows.
-- An UPDATE that keeps every row's tenant changes nothing.
CREATE OR REPLACE FUNCTION tenant._row_quota_updated() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_changed';
