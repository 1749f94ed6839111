#!/usr/bin/env bash
# Runs pg_regress, pgTAP and the scripted tests against the cluster in PGHOST/PGPORT (started by
# scripts/test.sh with pg_virtualenv and shared_preload_libraries=pg_tenant).
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

# A fixture extension that creates tables (the guard must let extension scripts through).
install -m 644 test/fixtures/pt_fixture_tables.control test/fixtures/pt_fixture_tables--1.0.sql \
  "$(pg_config --sharedir)/extension/"

echo "== pg_regress (sql/, expected/)"
rm -rf results regression.diffs regression.out
make -s installcheck >/tmp/pg_tenant-regress.out 2>&1
regress_rc=$?
cat /tmp/pg_tenant-regress.out
while read -r name status; do
  if [ "$status" = ok ]; then pass "regress $name"; else fail "regress $name"; fi
done < <(sed -nE 's/^(test +)?([a-z0-9_]+) +\.\.\. +(ok|FAILED|failed).*/\2 \3/p' /tmp/pg_tenant-regress.out)
if [ $regress_rc -ne 0 ]; then
  [ -f regression.diffs ] && cat regression.diffs
  grep -qE '\.\.\. +(FAILED|failed)' /tmp/pg_tenant-regress.out || fail "regress (pg_regress exited $regress_rc)"
fi

echo "== pgTAP (test/pgtap/)"
dropdb --if-exists pt_pgtap >/dev/null 2>&1
createdb pt_pgtap
psql -X -q -d pt_pgtap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pg_tenant"
pg_prove -v -d pt_pgtap test/pgtap/*.sql >/tmp/pg_tenant-pgtap.out 2>&1
prove_rc=$?
grep -vE '^\s*ok [0-9]+' /tmp/pg_tenant-pgtap.out
while read -r line; do
  case "$line" in
    "not ok "*) fail "pgtap ${line#not ok }" ;;
    "ok "*) pass "pgtap ${line#ok }" ;;
  esac
done < <(sed -nE 's/^\s*((not )?ok [0-9]+.*)/\1/p' /tmp/pg_tenant-pgtap.out)
if [ $prove_rc -ne 0 ] && ! grep -qE '^\s*not ok' /tmp/pg_tenant-pgtap.out; then
  fail "pgtap (pg_prove exited $prove_rc: bad plan or a file died)"
fi

echo "== scripted tests (test/scripts/)"
for script in test/scripts/*.sh; do
  case "$script" in *no_preload.sh|*meters_cluster.sh) continue ;; esac  # run by scripts/test.sh in their own clusters
  echo "-- $script"
  bash "$script" || fail "$script exited $?"
done
