#!/usr/bin/env bash
# Installs, from Debian's archive, what pg_tenant needs and is missing.
#   scripts/install-deps.sh demo   build + run (PostgreSQL 15, compiler)
#   scripts/install-deps.sh test   also test tools (cmake, GoogleTest, pgTAP, pg_prove, Redis, pgbouncer,
#                                  Node.js and npm for clients/node, examples/saas-api,
#                                  prometheus-postgres-exporter and curl for test/scripts/exporter.sh)
set -euo pipefail
profile=${1:-test}

packages=(g++ make postgresql-15 postgresql-server-dev-15 postgresql-contrib libhiredis-dev)
if [ "$profile" = test ]; then
  packages+=(cmake libgtest-dev postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
             redis-server pgbouncer procps prometheus-postgres-exporter curl)
  packages+=(nodejs); command -v npm >/dev/null || packages+=(npm)  # NodeSource's nodejs bundles npm and conflicts with Debian's
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The package's own cluster 15/main is not needed: create_main_cluster=false keeps it out.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pg_tenant-no-main.conf
apt-get install -y -q --no-install-recommends "${missing[@]}"
