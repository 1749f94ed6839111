#!/usr/bin/env bash
# Rules written once, checked in the sources (no server needed):
#  - the TN SQLSTATEs are defined in src/bridge/errcodes.hpp, and README.md's SQLSTATE table
#    lists exactly those;
#  - no capability's SQL raises a TN code itself (the C++ raises them);
#  - the guard, the audit and the quotas never name "tenant_id": they use the configured column;
#  - tenant.audit() calls every rule function (tenant._audit_<rule>) and only those;
#  - the SQL built from object files (ARCHITECTURE.md, "Build"): each capability includes the
#    newest version of each of its objects, and the upgrade to this version includes every
#    object whose newest version is this one.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

defined=$(sed -nE "s/.*MAKE_SQLSTATE\('T', 'N', '([0-9])', '([0-9])', '([0-9])'\).*/TN\1\2\3/p" src/bridge/errcodes.hpp | sort | paste -sd, -)
documented=$(sed -nE 's/^\| `(TN[0-9]{3})` \|.*/\1/p' README.md | sort | paste -sd, -)
check "errcodes.hpp defines TN codes" test -n "$defined"
check_eq "README's SQLSTATE table lists exactly the TN codes of errcodes.hpp" "$defined" "$documented"

raised=$(grep -rnE --include='*.sql' "ERRCODE *= *'TN" src/ || true)
check_eq "no capability SQL raises a TN code (they are raised in C++)" "" "$raised"

named=$(grep -rnE "['\"]tenant_id['\"]" src/guard/ src/audit/ src/quotas/ || true)
check_eq "guard, audit and quotas use the configured tenant column, never a literal tenant_id" "" "$named"

# The audit: one function per rule, each called by tenant.audit() (its newest version).
audit_file=$(ls src/audit/objects/audit/*.sql | sort -V | tail -n 1)
defined=$(for f in src/audit/objects/_audit_*/; do basename "$f"; done | sort | paste -sd, -)
called=$(grep -oE 'tenant\._audit_[a-z_]+\(' "$audit_file" | sed -E 's/^tenant\.//; s/\($//' | sort | paste -sd, -)
check "the audit has rule functions (src/audit/objects/_audit_*)" test -n "$defined"
check_eq "tenant.audit() ($audit_file) calls exactly the rule functions tenant._audit_*" "$defined" "$called"

# Object files: the newest version of each is what the install script includes; one of this
# version is in the upgrade to it.
current=$(sed -nE "s/^default_version *= *'([^']+)'/\1/p" pg_tenant.control)
upgrade=$(ls src/upgrade/*--"$current".sql 2>/dev/null)
check "the upgrade to $current has its source in src/upgrade/" test -n "$upgrade"
stale=""
for dir in src/*/objects/*/; do
  capability=$(echo "$dir" | cut -d/ -f2)
  object=${dir#src/}
  newest=$(ls "$dir" | sort -V | tail -n 1)
  included=$(grep -E "^--#include ${object}[^/]+$" "src/$capability/$capability.sql" | sed 's/^--#include //' | paste -sd, -)
  [ "$included" = "${object}${newest}" ] || stale="$stale ${object}${newest} (src/$capability/$capability.sql includes: ${included:-nothing})"
  if [ "${newest%.sql}" = "$current" ] && ! grep -qx -- "--#include ${object}${newest}" $upgrade; then
    stale="$stale ${object}${newest} (not in $upgrade)"
  fi
done
check_eq "each capability includes the newest version of each of its objects, and the upgrade those of $current" "" "$stale"
unknown=$(cat src/*/*.sql src/upgrade/*.sql | sed -nE 's/^--#include (.*)/\1/p' | while read -r f; do [ -f "src/$f" ] || echo "$f"; done)
check_eq "every included object file exists" "" "$unknown"
