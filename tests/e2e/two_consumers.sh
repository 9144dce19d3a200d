#!/usr/bin/env bash
# End to end: two consumer agents in one group split the topic's partitions; one is stopped
# (SIGTERM) mid-run and the other takes over. Every check is stored exactly once.
# Usage: two_consumers.sh <webmon-agent> <source dir>
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

sleep 8
stop_agent "$a" "consumer A"
echo "consumer A stopped"
sleep 6
finish_exactly_once 40 "$b"

stored() { sed -n "s/.*sink 'postgres' (postgres_sink): received=\([0-9]*\).*/\1/p" "$1"; }
sa=$(stored "$work/consumer-a.log")
sb=$(stored "$work/consumer-b.log")
[ -n "$sa" ] && [ "$sa" -gt 0 ] || fail "consumer A stored nothing: the partitions were not split"
[ -n "$sb" ] && [ "$sb" -gt 0 ] || fail "consumer B stored nothing"
echo "ok: $sent checks, $rows rows once each; consumer A received $sa before it stopped, B $sb"
