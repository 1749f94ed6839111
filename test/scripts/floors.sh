#!/usr/bin/env bash
# The floors of src/ (ARCHITECTURE.md, "Floors"): a file includes only its own folder and folders
# on lower floors (the numbers below), so includes point only down. Needs no server.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

declare -A floor=([bridge]=1 [common]=0 [redis]=1 [catalog]=2 [citus]=3 [event]=3 [registry]=4
                  [context]=5 [limits]=5 [features]=6 [policy]=7 [guard]=8 [quotas]=8 [meters]=7
                  [stats]=7 [lifecycle]=8 [ddl]=9 [executor]=9 [wiring]=10)
bad=""
while IFS= read -r file; do
  from=$(cut -d/ -f2 <<<"$file")
  [ -n "${floor[$from]:-}" ] || continue  # src/pg_tenant.cpp: _PG_init, on top
  [ "$file" = src/bridge/pg.hpp ] && continue  # PostgreSQL's headers only (catalog/, utils/...)
  while IFS= read -r to; do
    [ "$to" = "$from" ] || [ -z "${floor[$to]:-}" ] && continue  # PostgreSQL's own headers
    [ "${floor[$to]}" -lt "${floor[$from]}" ] || bad="$bad $file->$to"
  done < <(sed -nE 's/^#include "([a-z_]+)\/.*/\1/p' "$file" | sort -u)
done < <(find src -name '*.cpp' -o -name '*.hpp' | sort)
check_eq "floors: every include of src/ points down" "" "$bad"
