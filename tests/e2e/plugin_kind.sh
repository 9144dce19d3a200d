#!/usr/bin/env bash
# End to end, a record kind no webmon binary was built with: installs webmon (agent + SDK) from
# the build tree into a temporary prefix, builds the third-party source plugin
# tests/e2e/port_probe OUT OF TREE against that installed SDK (find_package(webmon_sdk); it is
# linked into nothing else), and runs it in a producer next to http_check (loopback targets) →
# kafka_sink → a fresh topic. The consumer is the installed agent with the UNCHANGED
# conf/consumer.yaml (kafka_source → postgres_sink, a fresh database); its plugin search path
# holds no port_probe. Checks in PostgreSQL: webmon.port_probe exists with the column types of
# the declaration, every record arrived once with the values the plugin emitted (an int beyond
# 2^53, exact doubles, escaped text, a microsecond timestamp, labels as jsonb, nulls as NULL),
# the kind got its uptime views, and the http_check rows arrived too; nothing was rejected.
# Usage: plugin_kind.sh <webmon-agent> <source dir> <build dir>
# The agents' pids ($producer, $consumer) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
build=$3
e2e_setup "$1" "$2" kinds
unset WEBMON_PLUGIN_PATH
count=40

# Install webmon, then build the plugin against the installed SDK only.
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 || fail "cmake --install"
agent=$work/prefix/bin/webmon-agent
cmake -S tests/e2e/port_probe -B "$work/port_probe" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 \
  || fail "configuring port_probe against the installed SDK"
grep -q "webmon_sdk_DIR:PATH=$work/prefix/" "$work/port_probe/CMakeCache.txt" \
  || fail "port_probe did not find the installed SDK: $(grep webmon_sdk_DIR "$work/port_probe/CMakeCache.txt")"
cmake --build "$work/port_probe" >"$work/build.log" 2>&1 || fail "building port_probe"
test -f "$work/port_probe/port_probe.so" || fail "port_probe.so was not built"
mkdir "$work/plugins"
cp "$work/port_probe/port_probe.so" "$work/plugins/"
chmod 755 "$work/plugins/port_probe.so"

# The consumer knows nothing of the kind: no directory it searches has the plugin.
"$agent" --list-plugins >"$work/consumer-plugins.log" 2>&1 || fail "consumer --list-plugins"
if grep -q port_probe "$work/consumer-plugins.log"; then fail "the consumer's agent finds port_probe"; fi
sed -n 's/^  \(\/.*\)$/\1/p' "$work/consumer-plugins.log" | head -20 >"$work/consumer-dirs"
[ -s "$work/consumer-dirs" ] || fail "no plugin search path in --list-plugins"
while read -r d; do
  [ ! -e "$d/port_probe.so" ] || fail "$d (searched by the consumer) holds port_probe.so"
done <"$work/consumer-dirs"
# The producer's agent (the same binary) finds it with --plugin-dir and lists its kind.
"$agent" --plugin-dir "$work/plugins" --list-plugins >"$work/producer-plugins.log" 2>&1 \
  || fail "producer --list-plugins"
grep -q "^port_probe (source, version 1.0.0, ABI " "$work/producer-plugins.log" \
  || fail "the agent does not list port_probe"

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
cat >"$work/producer.yaml" <<YAML
# http_check and the out-of-tree port_probe into one topic.
agent:
  name: kinds-producer
  state_dir: $work/state
sources:
  checks:
    plugin: http_check
    targets_file: $work/targets.yaml
    interval: 200ms
    timeout: 5s
  probe:
    plugin: port_probe
    target: disk-1
    count: $count
    interval: 20ms
sinks:
  kafka:
    plugin: kafka_sink
    inputs: [checks, probe]
    brokers: $KAFKA_HOST
    topic: $KAFKA_TOPIC
    security_protocol: SSL
    ca_file: $KAFKA_CAFILE
    cert_file: $KAFKA_CERTFILE
    key_file: $KAFKA_KEYFILE
YAML
"$agent" --plugin-dir "$work/plugins" --pipeline "$work/producer.yaml" --validate \
  >"$work/validate.log" 2>&1 || fail "the producer pipeline does not validate"

start_agent consumer conf/consumer.yaml consumer.log
"$agent" --plugin-dir "$work/plugins" --pipeline "$work/producer.yaml" >>"$work/producer.log" 2>&1 &
producer=$!
pids+=("$producer")

# Bounded waits on what is stored (240 s only against a hang).
probes=0
for _ in $(seq 480); do
  probes=$(q "SELECT count(*) FROM webmon.port_probe" 2>/dev/null || echo 0)
  https=$(q "SELECT count(DISTINCT target) FROM webmon.http_check" 2>/dev/null || echo 0)
  [ "$probes" -ge "$count" ] && [ "$https" -ge 2 ] && break
  kill -0 "$producer" 2>/dev/null || fail "the producer stopped early"
  kill -0 "$consumer" 2>/dev/null || fail "the consumer stopped early"
  sleep 0.5
done
[ "$probes" -ge "$count" ] || fail "only $probes of $count port_probe records stored"
stop_agent "$producer" producer
sent=$(checks_made)
[ -n "$sent" ] && [ "$sent" -ge 2 ] || fail "producer made too few checks: '$sent'"
grep -q "source 'probe' (port_probe): received=0 sent=$count " "$work/producer.log" \
  || fail "the producer's port_probe summary: $(grep "source 'probe'" "$work/producer.log")"
wait_for_rows "$sent"
stop_agent "$consumer" consumer

# The table, from the declaration: column types and nullability.
got=$(q "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns
          WHERE table_schema = 'webmon' AND table_name = 'port_probe' ORDER BY ordinal_position")
expected="time timestamp with time zone NO
id uuid NO
target text NO
seq bigint NO
big bigint NO
success boolean NO
total_ms double precision NO
note text NO
probed_at timestamp with time zone NO
error text YES
free_bytes bigint YES
labels jsonb NO
extra jsonb YES"
[ "$got" = "$expected" ] || fail "webmon.port_probe columns:
$got
expected:
$expected"

# The values: exactly what the plugin emitted (its header comment), each record once.
got=$(q "SELECT seq || '|' || big || '|' || success || '|' || total_ms::text || '|' || note || '|'
             || to_char(probed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '|'
             || coalesce(error, 'NULL') || '|' || coalesce(free_bytes::text, 'NULL') || '|'
             || labels::text || '|' || coalesce(extra::text, 'NULL') || '|' || target
           FROM webmon.port_probe ORDER BY seq, id")
expected=$(python3 - "$count" <<'PY'
import datetime, sys
base = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
for n in range(1, int(sys.argv[1]) + 1):
    ok = n % 3 != 0
    at = (base + datetime.timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    parity = "even" if n % 2 == 0 else "odd"
    print("|".join([str(n), str(9007199254740993 + n), "true" if ok else "false",
                    repr(n * 0.25 + 0.125), f'probe #{n} "quoted" \u00fcn\u00ef\tcode', at,
                    "NULL" if ok else f"failure {n}", "NULL" if n % 2 == 0 else str(n * 1000),
                    f'{{"probe": "e2e", "parity": "{parity}"}}', "NULL", "disk-1"]))
PY
)
if [ "$got" != "$expected" ]; then
  diff <(echo "$expected") <(echo "$got") | head -20
  fail "webmon.port_probe rows differ from what port_probe emitted (diff: < expected, > stored)"
fi
[ "$(q "SELECT count(DISTINCT id) FROM webmon.port_probe")" = "$count" ] || fail "duplicate ids"
[ "$(q "SELECT count(*) FROM webmon.port_probe WHERE free_bytes IS NULL")" = $((count / 2)) ] \
  || fail "nulls are not NULL"
# A kind with a boolean success and a duration gets the uptime views.
[ "$(q "SELECT sum(checks) || '|' || sum(failures) FROM webmon.port_probe_hourly")" = "$count|$((count / 3))" ] \
  || fail "webmon.port_probe_hourly: $(q "SELECT * FROM webmon.port_probe_hourly")"

# http_check next to it, stored exactly once.
rows=$(q "SELECT count(*) FROM webmon.http_check")
[ "$rows" = "$sent" ] || fail "$sent http checks made, $rows rows stored"
got=$(q "SELECT DISTINCT target || '|' || success || '|' || coalesce(error, 'null') FROM webmon.http_check ORDER BY 1")
[ "$got" = $'failing|false|http_status\nhealthy|true|null' ] || fail "http_check rows: $got"
[ "$(q "SELECT count(*) FROM webmon.rejected")" = 0 ] \
  || fail "records were rejected: $(q "SELECT kind, reason FROM webmon.rejected LIMIT 5")"
if grep -q "schema_mismatch\|does not match" "$work/producer.log" "$work/consumer.log"; then
  fail "records did not match their declaration"
fi
echo "ok: $count port_probe records (a kind the consumer was never built or configured with) and $sent http checks stored with their declared types and values"
