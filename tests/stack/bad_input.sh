#!/usr/bin/env bash
# Bad input to `scripts/stack up`: ports in use, missing tools, a broker or a database that
# cannot start, a timeout. Each gives a clear message and a non-zero exit, returns within its
# bound and leaves nothing running. Uses its own stack directories and ports (the running
# stack's ports + 100), and the running stack's ports for the port-in-use cases.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

chmod 755 "$TMP"  # the PostgreSQL user must reach stack directories below it
kport="${KAFKA_PLAINTEXT_HOST##*:}"
alt_env=(WEBMON_STACK_KAFKA_PORT=$((kport + 100)) WEBMON_STACK_KAFKA_SSL_PORT=$((kport + 101))
  WEBMON_STACK_KAFKA_SASL_PORT=$((kport + 102)) WEBMON_STACK_KAFKA_CONTROLLER_PORT=$((kport + 103))
  WEBMON_STACK_PG_PORT=$((DATABASE_PORT + 100)))
n=0

# Runs `scripts/stack up` for a new stack directory with the given VAR=value settings; it must
# fail within 300 s. Output in OUT, exit code in RC, directory in DIR.
up_must_fail() { # what VAR=value...
  local what="$1"; shift
  n=$((n + 1))
  DIR="$TMP/stack$n"
  set +e
  OUT="$(timeout 300 env -u JAVA_HOME WEBMON_STACK_DIR="$DIR" "${alt_env[@]}" "$@" "$STACK" up 2>&1)"
  RC=$?
  set -e
  [ "$RC" -ne 0 ] || fail "$what: up succeeded"
  [ "$RC" -ne 124 ] || fail "$what: up did not return within 300 s"
  ok "$what: up failed with exit code $RC"
}
# Nothing of stack $DIR runs: no broker with its marker, no postmaster on its data directory.
nothing_running() { # what
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qxF -e "-Dwebmon.stack.dir=$DIR" -e "$DIR/postgres/data"; then
      fail "$1: process ${p#/proc/} of $DIR still runs: $(tr '\0' ' ' <"$p/cmdline")"
    fi
  done
  ok "$1: nothing left running"
}
not_created() { # what
  [ ! -e "$DIR" ] || fail "$1: $DIR was left behind"
  ok "$1: no stack directory left"
}

# --- ports in use (the running stack holds them) --------------------------------------------
up_must_fail "kafka port in use" WEBMON_STACK_KAFKA_PORT="$kport"
expect_match "port $kport is already in use.*set WEBMON_STACK_KAFKA_PORT" "$OUT" "message names port and variable"
expect_eq 3 "$RC" "exit code for a port in use"
not_created "kafka port in use"

up_must_fail "postgres port in use" WEBMON_STACK_PG_PORT="$DATABASE_PORT"
expect_match "port $DATABASE_PORT is already in use.*set WEBMON_STACK_PG_PORT" "$OUT" "message names port and variable"
not_created "postgres port in use"

up_must_fail "two ports equal" WEBMON_STACK_KAFKA_SSL_PORT=$((kport + 100))
expect_match 'ports must differ' "$OUT" "equal ports message"

up_must_fail "not a port" WEBMON_STACK_PG_PORT=70000
expect_match 'WEBMON_STACK_PG_PORT=70000 is not a port number' "$OUT" "invalid port message"

# --- missing tools: a PATH with everything but one tool ---------------------------------------
path_without() { # tool...; prints a PATH
  local bin="$TMP/path-without-$1" f name
  local -A seen=()
  local links=()
  for name in "$@"; do seen[$name]=1; done
  for f in /usr/local/bin/* /usr/bin/* /bin/* /usr/sbin/* /sbin/*; do
    name="${f##*/}"
    [ -z "${seen[$name]:-}" ] || continue
    seen[$name]=1
    links+=("$f")
  done
  mkdir -p "$bin"
  ln -s "${links[@]}" "$bin/"
  echo "$bin"
}
for tool in java openssl kcat psql; do
  up_must_fail "missing $tool" PATH="$(path_without "$tool")"
  expect_match "$tool not found" "$OUT" "message names $tool"
  not_created "missing $tool"
done
up_must_fail "missing PostgreSQL server" WEBMON_STACK_PG_BIN="$TMP/no-such-dir"
expect_match "PostgreSQL server binary 'initdb' not found.*WEBMON_STACK_PG_BIN" "$OUT" "message names initdb"
not_created "missing PostgreSQL server"
up_must_fail "JAVA_HOME without java" JAVA_HOME="$TMP/no-jdk"
expect_match "java not found at $TMP/no-jdk/bin/java" "$OUT" "message names JAVA_HOME"
# Maven is only needed while the jar cache is empty.
up_must_fail "missing mvn, empty cache" PATH="$(path_without mvn)" WEBMON_CACHE="$TMP/empty-cache"
expect_match 'mvn not found.*Maven Central' "$OUT" "message names mvn"
not_created "missing mvn"

# --- the PostgreSQL user cannot reach the stack directory (root only) -----------------------
if [ "$(id -u)" -eq 0 ]; then
  closed="$TMP/closed"
  mkdir -m 700 "$closed"
  chown nobody: "$closed" 2>/dev/null || true
  chmod 700 "$closed"
  n=$((n + 1)); DIR="$closed/stack"
  set +e; OUT="$(timeout 300 env WEBMON_STACK_DIR="$DIR" "${alt_env[@]}" "$STACK" up 2>&1)"; RC=$?; set -e
  if [ "$(stat -c %U "$closed")" = nobody ]; then
    [ "$RC" -ne 0 ] || fail "closed directory: up succeeded"
    expect_match 'cannot reach' "$OUT" "closed directory message"
    nothing_running "closed directory"
  else
    "$STACK" down >/dev/null 2>&1 || true
  fi
fi

# --- a broker that cannot start (JVM refuses its options) ------------------------------------
up_must_fail "broker fails to start" WEBMON_STACK_KAFKA_OPTS="-Xmx1k"
expect_match 'Kafka broker exited while starting' "$OUT" "broker failure message"
expect_match 'last [0-9]+ lines of .*broker.log' "$OUT" "broker failure shows the log tail"
expect_match 'heap' "$OUT" "log tail shows the JVM's reason"
nothing_running "broker fails to start"
WEBMON_STACK_DIR="$DIR" "$STACK" down >/dev/null 2>&1
[ ! -e "$DIR" ] || fail "down left $DIR"
ok "down removes the failed stack"

# --- a database that cannot start (privileged port for the postgres user) -------------------
if [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 0)" -gt 1 ]; then
  up_must_fail "postgres fails to start" WEBMON_STACK_PG_PORT=1
  expect_match 'PostgreSQL did not start' "$OUT" "postgres failure message"
  expect_match 'Permission denied|could not (bind|create)' "$OUT" "postgres failure shows the log's reason"
  nothing_running "postgres fails to start"
  WEBMON_STACK_DIR="$DIR" "$STACK" down >/dev/null 2>&1
else
  echo "skip: unprivileged ports start at 0 or 1 here, cannot make PostgreSQL fail to bind"
fi

# --- bounded wait ------------------------------------------------------------------------------
# A broker that never answers (its JVM replaced by a sleep that keeps the broker's arguments),
# so the 3 s bound is what ends `up`, however fast this machine starts a real broker.
slow_jdk="$TMP/slow-jdk"
mkdir -p "$slow_jdk/bin"
real_java="$(command -v java)"
cat >"$slow_jdk/bin/java" <<JAVA
#!/usr/bin/env bash
for a in "\$@"; do
  if [ "\$a" = kafka.Kafka ]; then exec bash -c 'sleep 60; :' slow-broker "\$@"; fi
done
exec "$real_java" "\$@"
JAVA
chmod +x "$slow_jdk/bin/java"
start=$(date +%s)
up_must_fail "timeout 3 s" WEBMON_STACK_TIMEOUT=3 JAVA_HOME="$slow_jdk"
expect_match 'within 3 s' "$OUT" "timeout message names the bound"
nothing_running "timeout 3 s"
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -lt 120 ] || fail "timeout case took ${elapsed} s"
ok "timeout case returned in ${elapsed} s"
WEBMON_STACK_DIR="$DIR" "$STACK" down >/dev/null 2>&1

# The running stack was not disturbed.
"$STACK" status >/dev/null || fail "the running stack is not fully up any more"
ok "running stack untouched"
done_ok
