#!/bin/bash
# The container's HEALTHCHECK: GET /healthz on the agent's metrics endpoint
# (agent.metrics.listen = $WEBMON_METRICS_LISTEN) with bash alone, so the image needs no curl.
# Exit 0 when the agent answers 200, 1 otherwise (with one line saying why).
set -u
listen=${WEBMON_METRICS_LISTEN:-}
if [ -z "$listen" ]; then
  echo "unhealthy: metrics are off (WEBMON_METRICS_LISTEN is empty)"
  exit 1
fi
host=${listen%:*}
port=${listen##*:}
case $host in
  "" | 0.0.0.0 | "*") host=127.0.0.1 ;;
  "[::]" | "::") host=::1 ;;
  \[*\]) host=${host#[} host=${host%]} ;;
esac
# (bash's own messages on stderr are dropped: the one line below says it)
if ! exec 2>/dev/null 3<>"/dev/tcp/$host/$port"; then
  echo "unhealthy: nothing listens on $host:$port"
  exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
status=""
IFS= read -r -t 5 status <&3 || true
exec 3<&-
case $status in
  "HTTP/1."?" 200"*) exit 0 ;;
esac
echo "unhealthy: $host:$port/healthz answered '${status%$'\r'}'"
exit 1
