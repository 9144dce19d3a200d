#!/usr/bin/env bash
# The SSL listener requires a client certificate (mutual TLS as Aiven does it): with
# ca.pem + service.cert + service.key messages go through; without a certificate, with a
# certificate from another CA, or trusting another CA, the connection is refused.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

# Aiven's names and formats.
for f in "$KAFKA_CAFILE" "$KAFKA_CERTFILE" "$KAFKA_KEYFILE"; do [ -s "$f" ] || fail "missing $f"; done
expect_match '^-----BEGIN PRIVATE KEY-----' "$(head -n1 "$KAFKA_KEYFILE")" "service.key is unencrypted PKCS#8"
san="$(openssl x509 -in "$(dirname "$KAFKA_CAFILE")/../certs/server.cert" -noout -ext subjectAltName)"
expect_match 'IP Address:127.0.0.1' "$san" "server certificate SAN has 127.0.0.1"
expect_match 'DNS:localhost' "$san" "server certificate SAN has localhost"
openssl verify -CAfile "$KAFKA_CAFILE" "$KAFKA_CERTFILE" >/dev/null || fail "service.cert does not verify against ca.pem"
ok "service.cert verifies against ca.pem"
expect_eq "$KAFKA_SSL_HOST" "$KAFKA_HOST" "KAFKA_HOST is the SSL listener"

topic="$(new_topic 1)"
n=100
make_messages "$n" ssl >"$TMP/in"
kcat_ssl -P -t "$topic" -K: -X acks=all <"$TMP/in" || fail "kcat producer over SSL failed"
consume_values kcat_ssl "$topic" >"$TMP/got"
expect_eq "$n" "$(wc -l <"$TMP/got")" "messages consumed over SSL"
cut -d: -f2 "$TMP/in" | sort | cmp -s - "$TMP/got" || fail "values consumed over SSL differ"
ok "values consumed over SSL equal produced values"

# The same listener by host name (SAN DNS:localhost), host name verification on.
port="${KAFKA_SSL_HOST##*:}"
out="$(timeout 60 kcat -L -b "localhost:$port" -t "$topic" -X security.protocol=ssl -X "ssl.ca.location=$KAFKA_CAFILE" \
  -X "ssl.certificate.location=$KAFKA_CERTFILE" -X "ssl.key.location=$KAFKA_KEYFILE" \
  -X ssl.endpoint.identification.algorithm=https 2>&1)" || fail "SSL by host name localhost failed: $out"
expect_match "topic \"$topic\" with 1 partitions" "$out" "metadata over SSL via localhost"

# No client certificate: the broker refuses the handshake.
expect_fail "client without certificate" timeout 30 kcat -L -m 5 -b "$KAFKA_SSL_HOST" \
  -X security.protocol=ssl -X "ssl.ca.location=$KAFKA_CAFILE"
expect_match 'certificate|handshake|SSL' "$OUT" "no-certificate refusal names the TLS failure"

# A client certificate from another CA: refused.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/other-ca.key" -out "$TMP/other-ca.pem" -days 2 \
  -subj "/CN=other CA" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout "$TMP/other.key" -out "$TMP/other.csr" -subj "/CN=intruder" >/dev/null 2>&1
openssl x509 -req -in "$TMP/other.csr" -CA "$TMP/other-ca.pem" -CAkey "$TMP/other-ca.key" -CAcreateserial \
  -days 2 -out "$TMP/other.cert" >/dev/null 2>&1
expect_fail "client certificate from another CA" timeout 30 kcat -L -m 5 -b "$KAFKA_SSL_HOST" \
  -X security.protocol=ssl -X "ssl.ca.location=$KAFKA_CAFILE" \
  -X "ssl.certificate.location=$TMP/other.cert" -X "ssl.key.location=$TMP/other.key"
expect_match 'certificate|handshake|SSL' "$OUT" "foreign-certificate refusal names the TLS failure"

# The client trusts another CA: it refuses the broker's certificate.
expect_fail "client trusting another CA" timeout 30 kcat -L -m 5 -b "$KAFKA_SSL_HOST" \
  -X security.protocol=ssl -X "ssl.ca.location=$TMP/other-ca.pem" \
  -X "ssl.certificate.location=$KAFKA_CERTFILE" -X "ssl.key.location=$KAFKA_KEYFILE"
expect_match 'certificate verify failed' "$OUT" "wrong-CA refusal says certificate verify failed"

# Nothing the refused clients did reached the topic.
expect_eq "$n" "$(consume_values kcat_ssl "$topic" | wc -l)" "messages in topic after refusals"
done_ok
