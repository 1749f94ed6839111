-- pg_tenant 0.10.0 -> 0.11.0: a house a new engineer can read (issue 20). No signature of 0.10.0
-- changes; internal functions are added, replaced or dropped as their rules move.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.11.0'" to load this file. \quit

-- Source of the upgrade script pg_tenant--0.10.0--0.11.0.sql, which the Makefile builds by
-- expanding each "--#include" line into the file it names (ARCHITECTURE.md, "Build"). A section
-- per topic: its own statements, or the objects it changes included at this version
-- (src/<capability>/objects/<name>/0.11.0.sql, the same files the install script includes).

-- Audit: one function per rule; tenant.audit() their union (same signature, rows and order).
--#include audit/objects/_user_tables/0.11.0.sql
--#include audit/objects/_audited_table/0.11.0.sql
--#include audit/objects/_audited_tables/0.11.0.sql
--#include audit/objects/_is_extension_function/0.11.0.sql
--#include audit/objects/_audit_unprotected_table/0.11.0.sql
--#include audit/objects/_audit_rls_not_enabled/0.11.0.sql
--#include audit/objects/_audit_rls_not_forced/0.11.0.sql
--#include audit/objects/_audit_policy_missing_or_changed/0.11.0.sql
--#include audit/objects/_audit_no_tenant_index/0.11.0.sql
--#include audit/objects/_audit_unique_without_tenant/0.11.0.sql
--#include audit/objects/_audit_no_tenant_foreign_key/0.11.0.sql
--#include audit/objects/_audit_bypassrls_role/0.11.0.sql
--#include audit/objects/_audit_superuser_owner/0.11.0.sql
--#include audit/objects/_audit_truncate_granted/0.11.0.sql
--#include audit/objects/_audit_view_without_security_invoker/0.11.0.sql
--#include audit/objects/_audit_table_without_tenant_column/0.11.0.sql
--#include audit/objects/_audit_unprotected_ancestor/0.11.0.sql
--#include audit/objects/_audit_tenant_column_not_uuid/0.11.0.sql
--#include audit/objects/_audit_materialized_view_reads_scoped/0.11.0.sql
--#include audit/objects/_audit_rule_on_scoped_table/0.11.0.sql
--#include audit/objects/_audit_trigger_security_definer/0.11.0.sql
--#include audit/objects/_audit_trigger_writes_unscoped/0.11.0.sql
--#include audit/objects/audit/0.11.0.sql

-- Limits: hard/soft written once (tenant._is_valid_enforcement), for the CHECK constraints and
-- tenant._check_enforcement. The constraints are made again with the rows in place.
--#include limits/objects/_is_valid_enforcement/0.11.0.sql
--#include limits/objects/_check_enforcement/0.11.0.sql
ALTER TABLE tenant.plan_limits DROP CONSTRAINT plan_limits_enforcement_known,
    ADD CONSTRAINT plan_limits_enforcement_known CHECK (tenant._is_valid_enforcement(enforcement));
ALTER TABLE tenant.tenant_limits DROP CONSTRAINT tenant_limits_enforcement_known,
    ADD CONSTRAINT tenant_limits_enforcement_known CHECK (tenant._is_valid_enforcement(enforcement));

-- Citus: the restrictive guard restored on a shard takes its text from the generator.
--#include policy/objects/_guard_policy_sql/0.11.0.sql
--#include citus/objects/_restore_restrictive_guard/0.11.0.sql

-- One catalog: the audit's Citus shard check reads each shard's protection with the one
-- protection reader (tenant._protection) instead of policy names.
--#include citus/objects/_citus_shard_findings/0.11.0.sql

-- Quota bookkeeping on DDL in C++ (issue 20): the DDL door's row quota steps are C++
-- (src/quotas/tables.cpp, with the policy capability's table tree engine); the PL/pgSQL they ran
-- goes. The quota triggers' installation, the READ COMMITTED check and the ownership check (the
-- rule tenant.protect applies) become C functions, still called by limit_rows and unlimit_rows.
DROP FUNCTION tenant._row_quota_after_ddl(oid[]);
DROP FUNCTION tenant._row_quota_after_drop(oid[]);
DROP FUNCTION tenant._row_quota_count(regclass, name, boolean);
DROP FUNCTION tenant._row_quota_restoring();
CREATE OR REPLACE FUNCTION tenant._row_quota_install(rel regclass, resource text, tenant_column name) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_install';
CREATE OR REPLACE FUNCTION tenant._row_quota_uninstall(rel regclass) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_uninstall';
CREATE OR REPLACE FUNCTION tenant._row_quota_require_read_committed(what text) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_row_quota_require_read_committed';
CREATE OR REPLACE FUNCTION tenant._require_owner(rel regclass) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'pg_tenant_require_owner';
DROP FUNCTION tenant._row_quota_functions();

-- A tenant's rows, defined once: tenant._top_scoped_tables() is what purge, export, import and
-- the tenant key's erase read.
--#include policy/objects/_top_scoped_tables/0.11.0.sql
REVOKE ALL ON FUNCTION tenant._top_scoped_tables() FROM PUBLIC;
--#include lifecycle/objects/_scoped_tables_children_first/0.11.0.sql
--#include lifecycle/objects/import/0.11.0.sql
