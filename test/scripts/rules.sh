#!/usr/bin/env bash
# Rules written once, checked in the sources (no server needed):
#  - the TN SQLSTATEs are defined in src/bridge/errcodes.hpp, and README.md's SQLSTATE table
#    lists exactly those;
#  - no capability's SQL raises a TN code itself (the C++ raises them);
#  - the guard, the audit and the quotas never name "tenant_id": they use the configured column.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

defined=$(sed -nE "s/.*MAKE_SQLSTATE\('T', 'N', '([0-9])', '([0-9])', '([0-9])'\).*/TN\1\2\3/p" src/bridge/errcodes.hpp | sort | paste -sd, -)
documented=$(sed -nE 's/^\| `(TN[0-9]{3})` \|.*/\1/p' README.md | sort | paste -sd, -)
check "errcodes.hpp defines TN codes" test -n "$defined"
check_eq "README's SQLSTATE table lists exactly the TN codes of errcodes.hpp" "$defined" "$documented"

raised=$(grep -nE "ERRCODE *= *'TN" src/*/*.sql || true)
check_eq "no capability SQL raises a TN code (they are raised in C++)" "" "$raised"

named=$(grep -nE "['\"]tenant_id['\"]" src/guard/* src/audit/* src/quotas/* || true)
check_eq "guard, audit and quotas use the configured tenant column, never a literal tenant_id" "" "$named"
