#!/usr/bin/env bash
# End to end: a Kafka outage must not blind the monitor, falsify a check or lose one.
# The producer (conf/producer.yaml: disk buffer) checks 20 healthy targets every 200 ms while
# the broker is down; meanwhile it is killed -9 once and stopped with SIGTERM once, and started
# again. After the broker returns, every check acknowledged to the disk buffer is stored
# exactly once, no check failed, and no target has a gap in its checks that the producer did
# not count as its own overlap (a slot skipped because the target's previous check was still
# running or not yet collected — which a starved machine causes, an outage must not).
# Usage: outage.sh <webmon-agent> <source dir>
# The agents' pids ($producer, $consumer, ...) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" outage

restore_broker() { scripts/stack kafka start >/dev/null 2>&1 || true; }
trap 'restore_broker; e2e_cleanup' EXIT

{
  for i in $(seq -w 1 20); do echo "- { name: t$i, url: \"$base/healthy\", body_regex: \"all good\" }"; done
} >"$work/targets.yaml"
export WEBMON_INTERVAL=200ms WEBMON_TIMEOUT=2s

# q1 SQL: like q, one value.
start_agent consumer conf/consumer.yaml consumer.log
WEBMON_AGENT_NAME=run1 start_agent producer conf/producer.yaml producer1.log
wait_for_rows 40 || fail "nothing stored before the outage"

scripts/stack kafka kill >/dev/null
echo "broker killed"
port=$(metrics_port producer1.log)
# Run 1: wait until the disk buffer holds 1,000 checks (10 s of checks), then kill -9.
for _ in $(seq 600); do
  on_disk=$(metric "$port" buffer_records kafka)
  [ "${on_disk%.*}" -ge 1000 ] && break
  sleep 0.1
done
[ "${on_disk%.*}" -ge 1000 ] || fail "the disk buffer never held 1,000 checks (it held $on_disk)"
made1=$(metric "$port" sent_total checks)
skipped1=$(metric "$port" checks_skipped_overlap_total checks)
kill -KILL "$producer"
wait "$producer" 2>/dev/null || true
echo "producer killed -9 with $on_disk checks on disk ($made1 checks made by then)"

# Run 2: started while the broker is still down, stopped with SIGTERM during the outage: it
# must exit 0 at once, its checks safe on disk.
WEBMON_AGENT_NAME=run2 start_agent producer conf/producer.yaml producer2.log
port=$(metrics_port producer2.log)
for _ in $(seq 600); do
  made=$(metric "$port" sent_total checks)
  [ "${made%.*}" -ge 400 ] && break
  sleep 0.1
done
left=$(metric "$port" buffer_records kafka)
kill -TERM "$producer"
wait "$producer" || fail "producer exit code $? after SIGTERM during the outage (expected 0)"
made2=$(sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer2.log")
skipped2=$(sed -n "s/.*source 'checks' (http_check): .* checks_skipped_overlap=\([0-9]*\).*/\1/p" "$work/producer2.log")
grep -q "records remain in the disk buffer .*; they are sent at the next start" "$work/producer2.log" ||
  fail "the producer did not say where its undelivered records are"
echo "producer stopped during the outage: exit 0, $made2 checks made, $left on disk"

scripts/stack kafka start >/dev/null || fail "the broker did not restart"
echo "broker back"
# Run 3: sends the backlog first, then checks as usual.
WEBMON_AGENT_NAME=run3 start_agent producer conf/producer.yaml producer3.log
port=$(metrics_port producer3.log)
for _ in $(seq 600); do
  [ "$(metric "$port" buffer_records kafka)" = "0" ] && [ "$(metric "$port" sent_total checks)" != "0" ] && break
  sleep 0.1
done
stop_agent "$producer" producer
made3=$(sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer3.log")
skipped3=$(sed -n "s/.*source 'checks' (http_check): .* checks_skipped_overlap=\([0-9]*\).*/\1/p" "$work/producer3.log")

rows_of() { q "SELECT count(*) FROM webmon.http_check WHERE agent = '$1'"; }
for _ in $(seq 240); do
  [ "$(rows_of run2)" -ge "$made2" ] && [ "$(rows_of run3)" -ge "$made3" ] &&
    [ "$(rows_of run1)" -ge "${made1%.*}" ] && break
  sleep 0.5
done
stop_agent "$consumer" consumer

rows1=$(rows_of run1)
rows2=$(rows_of run2)
rows3=$(rows_of run3)
echo "stored: run1 $rows1 (>= $made1 made before the kill -9), run2 $rows2 of $made2, run3 $rows3 of $made3"
[ "$rows1" -ge "${made1%.*}" ] || fail "run 1: $made1 checks were made and acknowledged to disk before the kill, only $rows1 stored"
[ "$rows2" = "$made2" ] || fail "run 2: $made2 checks made, $rows2 stored"
[ "$rows3" = "$made3" ] || fail "run 3: $made3 checks made, $rows3 stored"
[ "$(q "SELECT count(*) - count(DISTINCT id) FROM webmon.http_check")" = 0 ] ||
  fail "a check was stored twice"
failed=$(q "SELECT count(*) FROM webmon.http_check WHERE NOT success")
[ "$failed" = 0 ] || fail "$failed checks of healthy targets were recorded as failures: $(q "SELECT error, error_message FROM webmon.http_check WHERE NOT success LIMIT 3")"
# No gaps but the producer's own: within one run, a target's checks are one interval apart
# (200 ms grid). A slot is skipped only when the target's previous check still ran (or had not
# been collected yet) when it came — counted in checks_skipped_overlap; on a starved machine
# that happens (checks that took about a second, a result collected late). Every slot
# missing from the table must be one the producer counted so; an outage must cause none.
gaps="SELECT agent, target, time, lateness_ms, lag(time) OVER w AS prev,
        lag(response_time_ms) OVER w AS prev_ms,
        extract(epoch FROM time - lag(time) OVER w) * 1000 AS d
      FROM webmon.http_check WINDOW w AS (PARTITION BY agent, target ORDER BY time)"
gap=$(q "SELECT coalesce(max(d), 0) FROM ($gaps) g")
echo "largest gap between a target's checks within a run: ${gap} ms"
counted_by_run=([1]="${skipped1%.*}" [2]="$skipped2" [3]="$skipped3")
for run in 1 2 3; do
  missing=$(q "SELECT coalesce(sum(round(d / 200) - 1), 0)::bigint FROM ($gaps) g WHERE agent = 'run$run' AND d >= 300")
  counted=${counted_by_run[$run]}
  echo "run $run: $missing slots missing from the table, $counted skipped as overlap by the producer"
  [ "$missing" -le "${counted:-0}" ] ||
    fail "run $run: $missing slots missing but only ${counted:-0} counted as overlap: $(q "SELECT string_agg(format('%s: %s after %s (%s ms, lateness %s ms; the check before took %s ms)', target, time, prev, d, lateness_ms, prev_ms), '; ') FROM ($gaps) g WHERE agent = 'run$run' AND d >= 300")"
done
echo "ok: $((rows1 + rows2 + rows3)) checks across an outage, a kill -9 and a SIGTERM, each stored once; acknowledged-to-disk at the kill: $on_disk"
