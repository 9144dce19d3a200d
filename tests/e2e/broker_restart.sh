#!/usr/bin/env bash
# End to end: the Kafka broker is killed (SIGKILL) and restarted while both agents run. The
# producer keeps its checks until Kafka confirms them, the consumer resumes: every check made
# is stored exactly once. The kill is made while checks are in flight (the test says how many)
# and the outage lasts 20 checks.
# Usage: broker_restart.sh <webmon-agent> <source dir>
# The agents' pids ($producer, $consumer, ...) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" broker

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
export WEBMON_INTERVAL=200ms

start_agent consumer conf/consumer.yaml consumer.log
start_agent producer conf/producer.yaml producer.log

wait_for_rows 20 || fail "nothing stored before the broker kill"
wait_in_flight "broker kill"
scripts/stack kafka kill >/dev/null
made_at_kill=$(metric "$(metrics_port producer.log)" sent_total checks)
echo "broker killed"
wait_for_checks $(( ${made_at_kill%.*} + 20 ))
scripts/stack kafka start >/dev/null || fail "the broker did not restart"
echo "broker restarted after 20 more checks"
# The consumer resumes: rows made after the outage arrive.
made_back=$(metric "$(metrics_port producer.log)" sent_total checks)
wait_for_checks $(( ${made_back%.*} + 10 ))
wait_for_rows $(( ${made_back%.*} + 1 )) || fail "nothing stored after the broker came back"
kill -0 "$producer" 2>/dev/null || fail "the producer died while the broker was down"
kill -0 "$consumer" 2>/dev/null || fail "the consumer died while the broker was down"
finish_exactly_once 100 "$consumer"
echo "ok: $sent checks made across a broker kill, $rows rows stored once each"
