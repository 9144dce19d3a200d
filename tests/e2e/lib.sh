# shellcheck shell=bash
# Shared by the end-to-end tests (sourced): the stack's settings, a work directory, the local
# demo targets, a fresh topic, consumer group and database, and helpers.
# Usage in a test: source lib.sh; e2e_setup <agent> <source dir> <name>; then $base, $work, q().
# Variables set here ($base, $work, $conn, $sent, $rows, ...) are read by the sourcing tests.
# shellcheck disable=SC2034,SC2154
set -euo pipefail

e2e_setup() {
  agent=$1
  cd "$2"
  eval "$(scripts/stack env)"
  work=$(mktemp -d)
  pids=()
  trap e2e_cleanup EXIT
  python3 scripts/lib/demo_targets.py "$work/port" &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || fail "the demo target server did not start"
  base="http://127.0.0.1:$(cat "$work/port")"
  # Only the test's HTTP targets: conf/producer.yaml's tcp_check and dns_check sources get an
  # empty target list (their default files name internet hosts). Each test's agents keep their
  # disk buffers in its own state directory and serve /metrics on a free port.
  : >"$work/no_targets.yaml"
  export WEBMON_TCP_TARGETS_FILE=$work/no_targets.yaml WEBMON_DNS_TARGETS_FILE=$work/no_targets.yaml
  export KAFKA_TOPIC KAFKA_GROUP DATABASE_DB PGPASSWORD WEBMON_TARGETS_FILE=$work/targets.yaml \
    WEBMON_STATE_DIR=$work/state WEBMON_METRICS_LISTEN=127.0.0.1:0
  KAFKA_TOPIC=$(scripts/stack topic "$3" 3)
  KAFKA_GROUP="$3-$(basename "$work")"
  DATABASE_DB=$(scripts/stack db "$3")
  PGPASSWORD=$DATABASE_PASSWD
  conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$DATABASE_DB user=$DATABASE_USER sslmode=verify-full sslrootcert=$DATABASE_SSLROOTCERT"
}

e2e_cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
  exit 1
}

# start_agent VAR CONF LOG: runs `webmon-agent --pipeline CONF` in the background (output appended
# to $work/LOG; killed at exit if still running) and sets $VAR to its pid.
start_agent() {
  "$agent" --pipeline "$2" >>"$work/$3" 2>&1 &
  pids+=($!)
  printf -v "$1" '%s' "$!"
}

# q SQL: one query against the test's database, unaligned output.
q() { psql -X -tA -v ON_ERROR_STOP=1 "$conn" -c "$1"; }

# checks_made: the producer's own count of checks the pipeline took (from its exit summary).
checks_made() {
  sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer.log"
}

# wait_for_rows N: until the table holds N rows (bounded: 120 s); status 1 if it never does.
wait_for_rows() {
  local rows=0
  for _ in $(seq 600); do
    rows=$(q "SELECT count(*) FROM webmon.http_check" 2>/dev/null || echo 0)
    [ "$rows" -ge "$1" ] && return 0
    sleep 0.2
  done
  return 1
}

# stop_agent PID NAME: SIGTERM, and the agent must exit 0.
stop_agent() {
  kill -TERM "$1"
  wait "$1" || fail "$2 exit code $? after SIGTERM (expected 0)"
}

# finish_exactly_once MIN_CHECKS CONSUMER_PID: stops the producer ($producer), waits until the
# consumer stored every check it made, stops the consumer, and checks each check is stored
# exactly once. Sets $sent and $rows.
finish_exactly_once() {
  stop_agent "$producer" producer
  sent=$(checks_made)
  [ -n "$sent" ] && [ "$sent" -ge "$1" ] || fail "producer made too few checks: '$sent' (expected >= $1)"
  wait_for_rows "$sent" || true # the counts below say what is missing
  stop_agent "$2" consumer
  rows=$(q "SELECT count(*) FROM webmon.http_check")
  local distinct
  distinct=$(q "SELECT count(DISTINCT id) FROM webmon.http_check")
  [ "$rows" = "$sent" ] || fail "$sent checks made, $rows rows stored"
  [ "$distinct" = "$rows" ] || fail "$rows rows but $distinct distinct ids"
}

# wait_for_checks N: until the producer's http_check source ('checks') has made N checks in
# all (from its /metrics; bounded: 120 s). A fault lasts a number of checks, not a time.
wait_for_checks() {
  local port made=0
  port=$(metrics_port producer.log)
  for _ in $(seq 1200); do
    made=$(metric "$port" sent_total checks)
    [ "${made%.*}" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "the producer made only $made checks (waited for $1)"
}

# wait_in_flight WHAT: waits until checks are in flight between the producer and PostgreSQL
# (made by the producer's source, per its /metrics, but not yet stored) and says how many, so
# a fault injected next (WHAT) is known to hit work in progress. Bounded: 60 s.
wait_in_flight() {
  local port made stored
  port=$(metrics_port producer.log)
  for _ in $(seq 1200); do
    made=$(metric "$port" sent_total checks)
    stored=$(q "SELECT count(*) FROM webmon.http_check" 2>/dev/null || echo "")
    if [ -n "$stored" ] && [ "${made%.*}" -gt "$stored" ]; then
      echo "$1: $(( ${made%.*} - stored )) checks in flight (made $made, stored $stored)"
      return 0
    fi
    sleep 0.05
  done
  fail "no check in flight before: $1 (made $made, stored $stored)"
}

# metrics_port LOG: the port of an agent's /metrics endpoint, from its log (waits up to 30 s).
metrics_port() {
  local port=""
  for _ in $(seq 300); do
    port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$work/$1" | tail -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.1
  done
  fail "no metrics endpoint in $1"
}

# metric PORT NAME COMPONENT: a counter or gauge of a component from /metrics (0 when absent).
metric() {
  local v
  v=$(curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    sed -n "s/^webmon_component_$2{component=\"$3\",[^}]*} \([0-9.e+]*\)$/\1/p" | head -1)
  echo "${v:-0}"
}
