#!/usr/bin/env bash
# Fault controls on PostgreSQL: kill -9 (postmaster and backends) then start (crash
# recovery), stop then start, restart; committed rows survive each.
# Run serially (ctest RUN_SERIAL): other tests must not see the server go away.
# shellcheck source=tests/stack/lib.sh
. "$(dirname "$0")/lib.sh"
export PGCONNECT_TIMEOUT=5

db="$("$STACK" db "$TEST_NAME")"
conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$db user=$DATABASE_USER password=$DATABASE_PASSWD sslmode=$DATABASE_SSLMODE sslrootcert=$DATABASE_SSLROOTCERT"
q() { timeout 30 psql -X -At -v ON_ERROR_STOP=1 "$conn" "$@"; }

q -c "create table t(id bigint primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 1000) g" >/dev/null
sum_before="$(q -c "select md5(string_agg(v, ',' order by id)) from t")"

pid_before="$("$STACK" postgres status | sed -n 's/.*pid \([0-9]*\).*/\1/p')"
[ -n "$pid_before" ] || fail "no postmaster pid from 'scripts/stack postgres status'"
children="$(pgrep -P "$pid_before" | tr '\n' ' ')"
[ -n "$children" ] || fail "no child processes of postmaster $pid_before"
log="$WEBMON_STACK_DIR/postgres/postgres.log"
log_lines_before="$(wc -l <"$log")"
"$STACK" postgres kill
kill -0 "$pid_before" 2>/dev/null && fail "postmaster $pid_before alive after kill"
for c in $children; do kill -0 "$c" 2>/dev/null && fail "child $c of $pid_before survived the kill"; done
ok "postmaster $pid_before and its children ($children) are gone after kill -9"
expect_fail "connection while PostgreSQL is dead" q -c 'select 1'
expect_match 'Connection refused|could not connect' "$OUT" "connection refused while dead"

"$STACK" postgres start
expect_eq 1000 "$(q -c 'select count(*) from t')" "rows after kill -9 and start"
expect_eq "$sum_before" "$(q -c "select md5(string_agg(v, ',' order by id)) from t")" "row contents after kill -9"
tail -n +"$((log_lines_before + 1))" "$log" | grep -q 'not properly shut down\|automatic recovery in progress' \
  || fail "no crash recovery in postgres.log after kill -9"
ok "postgres.log shows crash recovery"

q -c "insert into t select g, md5(g::text) from generate_series(1001, 1500) g" >/dev/null
"$STACK" postgres stop
expect_fail "connection while PostgreSQL is stopped" q -c 'select 1'
"$STACK" postgres start
"$STACK" postgres restart
expect_eq 1500 "$(q -c 'select count(*) from t')" "rows after stop/start and restart"
"$STACK" status >/dev/null || fail "stack not fully up after the fault tests"
ok "status: everything running again"
done_ok
