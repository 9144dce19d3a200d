#!/usr/bin/env bash
# End to end, as users run it: `webmon-agent --pipeline conf/producer.yaml` and
# `webmon-agent --pipeline conf/consumer.yaml` as two processes against the local stack
# (Kafka over mTLS, PostgreSQL with verify-full) and local targets (healthy, 500, slow beyond
# the timeout, wrong body). The producer's own count of checks taken by the pipeline must equal
# the rows stored, with the right status codes and error classes, and both agents must stop
# cleanly (exit 0) on SIGTERM.
# Usage: scheduled_checks.sh <webmon-agent> <source dir>
# The agents' pids ($producer, $consumer, ...) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" e2e

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
- { name: slow, url: "$base/slow", timeout: 500ms }
- { name: wrong-body, url: "$base/wrong", body_regex: "all good" }
YAML

export WEBMON_INTERVAL=1s

start_agent consumer conf/consumer.yaml consumer.log
start_agent producer conf/producer.yaml producer.log

wait_for_checks 16
kill -0 "$producer" 2>/dev/null || fail "the producer stopped early"
kill -TERM "$producer"
for _ in $(seq 300); do kill -0 "$producer" 2>/dev/null || break; sleep 0.1; done
wait "$producer" || fail "producer exit code $? after SIGTERM (expected 0)"
sent=$(checks_made)
[ -n "$sent" ] || fail "no producer summary"
delivered=$(sed -n "s/.*sink 'kafka' (kafka_sink): received=[0-9]* sent=\([0-9]*\).*/\1/p" "$work/producer.log")
[ "$sent" -ge 16 ] || fail "the producer's summary counts $sent checks, its /metrics said 16 or more"
[ "$delivered" = "$sent" ] || fail "producer: $sent checks but $delivered confirmed by Kafka"

wait_for_rows "$sent" || true # the count below says what is missing
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
