#!/usr/bin/env bash
# The SDK as third parties use it. Installs the agent and the SDK from the build tree into a
# temporary prefix; builds every example under sdk/examples OUT OF TREE against that installed
# SDK (find_package(webmon_sdk)); runs the examples' own unit tests (the installed test kit,
# no agent); runs hello_sink with --plugin-dir; installs tcp_connect and field_filter with
# `cmake --install` and runs them in the agent installed to the same prefix WITHOUT
# --plugin-dir (webmon_sdk_add_plugin installs into the agent's plugin directory).
# Usage: sdk_example.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
# Waits (bounded only against a hang) until the command succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}
agent=$tmp/prefix/bin/webmon-agent

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for ex in hello_sink tcp_connect field_filter; do
  cmake -S "$src/sdk/examples/$ex" -B "$tmp/$ex" -G Ninja \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/$ex-configure.log" 2>&1 \
    || fail "configuring $ex"
  cmake --build "$tmp/$ex" >"$tmp/$ex-build.log" 2>&1 || fail "building $ex"
  test -f "$tmp/$ex/$ex.so" || fail "$ex.so was not built"
  if [ -f "$src/sdk/examples/$ex/${ex}_test.cpp" ]; then
    ctest --test-dir "$tmp/$ex" --output-on-failure >"$tmp/$ex-test.log" 2>&1 \
      || fail "the unit tests of $ex failed"
  fi
done

# hello_sink: the installed agent finds its built-in plugins (generator) relative to itself,
# and the example through --plugin-dir.
HELLO_COUNT=1000 HELLO_REPORT="$tmp/report" \
  "$agent" --plugin-dir "$tmp/hello_sink" \
  --pipeline "$src/sdk/examples/hello_sink/pipeline.yaml" 2>"$tmp/hello.log"
# 1,000 records over 10 targets in two batches of 500: target-00003 is 1 in 10.
expected=$'hello_sink: 50 of 500 records match\nhello_sink: 50 of 500 records match'
[ "$(cat "$tmp/report")" = "$expected" ] || fail "unexpected report: $(cat "$tmp/report")"
grep -Eq "sink 'hello' \(hello_sink\): received=1000 sent=1000 errors=0 dropped=0 .*matched=100" "$tmp/hello.log" \
  || fail "unexpected hello_sink summary"

# `cmake --install` of an example puts the plugin in the agent's plugin directory.
plugin_dir=$(cd "$tmp/prefix" && dirname "$(find . -path '*/webmon/plugins/generator.so')")
for ex in tcp_connect field_filter; do
  cmake --install "$tmp/$ex" >"$tmp/$ex-install.log" 2>&1 || fail "installing $ex"
  test -f "$tmp/prefix/$plugin_dir/$ex.so" || fail "$ex.so not installed in $plugin_dir: $(cat "$tmp/$ex-install.log")"
done
"$agent" --list-plugins >"$tmp/list.log" 2>&1
# The ABI the example was built with: the installed SDK's (examples build against this tree's).
abi_minor=$(sed -n 's/^#define WEBMON_SDK_ABI_MINOR \([0-9]*\)$/\1/p' "$src/sdk/include/webmon/sdk/version.hpp")
grep -q "^tcp_connect (source, version 1.0.0, ABI 1.$abi_minor)" "$tmp/list.log" ||
  fail "the agent does not list tcp_connect (built for ABI 1.$abi_minor)"
grep -q "^field_filter (transform, version 1.0.0, ABI 1.$abi_minor)" "$tmp/list.log" ||
  fail "the agent does not list field_filter (built for ABI 1.$abi_minor)"

# field_filter, without --plugin-dir: 1,000 generated checks, every 10th failed; successes dropped.
FILTER_OUT="$tmp/failures.jsonl" "$agent" --pipeline "$src/sdk/examples/field_filter/pipeline.yaml" \
  2>"$tmp/filter.log" || fail "the field_filter pipeline failed"
[ "$(wc -l <"$tmp/failures.jsonl")" = 100 ] || fail "expected 100 failed checks, got $(wc -l <"$tmp/failures.jsonl")"
[ "$(grep -c '"success":false' "$tmp/failures.jsonl")" = 100 ] || fail "a success passed the filter"
grep -Eq "transform 'failures' \(field_filter\): .*matched=900" "$tmp/filter.log" || fail "field_filter summary"

# tcp_connect, without --plugin-dir: checks a port listening on 127.0.0.1 until stopped.
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.close()
' >"$tmp/port" &
pids+=($!)
has_port() { [ -s "$tmp/port" ]; }
wait_for "the test listener" has_port
port=$(head -1 "$tmp/port")
TCP_PORT=$port TCP_INTERVAL=50ms TCP_OUT="$tmp/tcp.jsonl" \
  "$agent" --pipeline "$src/sdk/examples/tcp_connect/pipeline.yaml" 2>"$tmp/tcp.log" &
agent_pid=$!
pids+=("$agent_pid")
three() { [ -f "$tmp/tcp.jsonl" ] && [ "$(wc -l <"$tmp/tcp.jsonl")" -ge 3 ]; }
wait_for "3 tcp_connect records" three
kill -TERM "$agent_pid"
code=0
wait "$agent_pid" || code=$?
[ "$code" = 0 ] || fail "the tcp_connect agent exited $code"
n=$(wc -l <"$tmp/tcp.jsonl")
[ "$(grep -c "\"kind\":\"tcp_connect\"" "$tmp/tcp.jsonl")" = "$n" ] || fail "records of another kind"
[ "$(grep -c "\"target\":\"127.0.0.1:$port\",\"success\":true" "$tmp/tcp.jsonl")" = "$n" ] \
  || fail "unexpected tcp_connect records: $(head -3 "$tmp/tcp.jsonl")"
grep -q "source 'tcp' (tcp_connect): received=0 sent=$n errors=0" "$tmp/tcp.log" || fail "tcp_connect summary"
if grep -q "schema_mismatch\|does not match" "$tmp/tcp.log"; then fail "records do not match the declared kind"; fi
echo "out-of-tree examples (hello_sink, tcp_connect, field_filter) built, unit-tested, installed and ran: OK"
