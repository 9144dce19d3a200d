#!/usr/bin/env bash
# End to end under faults, both agents as separate processes on the local stack: while the
# producer checks targets every 200 ms, the consumer is killed with SIGKILL and restarted three
# times and PostgreSQL is killed and restarted once; garbage is written to the topic. Every
# check the producer made must be stored exactly once, the garbage must be in the dead-letter
# topic, and SIGTERM must stop both agents with exit 0.
# Usage: faults.sh <webmon-agent> <source dir>
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
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -15 "$f"; done; exit 1; }

python3 scripts/lib/demo_targets.py "$work/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$work/port")"
cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
export KAFKA_TOPIC
KAFKA_TOPIC=$(scripts/stack topic faults 3)
export KAFKA_GROUP="faults-$(basename "$work")"
export DATABASE_DB
DATABASE_DB=$(scripts/stack db faults)
export WEBMON_TARGETS_FILE=$work/targets.yaml WEBMON_INTERVAL=200ms

start_consumer() {
  "$agent" --pipeline conf/consumer.yaml >>"$work/consumer.log" 2>&1 &
  consumer=$!
  pids+=($consumer)
}
start_consumer
"$agent" --pipeline conf/producer.yaml >"$work/producer.log" 2>&1 &
producer=$!
pids+=($producer)

# Garbage in the topic, between real records (PLAINTEXT listener, as any client could).
sleep 2
printf 'not json at all\n{"schema":1,"kind":"http_check"\n' |
  kcat -b "$KAFKA_PLAINTEXT_HOST" -P -t "$KAFKA_TOPIC" -p 0 || fail "kcat could not write garbage"

for round in 1 2 3; do
  sleep 2
  kill -KILL "$consumer"
  wait "$consumer" 2>/dev/null || true
  sleep 1
  start_consumer
  echo "consumer killed and restarted ($round)"
done
sleep 2
scripts/stack postgres kill >/dev/null
sleep 2
scripts/stack postgres start >/dev/null || fail "PostgreSQL did not restart"
echo "PostgreSQL killed and restarted"
sleep 2

kill -TERM "$producer"
wait "$producer" || fail "producer exit code $? after SIGTERM (expected 0)"
sent=$(sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer.log")
[ -n "$sent" ] && [ "$sent" -ge 50 ] || fail "producer made too few checks: '$sent'"

export PGPASSWORD=$DATABASE_PASSWD
conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$DATABASE_DB user=$DATABASE_USER sslmode=verify-full sslrootcert=$DATABASE_SSLROOTCERT"
q() { psql -X -tA -v ON_ERROR_STOP=1 "$conn" -c "$1"; }
rows=0
for _ in $(seq 240); do
  rows=$(q "SELECT count(*) FROM webmon.http_check" 2>/dev/null || echo 0)
  [ "$rows" -ge "$sent" ] && break
  sleep 0.5
done
kill -TERM "$consumer"
wait "$consumer" || fail "consumer exit code $? after SIGTERM (expected 0)"
rows=$(q "SELECT count(*) FROM webmon.http_check")
distinct=$(q "SELECT count(DISTINCT id) FROM webmon.http_check")
[ "$rows" = "$sent" ] || fail "$sent checks made, $rows rows stored"
[ "$distinct" = "$rows" ] || fail "$rows rows but $distinct distinct ids"
dlq=$(kcat -b "$KAFKA_PLAINTEXT_HOST" -C -t "$KAFKA_TOPIC.dlq" -e -q -f '%h\n' 2>/dev/null | grep -c 'webmon-dlq-reason' || true)
[ "$dlq" = 2 ] || fail "expected the 2 garbage messages in $KAFKA_TOPIC.dlq, found $dlq"
echo "ok: $sent checks, $rows rows, each id once, 2 garbage messages dead-lettered, 3 consumer kills and a PostgreSQL kill survived"
