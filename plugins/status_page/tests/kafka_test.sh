#!/usr/bin/env bash
# status_page on the consumer side: kafka_source → status_page on the local stack's Kafka.
# An http_check record, a record of another kind with target/success/response_time_ms
# (tcp_check) and one without them (heartbeat) are produced with kcat (the http_check one in the
# first wire format, the other two with their declaration in headers as kafka_sink writes it,
# docs/wire-format.md: a kind the consumer does not know and that carries no declaration goes
# to the dead-letter topic); the page must show the
# first two with their state and last error, count the third as ignored, and acknowledge
# everything (the consumer group's committed offset reaches the end of the topic).
# Usage: kafka_test.sh <webmon-agent> <source dir>
set -euo pipefail
agent=$1
cd "$2"
eval "$(scripts/stack env)"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$work/agent.log" ] && tail -20 "$work/agent.log"
  exit 1
}
get() {
  python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}

topic=$(scripts/stack topic status_page 1)
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
produce() {  # FILE [kcat -H options...]: one record, appended to partition 0 in order
  local file=$1
  shift
  kcat -b "$KAFKA_PLAINTEXT_HOST" -P -t "$topic" -p 0 "$@" <"$file" || fail "kcat could not produce"
}
cat >"$work/http.jsonl" <<JSON
{"schema":1,"kind":"http_check","id":"019c3a7e-4f0a-7b21-9d4e-3c0f2a8b6d11","time":"$now","target":"web","url":"https://user:pw@web.example/","method":"GET","agent":"t","success":true,"status_code":200,"error":null,"error_message":null,"response_time_ms":41.872,"dns_ms":1.204,"connect_ms":9.87,"tls_ms":19.455,"ttfb_ms":10.61,"transfer_ms":0.301,"body_bytes":1256,"http_version":"1.1","remote_ip":"127.0.0.1","redirects":0,"regex_matched":true,"tls_cert_not_after":"2099-01-15T23:59:59.000000Z","tls_cert_issuer":"CN=Test","lateness_ms":0.118,"tls_version":"TLSv1.3","labels":{"team":"web"}}
JSON
cat >"$work/tcp.jsonl" <<JSON
{"schema":1,"kind":"tcp_check","id":"019c3a7e-4f0a-7b21-9d4e-3c0f2a8b6d12","time":"$now","target":"db-port","success":false,"response_time_ms":3,"error":"connect","error_message":"Connection refused","labels":{"team":"data"}}
JSON
cat >"$work/heartbeat.jsonl" <<JSON
{"schema":1,"kind":"heartbeat","id":"019c3a7e-4f0a-7b21-9d4e-3c0f2a8b6d13","time":"$now","agent":"t"}
JSON
produce "$work/http.jsonl"
produce "$work/tcp.jsonl" -H webmon-kind=tcp_check -H webmon-kind-version=1 \
  -H 'webmon-fields=target:s!*,success:b!,response_time_ms:d!,error:s,error_message:s,labels:m!'
produce "$work/heartbeat.jsonl" -H webmon-kind=heartbeat -H webmon-kind-version=1 \
  -H 'webmon-fields=agent:s!'

cat >"$work/consumer.yaml" <<YAML
sources:
  kafka:
    plugin: kafka_source
    brokers: $KAFKA_PLAINTEXT_HOST
    security_protocol: PLAINTEXT
    topics: ["$topic"]
    group_id: status-page-$(basename "$work")
sinks:
  page:
    plugin: status_page
    inputs: [kafka]
    listen: 127.0.0.1:0
    group_by: team
    groups: [web, data]
YAML
"$agent" --pipeline "$work/consumer.yaml" >"$work/agent.log" 2>&1 &
consumer=$!
pids+=("$consumer")
url=""
for _ in $(seq 600); do
  url=$(sed -n 's|.*status page on \(http://127.0.0.1:[0-9]*/\).*|\1|p' "$work/agent.log" 2>/dev/null | tail -1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || fail "no status page URL in the log"
ok=false
deadline=$((SECONDS + 240))  # bounds a hang only (a shared broker may be restarting)
while [ $SECONDS -lt $deadline ]; do
  if get "${url}status.json" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
groups = {g["name"]: {t["name"]: t for t in g["targets"]} for g in doc["groups"]}
assert list(groups) == ["web", "data"], groups
web, db = groups["web"]["web"], groups["data"]["db-port"]
assert web["state"] == "up" and web["url"] == "https://web.example/" and web["status_code"] == 200, web
assert web["cert_days_left"] > 365, web
assert db["state"] == "down" and db["last_error"]["error"] == "connect", db
assert db["last_error"]["message"] == "Connection refused", db
assert db["response_time_ms"] == 3, db
' 2>"$work/check.err"; then
    ok=true
    break
  fi
  sleep 0.1
done
$ok || fail "the page does not show the records as expected: $(tail -3 "$work/check.err")"
page=$(get "$url")
grep -q "pw@" <<<"$page" && fail "credentials shown on the page"

# Every record acknowledged: the group's committed offset reaches the end (3).
committed=""
deadline=$((SECONDS + 240))
while [ $SECONDS -lt $deadline ]; do
  committed=$(scripts/stack kafka-tool consumer-groups --bootstrap-server "$KAFKA_PLAINTEXT_HOST" \
    --describe --group "status-page-$(basename "$work")" 2>/dev/null | awk -v t="$topic" '$2 == t { print $4 }')
  [ "$committed" = 3 ] && break
  sleep 1
done
kill -TERM "$consumer"
wait "$consumer" || fail "exit code $? after SIGTERM (expected 0)"
[ "$committed" = 3 ] || fail "committed offset '$committed', expected 3 (every record acknowledged)"
grep -q "sink 'page' (status_page): .*ignored=1" "$work/agent.log" \
  || fail "the heartbeat record was not counted as ignored: $(grep "sink 'page'" "$work/agent.log")"
echo "ok: kafka_source → status_page shows http_check and tcp_check records, ignores the heartbeat, commits all 3"
