#!/usr/bin/env bash
# Produce and consume over the PLAINTEXT listener: exact count and content, keys keep their
# partition across a 3-partition topic.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"

topic="$(new_topic 3)"
meta="$(kcat_plain -L -t "$topic")"
expect_match "topic \"$topic\" with 3 partitions" "$meta" "topic created with 3 partitions"

n=300
make_messages "$n" plain >"$TMP/in"
kcat_plain -P -t "$topic" -K: -X acks=all <"$TMP/in" || fail "kcat producer failed"
cut -d: -f2 "$TMP/in" | sort >"$TMP/expected"

consume_values kcat_plain "$topic" >"$TMP/got"
expect_eq "$n" "$(wc -l <"$TMP/got")" "messages consumed"
cmp -s "$TMP/expected" "$TMP/got" || fail "consumed values differ from produced ones: $(diff "$TMP/expected" "$TMP/got" | head -5)"
ok "consumed values equal produced values"

# Every key in exactly one partition, and the 17 keys spread over more than one partition.
kcat_plain -C -t "$topic" -o beginning -e -q -f '%k %p\n' | sort -u >"$TMP/kp"
expect_eq 17 "$(wc -l <"$TMP/kp")" "distinct (key, partition) pairs"
expect_eq 17 "$(cut -d' ' -f1 "$TMP/kp" | sort -u | wc -l)" "distinct keys"
parts="$(cut -d' ' -f2 "$TMP/kp" | sort -u | wc -l)"
[ "$parts" -gt 1 ] || fail "all keys landed in one partition"
ok "keys spread over $parts partitions"
done_ok
