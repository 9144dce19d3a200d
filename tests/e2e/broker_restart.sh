#!/usr/bin/env bash
# End to end: the Kafka broker is killed (SIGKILL) and restarted while both agents run. The
# producer keeps its checks until Kafka confirms them, the consumer resumes: every check made
# is stored exactly once.
# Usage: broker_restart.sh <webmon-agent> <source dir>
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" broker

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
export WEBMON_INTERVAL=200ms

start_agent consumer conf/consumer.yaml consumer.log
start_agent producer conf/producer.yaml producer.log

sleep 5
scripts/stack kafka kill >/dev/null
echo "broker killed"
sleep 4
scripts/stack kafka start >/dev/null || fail "the broker did not restart"
echo "broker restarted"
sleep 6
kill -0 "$producer" 2>/dev/null || fail "the producer died while the broker was down"
kill -0 "$consumer" 2>/dev/null || fail "the consumer died while the broker was down"
finish_exactly_once 100 "$consumer"
echo "ok: $sent checks made across a broker kill, $rows rows stored once each"
