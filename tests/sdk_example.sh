#!/usr/bin/env bash
# Installs the SDK and agent from the build tree into a temporary prefix, builds the example
# plugin out of tree with find_package(webmon_sdk), and runs the unchanged agent with it.
# Usage: sdk_example.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/sdk/examples/hello_sink" -B "$tmp/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" >/dev/null
test -f "$tmp/build/hello_sink.so" || { echo "hello_sink.so was not built"; exit 1; }

# The installed agent finds its built-in plugins (generator) relative to itself, and the
# example through --plugin-dir.
HELLO_COUNT=1000 HELLO_REPORT="$tmp/report" \
  "$tmp/prefix/bin/webmon-agent" --plugin-dir "$tmp/build" \
  --pipeline "$src/sdk/examples/hello_sink/pipeline.yaml" 2>"$tmp/log"
# 1,000 records over 10 targets in two batches of 500: target-00003 is 1 in 10.
expected=$'hello_sink: 50 of 500 records match\nhello_sink: 50 of 500 records match'
actual=$(cat "$tmp/report")
if [ "$actual" != "$expected" ]; then
  echo "unexpected report:"; echo "$actual"; cat "$tmp/log"; exit 1
fi
grep -q "sink 'hello' (hello_sink): received=1000 sent=1000 errors=0 dropped=0 retried=0 rejected=0 matched=100" "$tmp/log" \
  || { echo "unexpected summary:"; cat "$tmp/log"; exit 1; }
echo "out-of-tree example plugin built and ran: OK"
