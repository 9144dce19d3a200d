#!/usr/bin/env bash
# End to end: two consumer agents in one group split the topic's partitions; one is stopped
# (SIGTERM) mid-run and the other takes over. Every check is stored exactly once.
# Usage: two_consumers.sh <webmon-agent> <source dir>
# The agents' pids ($producer, $consumer, ...) are set by lib.sh's start_agent (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
e2e_setup "$1" "$2" pair

cat >"$work/targets.yaml" <<YAML
- { name: healthy, url: "$base/healthy", body_regex: "all good" }
- { name: failing, url: "$base/fail" }
- { name: wrong-body, url: "$base/wrong", body_regex: "all good" }
YAML
export WEBMON_INTERVAL=200ms

# Each consumer its own name: the name is its static group membership id (kafka_source README).
WEBMON_AGENT_NAME=consumer-a start_agent a conf/consumer.yaml consumer-a.log
WEBMON_AGENT_NAME=consumer-b start_agent b conf/consumer.yaml consumer-b.log
start_agent producer conf/producer.yaml producer.log

# Both consumers store records (the partitions are split), then A stops while checks are in
# flight; B takes over A's partitions and stores 20 more checks' worth.
stored_by() { local m; m=$(metric "$(metrics_port "$1")" received_total postgres); echo "${m%.*}"; }
for _ in $(seq 600); do
  [ "$(stored_by consumer-a.log)" -gt 0 ] && [ "$(stored_by consumer-b.log)" -gt 0 ] && break
  sleep 0.2
done
wait_in_flight "stopping consumer A"
stop_agent "$a" "consumer A"
echo "consumer A stopped"
made=$(metric "$(metrics_port producer.log)" sent_total checks)
wait_for_checks $(( ${made%.*} + 20 ))
wait_for_rows $(( ${made%.*} + 10 )) || fail "consumer B did not take over A's partitions"
finish_exactly_once 40 "$b"

stored() { sed -n "s/.*sink 'postgres' (postgres_sink): received=\([0-9]*\).*/\1/p" "$1"; }
sa=$(stored "$work/consumer-a.log")
sb=$(stored "$work/consumer-b.log")
[ -n "$sa" ] && [ "$sa" -gt 0 ] || fail "consumer A stored nothing: the partitions were not split"
[ -n "$sb" ] && [ "$sb" -gt 0 ] || fail "consumer B stored nothing"
echo "ok: $sent checks, $rows rows once each; consumer A received $sa before it stopped, B $sb"
