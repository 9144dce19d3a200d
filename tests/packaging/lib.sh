# shellcheck shell=bash
# Shared by the packaging tests (sourced): where the base root, the container storage and the
# built image live, podman/buildah with that storage, and helpers.
#
# Layout (WEBMON_CACHE, default ~/.cache/webmon, as scripts/stack):
#   $cache/packaging/bookworm-minbase.tar   debootstrap --variant=minbase bookworm, made once
#   $cache/packaging/containers/            podman/buildah storage (base image, build layers)
# The image built from the working tree is tagged $PKG_IMAGE (one tag per build directory, so
# two checkouts can share the cache); the fixture (image.sh) also copies the .debs it contains
# to $PKG_WORK/debs for the other tests.
# Variables set here (PKG_*, KAFKA_*, ...) are read by the sourcing tests.
# shellcheck disable=SC2034
set -euo pipefail

PKG_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The one version (the SDK header's) that the agent and the packages carry.
PKG_VERSION=$(sed -n 's/^#define WEBMON_SDK_VERSION "\(.*\)"$/\1/p' \
  "$PKG_SRC/sdk/include/webmon/sdk/version.hpp")
PKG_CACHE="${WEBMON_CACHE:-${HOME:-/root}/.cache/webmon}/packaging"
PKG_BASE_TAR="$PKG_CACHE/bookworm-minbase.tar"
PKG_BASE_IMAGE=docker.io/library/debian:bookworm-slim
PKG_STORAGE=(--root "$PKG_CACHE/containers/storage" --runroot "$PKG_CACHE/containers/run"
  --storage-driver overlay)

# buildah run: the chroot isolation (the OCI runtime cannot create containers in this sandbox).
export BUILDAH_ISOLATION=chroot

pk_podman() { podman "${PKG_STORAGE[@]}" "$@"; }
pk_buildah() { buildah "${PKG_STORAGE[@]}" "$@"; }

fail() {
  echo "FAIL: $*"
  if [ -n "${work:-}" ]; then
    for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  fi
  exit 1
}

# pk_setup WORK_DIR: the directory the fixture and the tests share (ctest passes
# <build>/packaging-test); sets $PKG_WORK, $PKG_DEBS, $PKG_IMAGE.
pk_setup() {
  mkdir -p "$1"
  PKG_WORK=$(cd "$1" && pwd)
  PKG_DEBS=$PKG_WORK/debs
  PKG_IMAGE=localhost/webmon:test-$(printf '%s' "$PKG_WORK" | md5sum | cut -c1-8)
}

# pk_deb NAME: the path of the package NAME (webmon or webmon-sdk-dev) the fixture exported.
pk_deb() {
  local f
  f=$(find "$PKG_DEBS" -maxdepth 1 -name "$1_*.deb" 2>/dev/null | sort | head -1)
  [ -n "$f" ] || fail "no $1 package in $PKG_DEBS: run the packaging.image test first"
  printf '%s\n' "$f"
}

# pk_run [buildah run options] CONTAINER -- CMD...: `buildah run`, with CMD's output (stdout
# and stderr together) written to a file in a mounted directory and printed from there, and
# CMD's exit status. (buildah 1.28's chroot runs now and then lose the output of a command
# that exits quickly; a file does not.) Needs $work (pk_work).
pk_run() {
  local opts=() out rc=0
  while [ "$1" != "--" ]; do
    opts+=("$1")
    shift
  done
  shift
  out=$(mktemp "$work/out/run.XXXXXX")
  chmod 666 "$out"
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  pk_buildah run --volume "$work/out:/pk-out" "${opts[@]}" -- \
    /bin/sh -c 'exec "$@" >"/pk-out/$0" 2>&1' "$(basename "$out")" "$@" 2>"$out.buildah" || rc=$?
  cat "$out"
  # buildah's own complaints (not its note of a non-zero exit status) go to stderr.
  grep -Ev '^(subprocess exited with status [0-9]+|Error: exit status [0-9]+)$' "$out.buildah" >&2 || true
  rm -f "$out" "$out.buildah"
  return $rc
}

# pk_work: a temporary work directory $work (removed at exit with what the test started),
# with $work/out writable by the containers' users.
pk_work() {
  work=$(mktemp -d)
  chmod 755 "$work"
  mkdir -m 1777 "$work/out"
  trap 'pk_stack_cleanup; rm -rf "$work"' EXIT
}

# Containers made by a test are removed at its exit.
pk_containers=()
pk_cleanup() {
  local c
  for c in "${pk_containers[@]}"; do pk_buildah rm "$c" >/dev/null 2>&1 || true; done
}

# pk_from VAR IMAGE: a new working container from IMAGE, its name in $VAR (removed at exit).
pk_from() {
  local c
  c=$(pk_buildah from --pull-never "$2") || fail "buildah from $2 failed"
  pk_containers+=("$c")
  printf -v "$1" '%s' "$c"
}

# --- the local stack and a producer -> Kafka -> consumer -> PostgreSQL exchange ------------

# pk_stack_setup NAME: the stack's settings (scripts/stack env), a fresh topic and database,
# the local demo targets in $work/targets.yaml, the stack's client certificates copied to
# $work/certs as ca.pem, service.cert, service.key (readable by the image's webmon user).
pk_stack_setup() {
  cd "$PKG_SRC"
  eval "$(scripts/stack env)"
  python3 scripts/lib/demo_targets.py "$work/port" >"$work/targets-server.log" 2>&1 &
  pk_pids+=($!)
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || fail "the demo target server did not start"
  local base
  base="http://127.0.0.1:$(cat "$work/port")"
  cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
YAML
  KAFKA_TOPIC=$(scripts/stack topic "$1" 1)
  KAFKA_GROUP="$1-$(basename "$work")"
  DATABASE_DB=$(scripts/stack db "$1")
  export PGPASSWORD=$DATABASE_PASSWD
  conn="host=$DATABASE_HOST port=$DATABASE_PORT dbname=$DATABASE_DB user=$DATABASE_USER sslmode=verify-full sslrootcert=$DATABASE_SSLROOTCERT"
  mkdir -p "$work/certs"
  cp "$KAFKA_CAFILE" "$work/certs/ca.pem"
  cp "$KAFKA_CERTFILE" "$work/certs/service.cert"
  cp "$KAFKA_KEYFILE" "$work/certs/service.key"
  chmod 755 "$work" "$work/certs"
  chmod 644 "$work/certs"/* "$work/targets.yaml"
}

# q SQL: one query against the test's database, unaligned output.
q() { psql -X -tA -v ON_ERROR_STOP=1 "$conn" -c "$1"; }

# pk_child_agent PID: the pid of the webmon-agent process below PID (buildah run forks).
pk_child_agent() {
  local queue=("$1") p c
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = webmon-agent ]; then
      echo "$p"
      return 0
    fi
    # shellcheck disable=SC2013 # the children files hold space-separated pids
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do queue+=("$c"); done
  done
  return 1
}

# pk_start NAME CMD...: runs CMD in the background (output in $work/NAME.log) until the agent
# under it has started; sets ${NAME}_runner and ${NAME}_agent (pids).
pk_pids=()
pk_start() {
  local name=$1 runner agent=""
  shift
  "$@" >"$work/$name.log" 2>&1 &
  runner=$!
  pk_pids+=("$runner")
  for _ in $(seq 600); do
    agent=$(pk_child_agent "$runner") && break
    kill -0 "$runner" 2>/dev/null || { wait "$runner" || true; fail "$name exited at start"; }
    sleep 0.1
  done
  [ -n "$agent" ] || fail "$name: no webmon-agent process after 60 s"
  pk_pids+=("$agent")
  printf -v "${name}_runner" '%s' "$runner"
  printf -v "${name}_agent" '%s' "$agent"
}

# pk_stop NAME: SIGTERM to the agent; it (and so its runner) must exit 0.
pk_stop() {
  local runner agent
  runner=${1}_runner agent=${1}_agent
  pk_stopped=$1
  kill -TERM "${!agent}"
  wait "${!runner}" || fail "$1 exit code $? after SIGTERM (expected 0)"
}

pk_stack_cleanup() {
  local p
  for p in "${pk_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pk_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pk_cleanup
}

# wait_for_rows N: until webmon.http_check holds at least N rows (bounded: 120 s).
wait_for_rows() {
  local rows=0
  for _ in $(seq 240); do
    for a in producer consumer; do
      local r=${a}_runner
      if [ -n "${!r:-}" ] && [ "$a" != "${pk_stopped:-}" ] && ! kill -0 "${!r}" 2>/dev/null; then
        fail "the $a exited early"
      fi
    done
    rows=$(q "SELECT count(*) FROM webmon.http_check" 2>/dev/null || echo 0)
    [ "$rows" -ge "$1" ] && return 0
    sleep 0.5
  done
  fail "only $rows rows in PostgreSQL after 120 s (expected $1)"
}

# pk_exchange: with the agents started by pk_start as `producer` and `consumer`: once rows
# arrive, stops the producer, waits until every check it made is stored, stops the consumer,
# and checks each check is stored exactly once with the right values.
pk_exchange() {
  wait_for_rows 4
  pk_stop producer
  local sent rows
  sent=$(sed -n "s/.*source 'checks' (http_check): received=0 sent=\([0-9]*\).*/\1/p" "$work/producer.log")
  [ -n "$sent" ] && [ "$sent" -ge 4 ] || fail "producer: no or too few checks in its summary: '$sent'"
  wait_for_rows "$sent"
  pk_stop consumer
  rows=$(q "SELECT count(*) FROM webmon.http_check")
  [ "$rows" = "$sent" ] || fail "$sent checks made, $rows rows stored"
  [ "$(q "SELECT count(DISTINCT id) FROM webmon.http_check")" = "$rows" ] || fail "duplicate ids"
  local got
  got=$(q "SELECT string_agg(DISTINCT target || ':' || success::text || ':' || coalesce(status_code::text, '-') || ':' || coalesce(error, '-'), ' ' ORDER BY target || ':' || success::text || ':' || coalesce(status_code::text, '-') || ':' || coalesce(error, '-')) FROM webmon.http_check")
  [ "$got" = "failing:false:500:http_status healthy:true:200:-" ] || fail "stored checks: $got"
  echo "ok: $sent checks made, $rows rows stored exactly once ($got)"
}
