#!/usr/bin/env bash
# Runs the example API against the demo cluster that ./scripts/demo.sh leaves running (port 5499,
# database "demo"). As root on Debian 12, from anywhere:
#   examples/saas-api/demo.sh
# Installs the client's and the example's npm dependencies from their lock files, builds both,
# applies schema.sql as the postgres superuser (roles saas_app, saas_admin, saas_owner; schema
# saas), and serves on http://127.0.0.1:3000 until Ctrl-C. PG_TENANT_DEMO_PORT and PORT change
# the ports; SAAS_APP_PASSWORD, SAAS_ADMIN_PASSWORD and JWT_SECRET default to demo values.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PGHOST=127.0.0.1 PGPORT=${PG_TENANT_DEMO_PORT:-5499} PGDATABASE=demo
export SAAS_APP_PASSWORD=${SAAS_APP_PASSWORD:-saas-app-demo} SAAS_ADMIN_PASSWORD=${SAAS_ADMIN_PASSWORD:-saas-admin-demo}
export JWT_SECRET=${JWT_SECRET:-demo-secret-change-me} HOST=127.0.0.1 PORT=${PORT:-3000}

command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
(cd "$root/clients/node" && npm ci --no-audit --no-fund && npm run build)
(cd "$here" && npm ci --no-audit --no-fund && npm run build)
runuser -u postgres -- psql -X -q -h /var/run/postgresql -p "$PGPORT" -d demo -v ON_ERROR_STOP=1 \
  -v app_password="$SAAS_APP_PASSWORD" -v admin_password="$SAAS_ADMIN_PASSWORD" <"$here/schema.sql"

cat <<MSG

Try it (another terminal):
  curl -s -X POST http://127.0.0.1:$PORT/tenants -H 'content-type: application/json' \\
       -d '{"name":"Initech","slug":"initech","email":"bill@initech.test"}'
  TOKEN=...   # the "token" of the answer
  curl -s -X POST http://127.0.0.1:$PORT/api/projects -H "authorization: Bearer \$TOKEN" \\
       -H 'content-type: application/json' -d '{"name":"TPS reports"}'
  curl -s http://127.0.0.1:$PORT/api/projects -H "authorization: Bearer \$TOKEN"

MSG
exec node "$here/dist/server.js"
