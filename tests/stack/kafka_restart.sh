#!/usr/bin/env bash
# Fault controls on the broker: kill -9 then start, stop then start; the topic's
# data survives each, and while the broker is down clients really cannot reach it.
# Run serially (ctest RUN_SERIAL): other tests must not see the broker go away.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

topic="$(new_topic 2)"
make_messages 200 before >"$TMP/in1"
kcat_plain -P -t "$topic" -K: -X acks=all <"$TMP/in1" || fail "producer failed"
expect_eq 200 "$(consume_values kcat_plain "$topic" | wc -l)" "messages before the kill"

pid_before="$("$STACK" kafka status | sed -n 's/.*pid \([0-9]*\).*/\1/p')"
[ -n "$pid_before" ] || fail "no broker pid from 'scripts/stack kafka status'"
"$STACK" kafka kill
kill -0 "$pid_before" 2>/dev/null && fail "broker pid $pid_before still alive after kill"
ok "broker process $pid_before is gone after kill -9"
expect_fail "metadata request while the broker is dead" timeout 20 kcat -L -m 3 -b "$KAFKA_PLAINTEXT_HOST"
set +e; st="$("$STACK" status)"; rc=$?; set -e
expect_eq 3 "$rc" "status exit code with the broker down"
expect_match '^kafka: stopped' "$st" "status says kafka stopped"
expect_match '^postgres: running' "$st" "status says postgres still running"

"$STACK" kafka start
got="$(consume_values kcat_plain "$topic")"
expect_eq 200 "$(wc -l <<<"$got")" "messages after kill -9 and start"
cut -d: -f2 "$TMP/in1" | sort | cmp -s - <(printf '%s\n' "$got") || fail "data changed across kill -9"
ok "data identical after kill -9"

# Graceful stop + start with new messages in between (`kafka restart` is the same two steps;
# each broker start costs 10-30 s on a busy 2-core machine, so it is not run a third time).
make_messages 50 after >"$TMP/in2"
kcat_plain -P -t "$topic" -K: -X acks=all <"$TMP/in2" || fail "producer after restart failed"
"$STACK" kafka stop
expect_fail "metadata request while the broker is stopped" timeout 20 kcat -L -m 3 -b "$KAFKA_PLAINTEXT_HOST"
"$STACK" kafka start
expect_eq 250 "$(consume_values kcat_plain "$topic" | wc -l)" "messages after stop and start"
# All three listeners answer again (status checks every listener).
"$STACK" status >/dev/null || fail "stack not fully up after the fault tests"
ok "status: everything running again"
done_ok
