-- pg_tenant 0.10.0 -> 0.11.0: a house a new engineer can read (issue 20). No signature of 0.10.0
-- changes; internal functions are added, replaced or dropped as their rules move.
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.11.0'" to load this file. \quit
