#!/usr/bin/env bash
# packaging.container: the image as users run it (buildah run --isolation chroot shares the
# host's network, so the local stack is reachable as in `docker run --network host`):
#   * `--version` through the image's entrypoint, as the non-root user webmon;
#   * without settings the container exits 2 with one line naming the missing variable;
#   * `producer --validate` and `consumer --validate` with the settings in the environment
#     under the original names and the certificates in a mounted /etc/webmon/certs;
#   * the image's HEALTHCHECK command against a running agent;
#   * a producer container and a consumer container: checks go through Kafka (mTLS) into
#     PostgreSQL (verify-full), each stored exactly once.
# Usage: container.sh <work dir>   (after packaging.image)
# Containers ($root, $ctr, ...) are named by lib.sh's pk_from (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
pk_setup "$1"
pk_work

pk_podman image exists "$PKG_IMAGE" || fail "no image $PKG_IMAGE: run the packaging.image test first"
pk_podman image inspect "$PKG_IMAGE" >"$work/inspect.json"
python3 - "$work/inspect.json" <<'PY' || fail "image config: $(cat "$work/inspect.json")"
import json, sys
image = json.load(open(sys.argv[1]))[0]
c = image["Config"]
assert c["User"] == "webmon", c["User"]
assert c["Entrypoint"] == ["/usr/local/bin/webmon-entrypoint"], c["Entrypoint"]
assert c["WorkingDir"] == "/etc/webmon", c["WorkingDir"]
assert image["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/webmon-healthcheck"], image.get("Healthcheck")
PY
echo "ok: the image runs as webmon, entrypoint webmon-entrypoint, HEALTHCHECK webmon-healthcheck"

pk_from ctr "$PKG_IMAGE"

out=$(pk_run "$ctr" -- /usr/local/bin/webmon-entrypoint --version) || fail "--version: $out"
[[ $out == "webmon-agent $PKG_VERSION "* ]] || fail "unexpected --version output: $out"
[ "$(pk_run "$ctr" -- id -un)" = webmon ] || fail "the container does not run as webmon"
echo "ok: $out, as user webmon"

# No settings at all: exit 2, one line naming the variable.
set +e
out=$(pk_run "$ctr" -- /usr/local/bin/webmon-entrypoint producer 2>&1)
code=$?
set -e
[ "$code" = 2 ] || fail "exit code $code without settings (expected 2): $out"
kafka_line=$(grep -n 'KAFKA_HOST:?' "$PKG_SRC/conf/producer.yaml" | head -1 | cut -d: -f1)
[ "$out" = "webmon-agent: /etc/webmon/producer.yaml:$kafka_line:14: environment variable KAFKA_HOST is required: set KAFKA_HOST to the Kafka bootstrap host:port" ] \
  || fail "unexpected message without settings: $out"
set +e
out=$(pk_run --env KAFKA_HOST=127.0.0.1:1 "$ctr" -- /usr/local/bin/webmon-entrypoint consumer 2>&1)
code=$?
set -e
[ "$code" = 2 ] || fail "consumer exit code $code without DATABASE_HOST (expected 2): $out"
[[ $out == *"environment variable DATABASE_HOST is required"* ]] && [ "$(wc -l <<<"$out")" = 1 ] \
  || fail "unexpected message without DATABASE_HOST: $out"
set +e
out=$(pk_run "$ctr" -- /usr/local/bin/webmon-entrypoint)
code=$?
set -e
[ "$code" = 2 ] && [ "$out" = "webmon: give the pipeline: producer, consumer or a pipeline file (then webmon-agent options)" ] \
  || fail "no argument: exit $code, $out"
echo "ok: a missing setting exits 2 with one line naming it; so does a missing pipeline argument"

pk_stack_setup container
# Loopback only: the image's tcp_check and dns_check target files name internet hosts.
: >"$work/no_targets.yaml"
mounts=(--volume "$work/certs:/etc/webmon/certs:ro" --volume "$work/targets.yaml:/etc/webmon/targets.yaml:ro"
  --volume "$work/no_targets.yaml:/etc/webmon/no_targets.yaml:ro")
settings=(--env "KAFKA_HOST=$KAFKA_HOST" --env "KAFKA_TOPIC=$KAFKA_TOPIC" --env "KAFKA_GROUP=$KAFKA_GROUP"
  --env "DATABASE_HOST=$DATABASE_HOST" --env "DATABASE_PORT=$DATABASE_PORT"
  --env "DATABASE_DB=$DATABASE_DB" --env "DATABASE_USER=$DATABASE_USER"
  --env "DATABASE_PASSWD=$DATABASE_PASSWD" --env "DATABASE_SSLROOTCERT=/etc/webmon/certs/ca.pem"
  --env WEBMON_INTERVAL=500ms --env WEBMON_TCP_TARGETS_FILE=/etc/webmon/no_targets.yaml
  --env WEBMON_DNS_TARGETS_FILE=/etc/webmon/no_targets.yaml)

for p in producer consumer; do
  out=$(pk_run "${mounts[@]}" "${settings[@]}" "$ctr" -- /usr/local/bin/webmon-entrypoint "$p" --validate 2>&1) \
    || fail "$p --validate: $out"
  grep -q "^/etc/webmon/$p.yaml: OK ([0-9]* components)" <<<"$out" || fail "$p --validate: $out"
done
# The pipeline as a path; the certificate paths as conf/.env.sample writes them (relative: the
# working directory is /etc/webmon); a certificate the mount lacks, named.
out=$(pk_run "${mounts[@]}" "${settings[@]}" --env KAFKA_CAFILE=certs/ca.pem --env KAFKA_CERTFILE=certs/service.cert \
  --env KAFKA_KEYFILE=certs/service.key "$ctr" -- /usr/local/bin/webmon-entrypoint /etc/webmon/producer.yaml --validate 2>&1) \
  || fail "/etc/webmon/producer.yaml --validate with certs/... paths: $out"
grep -q "^/etc/webmon/producer.yaml: OK ([0-9]* components)" <<<"$out" || fail "producer by path --validate: $out"
set +e
out=$(pk_run "${mounts[@]}" "${settings[@]}" --env KAFKA_CAFILE=certs/aiven-ca.pem "$ctr" -- \
  /usr/local/bin/webmon-entrypoint producer --validate 2>&1)
code=$?
set -e
[ "$code" = 2 ] && [[ $out == *"option 'ca_file': cannot read 'certs/aiven-ca.pem': No such file or directory" ]] \
  || fail "a missing certificate: exit $code, $out"
echo "ok: producer and consumer validate with settings from the environment and mounted certificates"

# Two containers; the metrics endpoints on free ports (one network: the host's).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pport=$(free_port)
cport=$(free_port)
pk_from cctr "$PKG_IMAGE"
pk_start consumer pk_run "${mounts[@]}" "${settings[@]}" --env "WEBMON_METRICS_LISTEN=127.0.0.1:$cport" \
  "$cctr" -- /usr/local/bin/webmon-entrypoint consumer
pk_start producer pk_run "${mounts[@]}" "${settings[@]}" --env "WEBMON_METRICS_LISTEN=127.0.0.1:$pport" \
  "$ctr" -- /usr/local/bin/webmon-entrypoint producer
wait_for_rows 1

# The image's HEALTHCHECK command (in a third container of the image: one network, the
# host's) against each running agent once its endpoint is up, and where nothing listens.
pk_from hctr "$PKG_IMAGE"
for port in "$pport" "$cport"; do
  health=""
  for _ in $(seq 100); do
    health=$(pk_run --env "WEBMON_METRICS_LISTEN=127.0.0.1:$port" "$hctr" -- /usr/local/bin/webmon-healthcheck 2>&1) \
      && break
    sleep 0.2
  done
  pk_run --env "WEBMON_METRICS_LISTEN=127.0.0.1:$port" "$hctr" -- /usr/local/bin/webmon-healthcheck \
    || fail "healthcheck of the agent on port $port: $health"
done
free=$(free_port)
set +e
health=$(pk_run --env "WEBMON_METRICS_LISTEN=127.0.0.1:$free" "$hctr" -- /usr/local/bin/webmon-healthcheck 2>&1)
code=$?
set -e
[ "$code" = 1 ] && [ "$health" = "unhealthy: nothing listens on 127.0.0.1:$free" ] \
  || fail "healthcheck without an agent: exit $code, '$health'"
echo "ok: the HEALTHCHECK passes on both running agents and fails where none listens"

pk_exchange
