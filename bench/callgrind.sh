#!/usr/bin/env bash
# Repeatable server-side cost: instructions per transaction counted by callgrind on a backend in
# single-user mode (no client, no network, no scheduler noise). Each variant runs N transactions
# from bench/context; the fixed cost of starting the backend is measured by an empty run and
# subtracted.   bench/callgrind.sh [transactions]
# Run as root after scripts/install-deps.sh test and make install; needs valgrind.
# Note: objects made by a single-user backend right after initdb get OIDs below 16384, which
# PostgreSQL treats as built-in (no RLS on them): fine here, where no policy is involved; the
# isolation case (bench/callgrind_isolation.sh) sets up under a postmaster for that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
bin=$(pg_config --bindir)
work=$(mktemp -d /tmp/pg_tenant-callgrind.XXXX)
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$bin/initdb" -D "$work/data" -A trust >/dev/null
single() { as_pg "$bin/postgres" --single -D "$work/data" -c shared_preload_libraries=pg_tenant "$@"; }

# Data as in bench/context/setup.sql.
{ echo "CREATE DATABASE bench;"; } | single postgres >/dev/null
sed -e 's/^--.*//' bench/context/setup.sql | tr '\n' ' ' | sed 's/;/;\n/g' | single bench >/dev/null

# One script per variant: the same tenants and keys in the same order.
gen() {  # variant -> statements
  awk -v n="$n" -v variant="$1" 'BEGIN {
    srand(42);
    for (i = 0; i < n; i++) {
      t = sprintf("00000000-0000-0000-0000-%d", 100000000001 + int(rand() * 1000));
      k = 1 + int(rand() * 100000);
      q = sprintf("SELECT payload FROM items WHERE tenant_id = '\''%s'\'' AND id = %d;", t, k);
      print "BEGIN;";
      if (variant == "tenant_set") printf "SELECT tenant.set('\''%s'\''::uuid);\n", t;
      if (variant == "set_local") printf "SET LOCAL app.current_tenant_id = '\''%s'\'';\n", t;
      if (variant == "lookup_then_set_local") {
        printf "SELECT status = '\''active'\'' FROM tenant.tenants WHERE id = '\''%s'\'';\n", t;
        printf "SET LOCAL app.current_tenant_id = '\''%s'\'';\n", t;
      }
      if (variant != "empty") print q;
      print "COMMIT;";
    }
  }'
}
count() {  # variant -> total instructions
  gen "$1" >"$work/$1.sql"
  chown postgres "$work/$1.sql"
  as_pg valgrind --tool=callgrind --callgrind-out-file="$work/$1.cg" \
    "$bin/postgres" --single -D "$work/data" -c shared_preload_libraries=pg_tenant bench \
    <"$work/$1.sql" >/dev/null 2>"$work/$1.err"
  sed -nE 's/^summary: ([0-9]+)/\1/p' "$work/$1.cg"
}
empty=$(count empty)
base=$(count no_context)
echo "callgrind, $n transactions each (BEGIN; [context]; point query; COMMIT), instructions per transaction:"
echo
echo "| variant | instructions / transaction | context step alone | ratio to set_local |"
echo "|---|---:|---:|---:|"
set_local=$(count set_local)
for v in set_local tenant_set lookup_then_set_local; do
  total=$([ "$v" = set_local ] && echo "$set_local" || count "$v")
  awk -v t="$total" -v e="$empty" -v b="$base" -v s="$set_local" -v n="$n" -v v="$v" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.3f |\n", v, (t - e) / n, (t - b) / n, (t - e) / (s - e) }'
done
rm -rf "$work"
