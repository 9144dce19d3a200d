#!/usr/bin/env bash
# End to end, as users run it: `webmon-agent --pipeline conf/producer.yaml` and
# `webmon-agent --pipeline conf/consumer.yaml` as two processes against the local stack
# (Kafka over mTLS, PostgreSQL with verify-full) and local targets (healthy, 500, slow beyond
# the timeout, wrong body). The producer's own count of checks taken by the pipeline must equal
# the rows stored, with the right status codes and error classes, and both agents must stop
# cleanly (exit 0) on SIGTERM.
# Usage: scheduled_checks.sh <webmon-agent> <source dir>
set -euo pipefail
agent=$1
src=$2
cd "$src"
eval "$(scripts/stack env)"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

python3 scripts/lib/demo_targets.py "$work/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$work/port")"
cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
- { name: slow, url: "$base/slow", timeout: 500ms }
- { name: wrong-body, url: "$base/wrong", body_regex: "all good" }
YAML

export KAFKA_TOPIC
KAFKA_TOPIC=$(scripts/stack topic e2e 3)
export KAFKA_GROUP="e2e-$(basename "$work")"
export DATABASE_DB
DATABASE_DB=$(scripts/stack db e2e)
export WEBMON_TARGETS_FILE=$work/targets.yaml WEBMON_INTERVAL=1s

"$agent" --pipeline conf/consumer.yaml >"$work/consumer.log" 2>&1 &
consumer=$!
pids+=($consumer)
"$agent" --pipeline conf/producer.yaml >"$work/producer.log" 2>&1 &
producer=$!
pids+=($producer)

sleep 6
kill -0 "$producer" 2>/dev/null || fail "the producer stopped early"
kill -TERM "$producer"
for _ in $(seq 300); do kill -0 "$producer" 2>/dev/null || break; sleep 0.1; done
wait "$producer" || fail "producer exit code $? after SIGTERM (expected 0)"
sent=$(sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer.log")
[ -n "$sent" ] || fail "no producer summary"
delivered=$(sed -n "s/.*sink 'kafka' (kafka_sink): received=[0-9]* sent=\([0-9]*\).*/\1/p" "$work/producer.log")
[ "$sent" -ge 16 ] || fail "only $sent checks in 6 s for 4 targets every 1 s"
[ "$delivered" = "$sent" ] || fail "producer: $sent checks but $delivered confirmed by Kafka"

export PGPASSWORD=$DATABASE_PASSWD
conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$DATABASE_DB user=$DATABASE_USER sslmode=verify-full sslrootcert=$DATABASE_SSLROOTCERT"
q() { psql -X -tA -v ON_ERROR_STOP=1 "$conn" -c "$1"; }
rows=0
for _ in $(seq 120); do
  rows=$(q "SELECT count(*) FROM webmon.http_check" 2>/dev/null || echo 0)
  [ "$rows" -ge "$sent" ] && break
  sleep 0.5
done
kill -TERM "$consumer"
wait "$consumer" || fail "consumer exit code $? after SIGTERM (expected 0)"
rows=$(q "SELECT count(*) FROM webmon.http_check")
[ "$rows" = "$sent" ] || fail "$sent checks made, $rows rows stored"
[ "$(q "SELECT count(DISTINCT id) FROM webmon.http_check")" = "$sent" ] || fail "duplicate ids"

check() { # target, expected "success|status|error"
  local got
  got=$(q "SELECT DISTINCT success::text || '|' || coalesce(status_code::text, 'null') || '|' || coalesce(error, 'null') FROM webmon.http_check WHERE target = '$1'")
  [ "$got" = "$2" ] || fail "target $1: expected $2, got: $got"
}
check healthy "true|200|null"
check failing "false|500|http_status"
check slow "false|null|timeout"
check wrong-body "false|200|body_mismatch"
[ "$(q "SELECT count(*) FROM webmon.http_check WHERE response_time_ms < 0 OR connect_ms < 0 OR lateness_ms < 0")" = 0 ] \
  || fail "negative timings stored"
[ "$(q "SELECT count(*) FROM webmon.rejected")" = 0 ] || fail "records were rejected"
echo "ok: $sent checks made, $rows rows stored exactly once with the right status codes and error classes"
