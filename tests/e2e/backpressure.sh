#!/usr/bin/env bash
# Without the stack: a blocked sink never falsifies a check, and a torn disk buffer is cut.
#  1. http_check checks targets that answer in 400 ms (timeout 1 s) and feeds a file sink and a
#     sink that takes 5 s per batch behind a small `block` buffer: the downstream fills up (the
#     checks are delayed, counted), yet no check is recorded as a timeout.
#  2. A disk buffer left with records is truncated mid-record: the next start cuts the torn
#     tail, says so, and delivers the records before it.
# Usage: backpressure.sh <webmon-agent> <source dir>
set -euo pipefail
agent=$1
cd "$2"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  exit 1
}
python3 scripts/lib/demo_targets.py "$work/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$work/port")"

# --- 1. a blocked sink with slow targets in flight
cat >"$work/blocked.yaml" <<YAML
agent: { name: blocked, shutdown_timeout: 3s, metrics: { listen: "127.0.0.1:0" } }
sources:
  checks:
    plugin: http_check
    interval: 500ms
    timeout: 1s
    targets:
$(for i in $(seq 1 10); do echo "      - { name: s$i, url: \"$base/slowish\" }"; done)
    batch_size: 5
    flush_interval: 10ms
sinks:
  out:
    plugin: file
    inputs: [checks]
    path: $work/checks.jsonl
  stuck:
    plugin: blackhole
    inputs: [checks]
    delay: 5s
    buffer: { max_records: 10 }
    batch: { max_records: 5 }
YAML
"$agent" --pipeline "$work/blocked.yaml" >"$work/blocked.log" 2>&1 &
pid=$!
pids+=("$pid")
port=""
for _ in $(seq 300); do
  port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$work/blocked.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || fail "no metrics endpoint"
delayed=0
for _ in $(seq 600); do
  delayed=$(curl -fsS "http://127.0.0.1:$port/metrics" |
    sed -n 's/^webmon_component_checks_delayed_downstream_total{component="checks",.*} \([0-9]*\)$/\1/p')
  [ "${delayed:-0}" -ge 20 ] && break
  sleep 0.1
done
[ "${delayed:-0}" -ge 20 ] || fail "the downstream never filled up (checks delayed: ${delayed:-0})"
kill -TERM "$pid"
wait "$pid" || true  # the stuck sink may hold the stop up to its timeout; only the records count
checks=$(wc -l <"$work/checks.jsonl")
timeouts=$(grep -c '"error":"timeout"' "$work/checks.jsonl" || true)
echo "blocked sink: $checks checks recorded, $delayed checks delayed by the downstream, $timeouts timeouts"
[ "$checks" -ge 10 ] || fail "only $checks checks recorded"
[ "$timeouts" = 0 ] || fail "$timeouts checks of targets answering in 400 ms were recorded as timeouts"
grep -q 'downstream full' "$work/blocked.log" || fail "no warning that checks were delayed"

# --- 2. a torn disk buffer tail
cat >"$work/fill.yaml" <<YAML
agent: { name: fill, state_dir: $work/state, shutdown_timeout: 2s }
sources:
  gen: { plugin: generator, count: 1000, batch_size: 100 }
sinks:
  out:
    plugin: blackhole
    inputs: [gen]
    status: retryable
    buffer: { type: disk }
    retry: { initial_backoff: 1h }
YAML
"$agent" --pipeline "$work/fill.yaml" >"$work/fill.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 300); do grep -q "finished after emitting 1000 records" "$work/fill.log" && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid" || fail "the filling agent exit code $? after SIGTERM (expected 0: its records are on disk)"
grep -q "1000 records remain in the disk buffer" "$work/fill.log" || fail "the 1000 records are not reported on disk"
segment=$(ls "$work"/state/buffers/out/segment-*)
truncate -s -100 "$segment"
cat >"$work/drain.yaml" <<YAML
agent: { name: drain, state_dir: $work/state }
sources:
  gen: { plugin: generator, count: 1 }
sinks:
  out: { plugin: blackhole, inputs: [gen], buffer: { type: disk } }
YAML
"$agent" --pipeline "$work/drain.yaml" >"$work/drain.log" 2>&1 || fail "the draining agent failed"
grep -q "cut 1 records" "$work/drain.log" || fail "the torn record was not reported"
grep -q "999 records .* left by a previous run are sent first" "$work/drain.log" || fail "the records before the tear were not found"
grep -q "sink 'out' (blackhole): received=1 sent=1000 " "$work/drain.log" ||
  fail "expected the 999 records before the tear and 1 new one delivered"
echo "ok: torn tail cut and counted, the 999 records before it delivered"
