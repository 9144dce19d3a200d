#!/usr/bin/env bash
# PostgreSQL with TLS: sslmode=verify-full succeeds against the stack's CA (by IP and by
# host name), a wrong CA or a wrong password is refused, and `scripts/stack db` gives each
# test its own database owned by DATABASE_USER.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"
export PGCONNECT_TIMEOUT=10

conn() { # extra conninfo
  printf 'host=%s port=%s dbname=%s user=%s password=%s sslmode=%s sslrootcert=%s %s' "$DATABASE_HOST" \
    "$DATABASE_PORT" "$DATABASE_DB" "$DATABASE_USER" "$DATABASE_PASSWD" "$DATABASE_SSLMODE" "$DATABASE_SSLROOTCERT" "${1:-}"
}
q() { timeout 30 psql -X -At -v ON_ERROR_STOP=1 "$@"; }

expect_eq verify-full "$DATABASE_SSLMODE" "DATABASE_SSLMODE"
row="$(q "$(conn)" -c "select current_user, current_database(), ssl, version from pg_stat_ssl where pid = pg_backend_pid()")"
expect_match "^$DATABASE_USER\|$DATABASE_DB\|t\|TLSv1\.[23]$" "$row" "verify-full connection uses TLS"
expect_eq 1 "$(q "$DATABASE_URL" -c 'select 1')" "DATABASE_URL connects"
expect_eq t "$(q "$(conn 'host=localhost')" -c 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')" \
  "verify-full by host name localhost"

# A CA that did not sign the server certificate: refused before any password is sent.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/other-ca.key" -out "$TMP/other-ca.pem" -days 2 \
  -subj "/CN=other CA" >/dev/null 2>&1
expect_fail "verify-full with a wrong CA" q "$(conn "sslrootcert=$TMP/other-ca.pem")" -c 'select 1'
expect_match 'certificate verify failed' "$OUT" "wrong-CA refusal says certificate verify failed"

expect_fail "wrong password" q "$(conn 'password=not-the-password')" -c 'select 1'
expect_match 'password authentication failed' "$OUT" "wrong-password refusal"

# A database of its own, owned by DATABASE_USER.
db1="$("$STACK" db "$TEST_NAME")"
db2="$("$STACK" db "$TEST_NAME")"
[ "$db1" != "$db2" ] || fail "scripts/stack db gave the same name twice: $db1"
ok "scripts/stack db gives distinct databases ($db1, $db2)"
expect_eq "$DATABASE_USER" "$(q "$(conn "dbname=$db1")" -c "select pg_get_userbyid(datdba) from pg_database where datname = current_database()")" \
  "owner of $db1"
q "$(conn "dbname=$db1")" -c "create schema webmon; create table webmon.t(id int primary key); insert into webmon.t select generate_series(1, 250)" >/dev/null
expect_eq 250 "$(q "$(conn "dbname=$db1")" -c 'select count(*) from webmon.t')" "rows in $db1"
expect_eq 0 "$(q "$(conn "dbname=$db2")" -c "select count(*) from pg_tables where schemaname = 'webmon'")" \
  "tables of $db1 not visible in $db2"
done_ok
