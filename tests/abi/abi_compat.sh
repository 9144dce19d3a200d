#!/usr/bin/env bash
# The frozen-ABI proof. Modes:
#   run <webmon-agent> <plugin dir>: plugins built against the frozen SDK 1.0 headers (source →
#     transform → sink, plus the built-in file sink) run in the current agent with the right
#     record counts; SIGHUP reloads the 1.1 source and skips the 1.0 one without calling
#     anything past the end of its 1.0 vtable.
#   old-agent <abi_old_loader> <plugin dir>: an agent providing ABI 1.0 loads the 1.0 plugins
#     and refuses the 1.1 one, naming the file and both versions.
#   frozen <sdk-1.0 dir> <sha256 file>: the frozen headers are byte for byte as released.
set -euo pipefail
mode=$1
tmp=$(mktemp -d)
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then kill -KILL "$agent_pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && { echo "--- agent log:"; cat "$tmp/log"; }; exit 1; }
# Waits (bounded only against a hang) until the command succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}

case $mode in
run)
  agent=$2 dir=$3
  cat >"$tmp/pipeline.yaml" <<YAML
agent:
  name: abi-test
sources:
  old_src:
    plugin: abi10_source
    count: 30
    hold: true
  new_src:
    plugin: abi11_source
transforms:
  old_tr:
    plugin: abi10_transform
    inputs: [old_src]
sinks:
  old_sink:
    plugin: abi10_sink
    inputs: [old_tr]
  out:
    plugin: file
    inputs: [old_tr]
    path: $tmp/out.jsonl
  hole:
    plugin: blackhole
    inputs: [new_src]
YAML
  "$agent" --plugin-dir "$dir" --pipeline "$tmp/pipeline.yaml" --validate >"$tmp/validate" 2>&1 \
    || { cat "$tmp/validate"; fail "--validate refused the 1.0 plugins"; }
  "$agent" --plugin-dir "$dir" --pipeline "$tmp/pipeline.yaml" 2>"$tmp/log" &
  agent_pid=$!
  lines() { [ -f "$tmp/out.jsonl" ] && [ "$(wc -l <"$tmp/out.jsonl")" -ge 20 ]; }
  wait_for "20 records in the file sink" lines
  kill -HUP "$agent_pid"
  reloaded() { grep -q "reload: " "$tmp/log"; }
  wait_for "the reload log line" reloaded
  kill -TERM "$agent_pid"
  code=0
  wait "$agent_pid" || code=$?
  agent_pid=
  [ "$code" = 0 ] || fail "agent exited $code"
  grep -q "reload: 1 source(s) reloaded, 0 failed, 1 skipped (old_src: built for SDK ABI 1.0, which has no reload)" "$tmp/log" \
    || fail "unexpected reload line"
  grep -q "abi11_source reloaded" "$tmp/log" || fail "the 1.1 source's on_reload did not run"
  if grep -q "canary" "$tmp/log"; then fail "the host called past the end of the 1.0 Source"; fi
  [ "$(wc -l <"$tmp/out.jsonl")" = 20 ] || fail "file sink wrote $(wc -l <"$tmp/out.jsonl") lines, expected 20"
  [ "$(grep -c '"abi":"1.0"' "$tmp/out.jsonl")" = 20 ] || fail "records lack the transform's label"
  grep -q "source 'old_src' (abi10_source): received=0 sent=30 errors=0 dropped=0" "$tmp/log" \
    || fail "old_src did not send 30 records"
  grep -Eq "transform 'old_tr' \(abi10_transform\): .*dropped_by_rule=10" "$tmp/log" \
    || fail "old_tr did not drop 10 records"
  grep -Eq "sink 'old_sink' \(abi10_sink\): received=20 sent=20 errors=0 dropped=0 .*seen=20 labelled=20" "$tmp/log" \
    || fail "old_sink did not get the 20 labelled records"
  grep -q "sink 'out' (file): received=20 sent=20 errors=0" "$tmp/log" || fail "file sink counts"
  grep -Eq "source 'new_src' \(abi11_source\): .*reloads=1" "$tmp/log" || fail "new_src reloads=1"
  echo "SDK 1.0 plugins ran in the ABI $(grep -o 'provides SDK ABI [0-9.]*' <("$agent" --version)) agent; SIGHUP skipped them: OK"
  ;;
old-agent)
  loader=$2 dir=$3
  "$loader" "$dir/abi10_source.so" "$dir/abi10_transform.so" "$dir/abi10_sink.so" >"$tmp/old10" \
    || { cat "$tmp/old10"; fail "the ABI 1.0 agent refused a 1.0 plugin"; }
  grep -qx "loaded abi10_source (ABI 1.0)" "$tmp/old10" || fail "$(cat "$tmp/old10")"
  code=0
  "$loader" "$dir/abi11_source.so" >"$tmp/old11" || code=$?
  # abi11_source is built against the working tree's SDK (ABI 1.1 or newer: the current minor).
  minor=$(sed -n 's/^#define WEBMON_SDK_ABI_MINOR \([0-9]*\)$/\1/p' "$(dirname "$0")/../../sdk/include/webmon/sdk/version.hpp")
  [ "$code" = 1 ] || fail "the ABI 1.0 agent loaded a plugin built for 1.$minor: $(cat "$tmp/old11")"
  expected="refused: $dir/abi11_source.so: built for webmon SDK ABI 1.$minor, but this agent provides ABI 1.0 (upgrade the agent, or rebuild the plugin against this agent's SDK)"
  [ "$(cat "$tmp/old11")" = "$expected" ] || fail "unexpected refusal: $(cat "$tmp/old11")"
  echo "an ABI 1.0 agent refuses a 1.$minor plugin by name with both versions: OK"
  ;;
frozen)
  (cd "$2" && sha256sum --quiet -c "$3") || fail "tests/abi/sdk-1.0 was edited: it must stay as released"
  echo "frozen SDK 1.0 headers unchanged: OK"
  ;;
*)
  echo "usage: $0 run|old-agent|frozen ..." >&2
  exit 2
  ;;
esac
