#!/usr/bin/env bash
# The contract other tests and users rely on: `scripts/stack env` (both formats and the
# env file agree, every documented name is there, files exist), `status`, an idempotent
# `up` that keeps the running processes, and the topic/db helpers.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

names=(WEBMON_STACK_DIR KAFKA_HOST KAFKA_TOPIC KAFKA_SECURITY_PROTOCOL KAFKA_CAFILE KAFKA_CERTFILE KAFKA_KEYFILE
  KAFKA_PLAINTEXT_HOST KAFKA_SSL_HOST KAFKA_SASL_HOST KAFKA_SASL_MECHANISM KAFKA_SASL_MECHANISMS_ENABLED
  KAFKA_SASL_USER KAFKA_SASL_PASSWORD DATABASE_HOST DATABASE_PORT DATABASE_DB DATABASE_USER DATABASE_PASSWD
  DATABASE_SSLMODE DATABASE_SSLROOTCERT DATABASE_URL DATABASE_ADMIN_USER DATABASE_ADMIN_PASSWD)
for n in "${names[@]}"; do [ -n "${!n:-}" ] || fail "scripts/stack env does not set $n"; done
ok "env sets all ${#names[@]} documented names"
for f in "$KAFKA_CAFILE" "$KAFKA_CERTFILE" "$KAFKA_KEYFILE" "$DATABASE_SSLROOTCERT"; do [ -r "$f" ] || fail "$f not readable"; done
ok "certificate files exist"
expect_match '^127\.0\.0\.1:[0-9]+$' "$KAFKA_PLAINTEXT_HOST" "KAFKA_PLAINTEXT_HOST form"

"$STACK" env --format=dotenv >"$TMP/dotenv"
grep -v '^#' "$WEBMON_STACK_DIR/env" >"$TMP/envfile"
cmp -s "$TMP/dotenv" "$TMP/envfile" || fail "\$WEBMON_STACK_DIR/env differs from 'env --format=dotenv'"
ok "env file equals 'env --format=dotenv'"
expect_eq "${#names[@]}" "$(grep -c '^[A-Z_]*=' "$TMP/dotenv")" "names in dotenv output"
expect_eq "KAFKA_HOST=$KAFKA_HOST" "$(grep '^KAFKA_HOST=' "$TMP/dotenv")" "dotenv KAFKA_HOST equals shell export"
expect_fail "env with an unknown format" "$STACK" env --format=xml
expect_match 'unknown format' "$OUT" "unknown format message"

# status and idempotent up.
st="$("$STACK" status)" || fail "status exit code not 0 with the stack up: $st"
expect_match '^kafka: running \(pid [0-9]+\)' "$st" "status: kafka running"
expect_match '^postgres: running \(pid [0-9]+\)' "$st" "status: postgres running"
"$STACK" up 2>"$TMP/up.err" || fail "second up failed: $(cat "$TMP/up.err")"
expect_match 'kafka already running' "$(cat "$TMP/up.err")" "up on a running stack keeps kafka"
expect_eq "$st" "$("$STACK" status)" "status (same pids) after a second up"
# A running stack keeps its ports: asking for others is an error, not a silent change.
expect_fail "up with different ports on an existing stack" env WEBMON_STACK_KAFKA_PORT=1 "$STACK" up
expect_match 'created with WEBMON_STACK_KAFKA_PORT=' "$OUT" "port change message"

# Helpers: unique names, bad input refused with exit code 2.
t1="$("$STACK" topic "$TEST_NAME")"
t2="$("$STACK" topic "$TEST_NAME" 4)"
[ "$t1" != "$t2" ] || fail "scripts/stack topic gave the same name twice"
expect_match "^$TEST_NAME\.[0-9a-f]{8}$" "$t1" "topic name form"
expect_match "topic \"$t2\" with 4 partitions" "$(kcat_plain -L -t "$t2")" "topic with 4 partitions"
exact="$TEST_NAME-exact-$(openssl rand -hex 3)"
expect_eq "$exact" "$("$STACK" topic "$exact" --exact)" "topic --exact keeps the name"
expect_fail "topic with an invalid name" "$STACK" topic 'bad name'
expect_fail "topic with 0 partitions" "$STACK" topic ok 0
set +e; "$STACK" topic 'bad name' >/dev/null 2>&1; rc=$?; set -e
expect_eq 2 "$rc" "exit code of a usage error"
expect_fail "db without a name" "$STACK" db
d="$("$STACK" db "Mixed-Case Name")"
expect_match '^mixed_case_name_[0-9a-f]{8}$' "$d" "db name is a lower-case identifier"
expect_fail "unknown command" "$STACK" frobnicate
done_ok
