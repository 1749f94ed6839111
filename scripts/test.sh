#!/usr/bin/env bash
# The whole test suite: unit (GoogleTest via ctest), pg_regress, pgTAP and scripted tests against
# real throwaway PostgreSQL clusters (pg_virtualenv). Run as root on Debian 12; installs what is
# missing. Ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
export RESULTS=/tmp/pg_tenant-results.txt
: >"$RESULTS"
. test/lib.sh

echo "== build and install (PGXS; headers are tracked, so no clean build is needed)"
make -s -j2
make -s install
make -s -C test/bridge install   # the test-only library of bridge probes (sql/04_bridge.sql)

echo "== unit tests (CMake + ctest)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
(cd build && ctest --output-on-failure 2>&1) | tee /tmp/pg_tenant-ctest.out | tail -n 5 || true
while read -r status name; do
  if [ "$status" = Passed ]; then pass "unit $name"; else fail "unit $name"; fi
done < <(sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.+ *\**(Passed|Failed|Not Run|Exception).*/\2 \1/p' /tmp/pg_tenant-ctest.out)
grep -q "tests passed" /tmp/pg_tenant-ctest.out || fail "unit (ctest did not finish)"

# pg_regress writes results/ here; the cluster runs as postgres.
chmod -R a+rwX . 2>/dev/null || true

echo "== cluster with shared_preload_libraries=pg_tenant"
pg_virtualenv -c "-p $(free_port)" -o shared_preload_libraries=pg_tenant -o max_connections=100 -o max_prepared_transactions=10 \
  test/run-in-cluster.sh || fail "run-in-cluster exited $?"

echo "== cluster for meter persistence (restart, crash, full table)"
pg_virtualenv -t -c "-p $(free_port)" -o shared_preload_libraries=pg_tenant -o pg_tenant.flush_interval=200ms \
  -o pg_tenant.max_meters=64 bash test/scripts/meters_cluster.sh || fail "meters_cluster exited $?"

echo "== cluster without shared_preload_libraries"
pg_virtualenv -c "-p $(free_port)" bash test/scripts/no_preload.sh || fail "no_preload exited $?"

passed=$(grep -c '^pass ' "$RESULTS" || true)
failed=$(grep -c '^fail ' "$RESULTS" || true)
if [ "$failed" -gt 0 ]; then
  echo; echo "Failures:"; grep '^fail ' "$RESULTS" | sed 's/^fail /  /'
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
