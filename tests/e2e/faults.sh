#!/usr/bin/env bash
# End to end under faults, both agents as separate processes on the local stack: while the
# producer checks targets every 200 ms, the consumer is killed with SIGKILL and restarted three
# times and PostgreSQL is killed and restarted once; garbage is written to the topic. Every
# check the producer made must be stored exactly once, the garbage must be in the dead-letter
# topic, and SIGTERM must stop both agents with exit 0. Each kill is made while checks are in
# flight between the producer and PostgreSQL (the test prints how many), after the consumer has
# made progress since the last one; each outage lasts a number of checks, not a time.
# Usage: faults.sh <webmon-agent> <source dir>
# The agents' pids ($producer, $consumer, ...) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" faults

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
export WEBMON_INTERVAL=200ms

start_agent consumer conf/consumer.yaml consumer.log
start_agent producer conf/producer.yaml producer.log

# Garbage in the topic, between real records (PLAINTEXT listener, as any client could).
wait_for_rows 5 || fail "nothing stored at the start"
printf 'not json at all\n{"schema":1,"kind":"http_check"\n' |
  kcat -b "$KAFKA_PLAINTEXT_HOST" -P -t "$KAFKA_TOPIC" -p 0 || fail "kcat could not write garbage"

stored_now() { q "SELECT count(*) FROM webmon.http_check"; }
made_now() { local m; m=$(metric "$(metrics_port producer.log)" sent_total checks); echo "${m%.*}"; }
for round in 1 2 3; do
  wait_for_rows $(( $(stored_now) + 5 )) || fail "the consumer made no progress before kill $round"
  wait_in_flight "consumer kill -9 ($round)"
  kill -KILL "$consumer"
  wait "$consumer" 2>/dev/null || true
  wait_for_checks $(( $(made_now) + 5 ))
  start_agent consumer conf/consumer.yaml consumer.log
  echo "consumer killed and restarted after 5 more checks ($round)"
done
wait_for_rows $(( $(stored_now) + 5 )) || fail "the consumer made no progress after its restarts"
wait_in_flight "PostgreSQL kill -9"
scripts/stack postgres kill >/dev/null
wait_for_checks $(( $(made_now) + 10 ))
scripts/stack postgres start >/dev/null || fail "PostgreSQL did not restart"
echo "PostgreSQL killed and restarted after 10 more checks"
wait_for_rows $(( $(stored_now) + 5 )) || fail "nothing stored after PostgreSQL came back"

finish_exactly_once 50 "$consumer"
# The DLQ is at-least-once like everything else: a consumer killed after dead-lettering but
# before committing dead-letters the same message again. Count distinct origins.
kcat -b "$KAFKA_PLAINTEXT_HOST" -C -t "$KAFKA_TOPIC.dlq" -e -q -f '%h\n' >"$work/dlq.txt" 2>/dev/null || true
dlq_total=$(grep -c 'webmon-dlq-reason' "$work/dlq.txt" || true)
dlq_origins=$(grep -oE 'webmon-dlq-partition=[0-9]+,webmon-dlq-offset=[0-9]+' "$work/dlq.txt" | sort -u | wc -l)
[ "$dlq_origins" = 2 ] || fail "expected the 2 garbage messages in $KAFKA_TOPIC.dlq, found $dlq_origins distinct ($dlq_total in all): $(head -3 "$work/dlq.txt")"
echo "ok: $sent checks, $rows rows, each id once, 2 garbage messages dead-lettered ($dlq_total DLQ entries), 3 consumer kills and a PostgreSQL kill survived"
