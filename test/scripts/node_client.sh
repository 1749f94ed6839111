#!/usr/bin/env bash
# The Node.js client (clients/node): `npm ci` from its committed lock file, `tsc`, then its tests
# (node --test) against this cluster: withTenant, typed errors, the Express middleware over HTTP
# on 127.0.0.1. Each test file makes its own database and role and drops them.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. clients/node/scripts/node-suite.sh

echo "node $(node --version), npm $(npm --version)"
npm_ci_build clients/node || exit 0
node_suite node_client clients/node
leftover=$(q postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'pt\_node\_%'")
check_eq "node_client: the tests dropped their databases" 0 "$leftover"
