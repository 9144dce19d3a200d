#!/usr/bin/env bash
# The SASL_SSL listener: SCRAM-SHA-256 with the stack's user (Java client, as librdkafka
# < 2.6.1 cannot do SCRAM against Kafka 4.x) and PLAIN with the same user (kcat / Debian's
# librdkafka); a wrong password is refused by both and writes nothing.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

expect_eq SCRAM-SHA-256 "$KAFKA_SASL_MECHANISM" "KAFKA_SASL_MECHANISM"
{ [ -n "$KAFKA_SASL_USER" ] && [ -n "$KAFKA_SASL_PASSWORD" ]; } || fail "KAFKA_SASL_USER / KAFKA_SASL_PASSWORD empty"

topic="$(new_topic 1)"

# Java client properties built from the env contract alone.
java_props() { # password
  printf '%s\n' security.protocol=SASL_SSL "sasl.mechanism=$KAFKA_SASL_MECHANISM" \
    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$KAFKA_SASL_USER\" password=\"$1\";" \
    ssl.truststore.type=PEM "ssl.truststore.location=$KAFKA_CAFILE"
}
java_props "$KAFKA_SASL_PASSWORD" >"$TMP/good.properties"
java_props "not-the-password" >"$TMP/bad.properties"

# SCRAM-SHA-256: produce 20, consume exactly 20.
seq 1 20 | sed 's/^/scram-/' >"$TMP/scram-in"
timeout 120 "$STACK" kafka-tool console-producer --bootstrap-server "$KAFKA_SASL_HOST" --topic "$topic" \
  --producer.config "$TMP/good.properties" --producer-property acks=all <"$TMP/scram-in" 2>"$TMP/prod.err" \
  || fail "SCRAM console producer failed: $(tail -5 "$TMP/prod.err")"
grep -q 'ERROR' "$TMP/prod.err" && fail "SCRAM console producer logged errors: $(grep ERROR "$TMP/prod.err" | head -3)"
timeout 120 "$STACK" kafka-tool console-consumer --bootstrap-server "$KAFKA_SASL_HOST" --topic "$topic" \
  --consumer.config "$TMP/good.properties" --from-beginning --max-messages 20 --timeout-ms 30000 \
  >"$TMP/scram-out" 2>"$TMP/cons.err" || fail "SCRAM console consumer failed: $(tail -5 "$TMP/cons.err")"
expect_eq 20 "$(wc -l <"$TMP/scram-out")" "messages consumed with SCRAM-SHA-256"
sort "$TMP/scram-in" | cmp -s - <(sort "$TMP/scram-out") || fail "SCRAM values differ"
ok "SCRAM values equal produced values"

# SCRAM with a wrong password: authentication error, nothing written.
echo intruder | timeout 120 "$STACK" kafka-tool console-producer --bootstrap-server "$KAFKA_SASL_HOST" \
  --topic "$topic" --producer.config "$TMP/bad.properties" >/dev/null 2>"$TMP/bad.err" || true
expect_match 'SaslAuthenticationException|Authentication failed' "$(cat "$TMP/bad.err")" "SCRAM wrong password refused"

# PLAIN with kcat (librdkafka) over the same listener.
kcat_sasl() { # password, kcat args...
  local pw="$1"; shift
  timeout "$KCAT_TIMEOUT" kcat -b "$KAFKA_SASL_HOST" -X security.protocol=sasl_ssl -X "ssl.ca.location=$KAFKA_CAFILE" \
    -X sasl.mechanisms=PLAIN -X "sasl.username=$KAFKA_SASL_USER" -X "sasl.password=$pw" "$@"
}
kcat_sasl_good() { kcat_sasl "$KAFKA_SASL_PASSWORD" "$@"; }
make_messages 30 plain >"$TMP/plain-in"
kcat_sasl_good -P -t "$topic" -K: -X acks=all <"$TMP/plain-in" || fail "kcat PLAIN producer failed"
consume_values kcat_sasl_good "$topic" >"$TMP/all"
expect_eq 50 "$(wc -l <"$TMP/all")" "messages in topic (20 SCRAM + 30 PLAIN, none from refused clients)"
expect_eq 30 "$(grep -c '^plain-value-' "$TMP/all")" "PLAIN messages consumed"

expect_fail "PLAIN with a wrong password" kcat_sasl "not-the-password" -L -m 5
expect_match 'Authentication failed|SASL authentication error' "$OUT" "PLAIN refusal says authentication failed"

# Plaintext SASL is not offered: TLS is required on this listener.
expect_fail "SASL without TLS" timeout 30 kcat -L -m 5 -b "$KAFKA_SASL_HOST" -X security.protocol=sasl_plaintext \
  -X sasl.mechanisms=PLAIN -X "sasl.username=$KAFKA_SASL_USER" -X "sasl.password=$KAFKA_SASL_PASSWORD"
expect_eq 50 "$(consume_values kcat_plain "$topic" | wc -l)" "messages in topic at the end"
done_ok
