# Helpers for the scripted tests (sourced). Each check appends "pass NAME" or "fail NAME" to
# $RESULTS (one line per assertion); scripts/test.sh counts them.
RESULTS=${RESULTS:-/tmp/pg_tenant-results.txt}

pass() { echo "pass $*" >>"$RESULTS"; echo "  ok     $*"; }
fail() { echo "fail $*" >>"$RESULTS"; echo "  FAILED $*"; }

# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}

# q DB SQL: one value, unaligned, errors to stderr.
q() { psql -X -v ON_ERROR_STOP=1 -Atq -d "$1" -c "$2"; }

# A free TCP port on loopback, never a fixed shared one.
free_port() {
  local p
  for _ in $(seq 1 200); do
    # Below the kernel's ephemeral range (32768-60999): a port some client connection uses as its
    # own end cannot be listened on, yet answers no connect.
    p=$(shuf -i 20000-32000 -n 1)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# poll_until EXPECTED SECONDS COMMAND...: runs COMMAND every 0.1 s until it prints EXPECTED or
# SECONDS have passed, and prints its last output (PostgreSQL's TAP tests' poll_query_until): a
# test waits on the condition it needs, never on a fixed sleep.
poll_until() {
  local want=$1 tries=$(( $2 * 10 )) got
  shift 2
  for _ in $(seq 1 "$tries"); do
    got=$("$@" 2>/dev/null)
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  echo "$got"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds (0) or SECONDS have
# passed (1).
wait_until() {
  local tries=$(( $1 * 10 ))
  shift
  for _ in $(seq 1 "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# sqlstate_of DB SQL: the SQLSTATE of the error SQL raises, or "no error".
sqlstate_of() {
  local out
  out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -d "$1" -c "$2" 2>&1 >/dev/null)
  sed -nE 's/^(psql:[^ ]* )?ERROR: +([0-9A-Z]{5}).*/\2/p' <<<"$out" | head -n 1 | grep . || echo "no error"
}

# as_pg COMMAND...: runs it as the owner of a private cluster (postgres when we are root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The one harness for tests that start clusters of their own (a second server beside the one in
# PGHOST/PGPORT, or a cluster with settings of its own):
# new_cluster DIR PORT: initdb (pg_config --bindir's) a cluster in DIR/data that listens only on a
# socket in DIR, on PORT; lines on standard input are added to its postgresql.conf.
new_cluster() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  as_pg "$(pg_config --bindir)/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  { echo "port = $port"; echo "listen_addresses = ''"; echo "unix_socket_directories = '$dir'"; cat; } \
    >>"$dir/data/postgresql.conf"
}
# start_cluster DIR / stop_cluster DIR [MODE]: pg_ctl, waiting; the server log is DIR/log.
start_cluster() { as_pg "$(pg_config --bindir)/pg_ctl" -D "$1/data" -l "$1/log" -w start >/dev/null; }
stop_cluster() { as_pg "$(pg_config --bindir)/pg_ctl" -D "$1/data" -w stop -m "${2:-fast}" >/dev/null 2>&1; }

# private_cluster DIR: new_cluster on a free port, and PGHOST, PGPORT and PGUSER pointed at it.
private_cluster() {
  local dir=$1
  export PGHOST=$dir PGPORT=$(free_port) PGUSER=postgres
  unset PGPASSWORD PGSERVICE
  new_cluster "$dir" "$PGPORT"
}
