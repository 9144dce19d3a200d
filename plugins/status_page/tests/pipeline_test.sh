#!/usr/bin/env bash
# status_page inside webmon-agent, as users run it: a malformed `listen` is refused with its
# file position (exit 2); generator → status_page serves every target on the page and in JSON;
# http_check → status_page against local targets shows each one's real state;
# a second agent on the same port refuses to start naming the option (exit 1); SIGTERM exits 0
# and leaves the snapshot; a restarted agent shows the history restored from `state_file`.
# Usage: pipeline_test.sh <webmon-agent> <source dir>
set -euo pipefail
agent=$1
src=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log "$work"/*.err; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
  exit 1
}

# 1. A malformed listen address: refused before anything starts, with file:line:column.
cat >"$work/bad.yaml" <<YAML
sources:
  gen: { plugin: generator, count: 1 }
sinks:
  page:
    plugin: status_page
    inputs: [gen]
    listen: localhost
YAML
rc=0
"$agent" --validate --pipeline "$work/bad.yaml" 2>"$work/bad.err" || rc=$?
[ "$rc" = 2 ] || fail "bad listen: exit code $rc, expected 2"
grep -q "bad.yaml:7:[0-9]*: .*option 'listen': expected HOST:PORT" "$work/bad.err" \
  || fail "bad listen: the message does not name the position and the option"

# 2. generator → status_page on a free port.
pipeline() { # FILE TARGETS RATE
  cat >"$1" <<YAML
sources:
  gen: { plugin: generator, targets: $2, rate: $3, failure_every: 4 }
sinks:
  page:
    plugin: status_page
    inputs: [gen]
    listen: 127.0.0.1:0
    title: "Pipeline <test>"
    state_file: $work/status.snapshot
    snapshot_interval: 1s
YAML
}
# get URL: the body on stdout (python3: no curl needed).
get() {
  python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}
wait_for_url() { # LOG -> sets $url
  url=""
  for _ in $(seq 600); do
    url=$(sed -n 's|.*status page on \(http://127.0.0.1:[0-9]*/\).*|\1|p' "$1" 2>/dev/null | tail -1 || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  fail "no 'status page on' line in $1"
}
targets_in_json() { get "${url}status.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(len(g["targets"]) for g in doc["groups"]))'; }

pipeline "$work/run.yaml" 25 500
"$agent" --pipeline "$work/run.yaml" >"$work/first.log" 2>&1 &
first=$!
pids+=("$first")
wait_for_url "$work/first.log"
n=0
for _ in $(seq 600); do
  n=$(targets_in_json || echo 0)
  [ "$n" = 25 ] && break
  sleep 0.1
done
[ "$n" = 25 ] || fail "the JSON lists $n targets, expected 25"
page=$(get "$url")
[ "$(grep -o '<tr class="target"' <<<"$page" | wc -l)" = 25 ] || fail "the page does not show 25 rows"
grep -q "<title>Pipeline &lt;test&gt;</title>" <<<"$page" || fail "the title is not escaped"
# failure_every: 4 → every fourth check fails: the last error is http_status for some targets.
grep -q '<span class="class">http_status</span>' <<<"$page" || fail "no last error shown"

# 3. A second agent on the same port refuses to start, naming the option.
port=${url#http://127.0.0.1:}
port=${port%/}
sed "s|listen: 127.0.0.1:0|listen: 127.0.0.1:$port|; s|status.snapshot|other.snapshot|" \
  "$work/run.yaml" >"$work/busy.yaml"
rc=0
"$agent" --pipeline "$work/busy.yaml" >"$work/busy.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "port in use: exit code $rc, expected 1"
grep -q "option 'listen': cannot listen on 127.0.0.1:$port: Address already in use" "$work/busy.log" \
  || fail "port in use: the message does not name the option and the reason"

# 4. SIGTERM: exit 0, the snapshot is written.
kill -TERM "$first"
wait "$first" || fail "exit code $? after SIGTERM (expected 0)"
[ -s "$work/status.snapshot" ] || fail "no snapshot after stop"
[ ! -e "$work/status.snapshot.tmp" ] || fail "a temporary snapshot was left behind"

# 5. Restart with a single new target: the 25 earlier ones are back, with their uptime.
pipeline "$work/again.yaml" 1 1
sed -i 's|targets: 1,|targets: 1, failure_every: 0,|; s|, failure_every: 4||' "$work/again.yaml"
"$agent" --pipeline "$work/again.yaml" >"$work/second.log" 2>&1 &
second=$!
pids+=("$second")
wait_for_url "$work/second.log"
grep -q "restored 25 targets from '$work/status.snapshot'" "$work/second.log" \
  || fail "the restart did not restore 25 targets"
get "${url}status.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
targets = {t["name"]: t for g in doc["groups"] for t in g["targets"]}
assert len(targets) == 25, "%d targets after the restart" % len(targets)
t = targets["target-00024"]
assert t["uptime_24h_pct"] is not None and t["uptime_24h_pct"] < 100, t
assert t["last_error"]["error"] == "http_status", t
assert len(t["response_times_ms"]) > 0, t
' || fail "the restored history is not served"
kill -TERM "$second"
wait "$second" || fail "restarted agent: exit code $? after SIGTERM (expected 0)"

# 6. Fed by http_check directly (the producer side), against local targets.
python3 "$src/scripts/lib/demo_targets.py" "$work/targets.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/targets.port" ] && break; sleep 0.1; done
[ -s "$work/targets.port" ] || fail "the demo targets did not start"
base="http://127.0.0.1:$(cat "$work/targets.port")"
cat >"$work/checks.yaml" <<YAML
sources:
  checks:
    plugin: http_check
    interval: 200ms
    targets:
      - { name: healthy, url: "$base/healthy", body_regex: "all good", labels: { team: web } }
      - { name: failing, url: "$base/fail", labels: { team: web } }
      - { name: wrong-body, url: "$base/wrong", body_regex: "all good" }
sinks:
  page:
    plugin: status_page
    inputs: [checks]
    listen: 127.0.0.1:0
    group_by: team
YAML
"$agent" --pipeline "$work/checks.yaml" >"$work/checks.log" 2>&1 &
checks=$!
pids+=("$checks")
wait_for_url "$work/checks.log"
ok=false
deadline=$((SECONDS + 120))  # bounds a hang only
while [ $SECONDS -lt $deadline ]; do
  if get "${url}status.json" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
groups = {g["name"]: {t["name"]: t for t in g["targets"]} for g in doc["groups"]}
assert sorted(groups) == ["Other", "web"], groups
h, f, w = groups["web"]["healthy"], groups["web"]["failing"], groups["Other"]["wrong-body"]
assert h["state"] == "up" and h["status_code"] == 200 and h["last_error"] is None, h
assert f["state"] == "down" and f["status_code"] == 500 and f["last_error"]["error"] == "http_status", f
assert w["state"] == "down" and w["last_error"]["error"] == "body_mismatch", w
assert h["uptime_24h_pct"] == 100 and f["uptime_24h_pct"] == 0, (h, f)
' 2>"$work/checks.err"; then
    ok=true
    break
  fi
  sleep 0.2
done
$ok || fail "http_check → status_page: $(tail -2 "$work/checks.err")"
kill -TERM "$checks"
wait "$checks" || fail "http_check pipeline: exit code $? after SIGTERM (expected 0)"
echo "ok: bad listen refused at its position; 25 targets served; port in use refused; history restored after a restart; http_check → page shows each target's state"
