# Shared helpers for the stack's own tests (tests/stack/*.sh), sourced, not run.
# Each test loads the running stack's settings with `scripts/stack env`, works in its own
# topic / database, checks real values and exits non-zero on the first failed check.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$ROOT/scripts/stack"
TEST_NAME="$(basename "$0" .sh)"
TMP="$(mktemp -d "/tmp/webmon-stack-test.$TEST_NAME.XXXXXX")"
# shellcheck disable=SC2064
trap "rm -rf '$TMP'" EXIT

CHECKS=0
export OUT=""  # output of the last expect_fail
fail() { printf 'FAIL [%s]: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); printf 'ok: %s\n' "$*"; }
done_ok() { printf '%s: %d checks passed\n' "$TEST_NAME" "$CHECKS"; }

expect_eq() { # expected actual what
  [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
  ok "$3 = $1"
}
expect_match() { # regex text what
  grep -Eq -- "$1" <<<"$2" || fail "$3: expected output matching /$1/, got: $(tail -n 5 <<<"$2")"
  ok "$3 (matches /$1/)"
}
# Runs a command that must fail: stores its combined output in OUT, fails the test if it exits 0.
expect_fail() { # what cmd...
  local what="$1"; shift
  if OUT="$("$@" 2>&1)"; then fail "$what: expected a failure, the command succeeded: $*"; fi
  ok "$what: refused"
}

# The running stack's settings as environment variables (KAFKA_*, DATABASE_*, ...).
eval "$("$STACK" env)" || fail "scripts/stack env failed: is the stack up?"

# kcat over each listener; every call is bounded.
KCAT_TIMEOUT=60
kcat_plain() { timeout "$KCAT_TIMEOUT" kcat -b "$KAFKA_PLAINTEXT_HOST" "$@"; }
kcat_ssl() {
  timeout "$KCAT_TIMEOUT" kcat -b "$KAFKA_SSL_HOST" -X security.protocol=ssl -X "ssl.ca.location=$KAFKA_CAFILE" \
    -X "ssl.certificate.location=$KAFKA_CERTFILE" -X "ssl.key.location=$KAFKA_KEYFILE" "$@"
}

# Prints N lines "key-i:value-i" (kcat -K: input).
make_messages() { # n prefix
  local i
  for ((i = 1; i <= $1; i++)); do printf '%s-key-%d:%s-value-%d\n' "$2" "$((i % 17))" "$2" "$i"; done
}

# Message values of a topic from the beginning to its current end, sorted.
consume_values() { # kcat-function topic
  "$1" -C -t "$2" -o beginning -e -q -f '%s\n' | sort
}

# A fresh topic for this test.
new_topic() { "$STACK" topic "$TEST_NAME" "${1:-1}"; }
