#!/usr/bin/env bash
# conf/ as users run it: every pipeline passes --validate with a complete environment, and
# the likely mistakes give one clear line naming the setting (exit 2).
# Usage: conf_test.sh <webmon-agent> <source dir>
set -euo pipefail
agent=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Readable certificate files so SSL settings validate.
touch "$tmp/ca.pem" "$tmp/service.cert" "$tmp/service.key"
base_env=(PATH="$PATH" HOME="$HOME" KAFKA_HOST=127.0.0.1:9093 KAFKA_SASL_HOST=127.0.0.1:9094
  KAFKA_CAFILE="$tmp/ca.pem" KAFKA_CERTFILE="$tmp/service.cert" KAFKA_KEYFILE="$tmp/service.key"
  KAFKA_SASL_USER=u KAFKA_SASL_PASSWORD=p DATABASE_HOST=127.0.0.1 DATABASE_USER=webmon
  DATABASE_PASSWD=secret DATABASE_SSLROOTCERT="$tmp/ca.pem"
  WEBHOOK_URL=https://hooks.example.test/services/secret-path WEBHOOK_TOKEN=secret-token
  SMTP_URL=smtp://127.0.0.1:2525 SMTP_USER=webmon SMTP_PASSWORD=secret-smtp
  ALERT_EMAIL_FROM=webmon@example.test ALERT_EMAIL_TO=oncall@example.test)
# `env -i` would drop the sanitizer settings of the asan/tsan presets (detect_leaks=0,
# suppressions): keep them, so an agent under a sanitizer runs as the rest of its suite does.
san_env=()
for var in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS; do
  if [ -n "${!var:-}" ]; then san_env+=("$var=${!var}"); fi
done
base_env+=("${san_env[@]}")

count=0
for f in "$src"/conf/*.yaml "$src"/conf/examples/*.yaml; do
  case "$(basename "$f")" in targets.yaml | tcp_targets.yaml | dns_targets.yaml) continue ;; esac
  out=$(cd "$src" && env -i "${base_env[@]}" "$agent" --validate --pipeline "$f" 2>&1) \
    || fail "$f does not validate: $out"
  grep -q ": OK (" <<<"$out" || fail "$f: unexpected output: $out"
  count=$((count + 1))
done
[ "$count" -ge 6 ] || fail "expected at least 6 pipelines, validated $count"
echo "ok: $count pipelines validate"

# Secrets never appear in --validate output, even at trace level.
out=$(cd "$src" && env -i "${base_env[@]}" "$agent" --validate --log-level trace \
  --pipeline conf/consumer.yaml 2>&1)
grep -q secret <<<"$out" && fail "the database password appears in --validate output"
for f in conf/examples/alerts-producer.yaml conf/examples/alerts-consumer.yaml; do
  out=$(cd "$src" && env -i "${base_env[@]}" "$agent" --validate --log-level trace \
    --pipeline "$f" 2>&1)
  grep -q secret <<<"$out" && fail "a webhook or SMTP secret appears in --validate output of $f"
done
echo "ok: no secrets in --validate output"

# Alerting examples: the webhook URL is named when missing; an unknown preset names the
# option, its position and the choices.
set +e
mapfile -t no_webhook_env < <(printf '%s\n' "${base_env[@]}" | grep -v '^WEBHOOK_URL=')
out=$(cd "$src" && env -i "${no_webhook_env[@]}" "$agent" \
  --validate --pipeline conf/examples/alerts-producer.yaml 2>&1)
code=$?
set -e
[ "$code" -eq 2 ] || fail "exit code $code without WEBHOOK_URL (expected 2)"
grep -q "environment variable WEBHOOK_URL is required: set WEBHOOK_URL to the webhook" <<<"$out" \
  || fail "unexpected message without WEBHOOK_URL: $out"
set +e
out=$(cd "$src" && env -i "${base_env[@]}" WEBHOOK_PRESET=hipchat "$agent" --validate \
  --pipeline conf/examples/alerts-consumer.yaml 2>&1)
code=$?
set -e
[ "$code" -eq 2 ] || fail "exit code $code for an unknown preset (expected 2)"
grep -q "conf/examples/alerts-consumer.yaml:[0-9]*:[0-9]*: .*option 'preset' must be one of 'generic', 'slack', 'discord', 'teams', 'pagerduty', got 'hipchat'" <<<"$out" \
  || fail "unexpected message for an unknown preset: $out"
echo "ok: alerting examples name a missing webhook URL and an unknown preset"

# The original's .env as shipped (placeholder certificate paths): the missing file is named.
out=$(cd "$src" && env -i PATH="$PATH" HOME="$HOME" "${san_env[@]}" "$agent" --validate --pipeline conf/producer.yaml \
  --env-file conf/.env.sample 2>&1) && fail "a missing ca_file was accepted"
[ "$out" = "webmon-agent: conf/producer.yaml:40:14: sink 'kafka' (kafka_sink): option 'ca_file': cannot read 'certs/ca.pem': No such file or directory" ] \
  || fail "unexpected message for a missing ca_file: $out"
echo "ok: missing certificate file named"

# No environment at all: the first required variable is named, with what to set.
set +e
out=$(cd "$src" && env -i PATH="$PATH" HOME="$HOME" "${san_env[@]}" "$agent" --validate --pipeline conf/consumer.yaml 2>&1)
code=$?
set -e
[ "$code" -eq 2 ] || fail "exit code $code without environment (expected 2)"
[ "$out" = "webmon-agent: conf/consumer.yaml:15:14: environment variable KAFKA_HOST is required: set KAFKA_HOST to the Kafka bootstrap host:port" ] \
  || fail "unexpected message without environment: $out"
echo "ok: missing KAFKA_HOST named"

# A topic name Kafka would refuse is a configuration error naming the option, not lost checks.
set +e
out=$(cd "$src" && env -i "${base_env[@]}" KAFKA_TOPIC='web checks!' "$agent" --validate \
  --pipeline conf/producer.yaml 2>&1)
code=$?
set -e
[ "$code" -eq 2 ] || fail "exit code $code for an invalid topic (expected 2)"
grep -q "option 'topic': 'web checks!' is not a valid Kafka topic name" <<<"$out" \
  || fail "unexpected message for an invalid topic: $out"
echo "ok: invalid topic named"
