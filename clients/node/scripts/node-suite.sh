# Sourced by test/scripts/node_client.sh and test/scripts/saas_api.sh (after test/lib.sh).
# npm_ci_build DIR: `npm ci` from the committed lock file, then `npm run build`; a fail line and
# status 1 if either fails (the log's tail is printed).
npm_ci_build() {
  local dir=$1 log
  log=$(mktemp)
  # npm trusts only its own CA list; the system's store also holds the CAs of a proxy the
  # machine's owner installed (ca-certificates, update-ca-certificates).
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  fi
  if ! (cd "$dir" && npm ci --no-audit --no-fund >"$log" 2>&1); then
    tail -n 30 "$log"; rm -f "$log"; fail "$dir: npm ci failed"; return 1
  fi
  if ! (cd "$dir" && npm run --silent build >"$log" 2>&1); then
    tail -n 30 "$log"; rm -f "$log"; fail "$dir: npm run build (tsc) failed"; return 1
  fi
  rm -f "$log"
}

# node_suite LABEL DIR: runs node's test runner on DIR/test/*.test.js with the TAP reporter; one
# pass/fail line per top-level test. Fails loudly when the runner fails without a
# failing test (a file that did not load, a hook that threw) or runs no test at all.
node_suite() {
  local label=$1 dir=$2 out rc tests=0
  out=$(mktemp)
  (cd "$dir" && node --test --test-reporter=tap test/*.test.js) >"$out" 2>&1
  rc=$?
  while IFS= read -r line; do
    case "$line" in
      "not ok "*) fail "$label: $(sed -E 's/^not ok [0-9]+ - //' <<<"$line")"; tests=$((tests + 1)) ;;
      "ok "*) pass "$label: $(sed -E 's/^ok [0-9]+ - //' <<<"$line")"; tests=$((tests + 1)) ;;
    esac
  done <"$out"
  if [ "$rc" -ne 0 ] || grep -q '^not ok' "$out"; then
    grep -vE '^\s*(ok [0-9]|duration_ms|\.\.\.|---|# Subtest)' "$out" | head -n 80
  fi
  [ "$tests" -gt 0 ] || fail "$label: the test runner ran no test"
  if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$out"; then fail "$label: node --test exited $rc"; fi
  rm -f "$out"
}
