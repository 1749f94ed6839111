#!/usr/bin/env bash
# The GRANT and REVOKE statements of README.md's SQL blocks run as written (0.10.0, issue 19
# item 14: 0.9.0 changed set_limit's signature and the README's grant block failed). Every
# statement that starts a line in a ```sql block with GRANT or REVOKE is run, to its semicolon,
# in a database with the extension and the roles the README names (app, tenant_admin, migrator,
# exporter; renamed rg_* here, so the suite's other roles are untouched); each is one check.
# README_FILE reads another file (an older README, to see the test fail).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

db=pt_readme_grants
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
DO $$ DECLARE r text; BEGIN
  FOREACH r IN ARRAY ARRAY['rg_app', 'rg_tenant_admin', 'rg_migrator', 'rg_exporter'] LOOP
    BEGIN EXECUTE format('CREATE ROLE %I NOLOGIN', r); EXCEPTION WHEN duplicate_object THEN NULL; END;
  END LOOP; END $$;
SQL
statements=$(mktemp)
# One statement per record, NUL-separated: from a line starting with GRANT/REVOKE to the line ending in ';'.
awk '
  /^```sql/ { in_sql = 1; next }
  /^```/    { in_sql = 0; next }
  in_sql && !in_stmt && /^(GRANT|REVOKE) / { in_stmt = 1; stmt = "" }
  in_sql && in_stmt { stmt = stmt $0 "\n"; if ($0 ~ /;[[:space:]]*(--.*)?$/) { printf "%s%c", stmt, 0; in_stmt = 0 } }
' "${README_FILE:-README.md}" >"$statements"
n=0
while IFS= read -r -d '' statement; do
  n=$((n + 1))
  first=$(head -n 1 <<<"$statement" | cut -c1-70)
  statement=$(sed -E 's/(TO|FROM) (app|tenant_admin|migrator|exporter)\b/\1 rg_\2/g' <<<"$statement")
  out=$(psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "$statement" 2>&1)
  check "README grant $n runs: $first" test -z "$(grep ERROR <<<"$out")"
  grep ERROR <<<"$out" | sed 's/^/    /'
done <"$statements"
rm -f "$statements"
check "README has grant statements to run (found $n)" test "$n" -ge 5
dropdb "$db"
for role in rg_app rg_tenant_admin rg_migrator rg_exporter; do
  q postgres "DROP OWNED BY $role CASCADE" >/dev/null 2>&1
  q postgres "DROP ROLE IF EXISTS $role" >/dev/null 2>&1
done
