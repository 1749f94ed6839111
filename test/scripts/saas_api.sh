#!/usr/bin/env bash
# The example application (examples/saas-api): `npm ci` of the client and of the example from
# their committed lock files, `tsc` of both, then the end-to-end tests: the built server on
# 127.0.0.1 (a free port), a throwaway database with the example's schema.sql, requests over HTTP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. clients/node/scripts/node-suite.sh

npm_ci_build clients/node || exit 0
npm_ci_build examples/saas-api || exit 0
SAAS_API_TEST_PORT=$(free_port) node_suite saas_api examples/saas-api
leftover=$(q postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'pt\_saas\_%'")
check_eq "saas_api: the test dropped its database" 0 "$leftover"
