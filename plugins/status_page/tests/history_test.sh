#!/usr/bin/env bash
# status_page rebuilds its history from PostgreSQL at start (history_conninfo): checks stored
# by generator → postgres_sink on the local stack must come back on the page with the uptime,
# last error and sparkline PostgreSQL has for them; a wrong password is logged (naming the
# option, never the password) and the page starts anyway.
# Usage: history_test.sh <webmon-agent> <source dir>
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
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
  exit 1
}
get() {
  python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}
export DATABASE_PASSWD
db=$(scripts/stack db status_page)
conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$db user=$DATABASE_USER sslmode=verify-full sslrootcert=$DATABASE_SSLROOTCERT"

cat >"$work/store.yaml" <<YAML
sources:
  gen: { plugin: generator, count: 400, targets: 4, failure_every: 7 }
sinks:
  pg:
    plugin: postgres_sink
    inputs: [gen]
    host: $DATABASE_HOST
    port: $DATABASE_PORT
    database: $db
    user: $DATABASE_USER
    password: \${DATABASE_PASSWD}
    sslmode: verify-full
    sslrootcert: $DATABASE_SSLROOTCERT
YAML
"$agent" --pipeline "$work/store.yaml" >"$work/store.log" 2>&1 || fail "generator → postgres_sink failed"

# The page: one unrelated probe target (a closed port, checked once an hour) keeps the agent
# running; the four stored targets can only come from PostgreSQL.
page_pipeline() { # FILE PASSWORD_EXPR
  cat >"$1" <<YAML
sources:
  probe:
    plugin: http_check
    interval: 1h
    targets: [{ name: probe, url: "http://127.0.0.1:9/" }]
sinks:
  page:
    plugin: status_page
    inputs: [probe]
    listen: 127.0.0.1:0
    history_conninfo: "$conn password=$2"
    history_schema: webmon
YAML
}
wait_for_url() { # LOG
  url=""
  for _ in $(seq 600); do
    url=$(sed -n 's|.*status page on \(http://127.0.0.1:[0-9]*/\).*|\1|p' "$1" 2>/dev/null | tail -1 || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  fail "no 'status page on' line in $1"
}

# shellcheck disable=SC2016 # the agent expands ${DATABASE_PASSWD} from its environment
page_pipeline "$work/page.yaml" '${DATABASE_PASSWD}'
"$agent" --pipeline "$work/page.yaml" >"$work/page.log" 2>&1 &
page=$!
pids+=("$page")
wait_for_url "$work/page.log"
grep -q "restored 4 targets from PostgreSQL (schema 'webmon')" "$work/page.log" \
  || fail "no 'restored 4 targets from PostgreSQL' in the log"
expected=$(PGPASSWORD=$DATABASE_PASSWD psql -X -tA -F ' ' -v ON_ERROR_STOP=1 "$conn" -c "
  SELECT target, round(100.0 * count(*) FILTER (WHERE success) / count(*), 3), count(*),
         (SELECT error FROM webmon.http_check f WHERE f.target = c.target AND NOT success
           ORDER BY time DESC LIMIT 1)
    FROM webmon.http_check c GROUP BY target ORDER BY target")
get "${url}status.json" | EXPECTED="$expected" python3 -c '
import json, os, sys
doc = json.load(sys.stdin)
targets = {t["name"]: t for g in doc["groups"] for t in g["targets"]}
rows = [line.split() for line in os.environ["EXPECTED"].splitlines() if line.strip()]
assert len(rows) == 4, rows
for name, uptime, checks, error in rows:
    t = targets[name]
    assert abs(t["uptime_24h_pct"] - float(uptime)) < 1e-3, (name, t["uptime_24h_pct"], uptime)
    assert abs(t["uptime_7d_pct"] - float(uptime)) < 1e-3, (name, t["uptime_7d_pct"], uptime)
    assert t["last_error"]["error"] == error, (name, t["last_error"], error)
    assert len(t["response_times_ms"]) == min(60, int(checks)), (name, len(t["response_times_ms"]))
    assert t["url"] == "https://%s.example/" % name, t["url"]
    assert t["cert_days_left"] is not None, t
' || fail "the page does not show the history stored in PostgreSQL"
kill -TERM "$page"
wait "$page" || fail "exit code $? after SIGTERM (expected 0)"

# A wrong password: logged with the option named, the page still starts (without history).
page_pipeline "$work/bad.yaml" 'not-the-password-42'
"$agent" --pipeline "$work/bad.yaml" >"$work/bad.log" 2>&1 &
bad=$!
pids+=("$bad")
wait_for_url "$work/bad.log"
grep -q "option 'history_conninfo': history not loaded from PostgreSQL: cannot connect: .*password authentication failed" \
  "$work/bad.log" || fail "the failed history load is not logged as expected"
grep -q "not-the-password-42" "$work/bad.log" && fail "the password appears in the log"
kill -TERM "$bad"
wait "$bad" || fail "bad password: exit code $? after SIGTERM (expected 0)"
echo "ok: 4 targets restored from PostgreSQL with their uptime, last error and sparkline; a wrong password is logged and the page starts"
