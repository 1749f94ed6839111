#!/usr/bin/env bash
# Quick start: installs what is missing (Debian 12, as root), builds and installs pg_tenant,
# starts a throwaway PostgreSQL 15 cluster "pg_tenant_demo" with shared_preload_libraries=pg_tenant,
# runs demo/walkthrough.sql and leaves the cluster running for you to connect to.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PG_TENANT_DEMO_PORT:-5499}
cluster=pg_tenant_demo

scripts/install-deps.sh demo
make -s -j2
make -s install

if pg_lsclusters -h | awk '{print $2}' | grep -qx "$cluster"; then
  pg_dropcluster --stop 15 "$cluster"
fi
pg_createcluster 15 "$cluster" -p "$port" -o shared_preload_libraries=pg_tenant >/dev/null
pg_ctlcluster 15 "$cluster" start
runuser -u postgres -- createdb -p "$port" demo
cp demo/walkthrough.sql /tmp/pg_tenant-walkthrough.sql && chmod a+r /tmp/pg_tenant-walkthrough.sql
runuser -u postgres -- psql -X -p "$port" -d demo -f /tmp/pg_tenant-walkthrough.sql

cat <<MSG

The demo cluster is running on port $port (database "demo"). Connect with:
  runuser -u postgres -- psql -p $port demo                         # as the superuser
  psql "host=127.0.0.1 port=$port dbname=demo user=demo_app password=demo"   # as the application role
Remove it with:
  pg_dropcluster --stop 15 $cluster
MSG
