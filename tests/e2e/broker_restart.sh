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

"$agent" --pipeline conf/consumer.yaml >"$work/consumer.log" 2>&1 &
consumer=$!
pids+=($consumer)
"$agent" --pipeline conf/producer.yaml >"$work/producer.log" 2>&1 &
producer=$!
pids+=($producer)

sleep 5
scripts/stack kafka kill >/dev/null
echo "broker killed"
sleep 4
scripts/stack kafka start >/dev/null || fail "the broker did not restart"
echo "broker restarted"
sleep 6
kill -0 "$producer" 2>/dev/null || fail "the producer died while the broker was down"
kill -0 "$consumer" 2>/dev/null || fail "the consumer died while the broker was down"
kill -TERM "$producer"
wait "$producer" || fail "producer exit code $? after SIGTERM (expected 0)"
sent=$(checks_made)
[ -n "$sent" ] && [ "$sent" -ge 100 ] || fail "producer made too few checks: '$sent'"
wait_for_rows "$sent"
kill -TERM "$consumer"
wait "$consumer" || fail "consumer exit code $? after SIGTERM (expected 0)"
rows=$(q "SELECT count(*) FROM webmon.http_check")
distinct=$(q "SELECT count(DISTINCT id) FROM webmon.http_check")
[ "$rows" = "$sent" ] || fail "$sent checks made, $rows rows stored"
[ "$distinct" = "$rows" ] || fail "$rows rows but $distinct distinct ids"
echo "ok: $sent checks made across a broker kill, $rows rows stored once each"
