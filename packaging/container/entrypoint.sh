#!/bin/sh
# The container's entrypoint: webmon-agent on the pipeline named by the first argument —
# `producer` or `consumer` (the pipelines in /etc/webmon) or a path to a pipeline file — with
# every setting from the environment, under the original system's names (KAFKA_HOST,
# KAFKA_TOPIC, KAFKA_CAFILE, KAFKA_CERTFILE, KAFKA_KEYFILE, DATABASE_HOST, DATABASE_PORT,
# DATABASE_DB, DATABASE_USER, DATABASE_PASSWD, ...). When KAFKA_CAFILE, KAFKA_CERTFILE or
# KAFKA_KEYFILE is unset and ca.pem, service.cert or service.key is in the mounted certificate
# directory ($WEBMON_CERTS_DIR, default /etc/webmon/certs), that file is used.
# Further arguments go to webmon-agent (--validate, --log-format json, ...); arguments that
# start with '-' alone (--version, --list-plugins, --help) run webmon-agent as given.
set -eu

if [ $# -eq 0 ]; then
  echo "webmon: give the pipeline: producer, consumer or a pipeline file (then webmon-agent options)" >&2
  exit 2
fi
case $1 in
  -*) exec webmon-agent "$@" ;;
  producer | consumer) pipeline=/etc/webmon/$1.yaml ;;
  *) pipeline=$1 ;;
esac
shift

certs=${WEBMON_CERTS_DIR:-/etc/webmon/certs}
# default_file VAR FILE: VAR=$certs/FILE when VAR is unset and the file is there.
default_file() {
  eval "is_set=\${$1+set}"
  if [ -z "$is_set" ] && [ -e "$certs/$2" ]; then
    export "$1=$certs/$2"
  fi
}
default_file KAFKA_CAFILE ca.pem
default_file KAFKA_CERTFILE service.cert
default_file KAFKA_KEYFILE service.key

exec webmon-agent --pipeline "$pipeline" "$@"
