# shellcheck shell=bash
# Shared helpers of the bench/buffer scripts (sourced, not run). Sets `root`; provides the
# agent lookup, a free loopback port, the metrics endpoint of a running agent, counters and
# gauges from it, and RSS/CPU of a process.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# find_agent [AGENT]: the agent given, else build/release, else build/dev.
find_agent() {
  local a=${1:-}
  if [ -z "$a" ]; then
    for b in release dev; do
      if [ -x "$root/build/$b/bin/webmon-agent" ]; then a="$root/build/$b/bin/webmon-agent"; break; fi
    done
  fi
  [ -n "$a" ] && [ -x "$a" ] || {
    echo "no webmon-agent (build with: cmake --preset release && cmake --build --preset release)" >&2
    exit 2
  }
  printf '%s\n' "$a"
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# A loopback TCP port nobody listens on (bound and released: free at that moment).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# metrics_port LOG [TIMEOUT_S]: the port of "metrics on http://127.0.0.1:PORT/metrics" in an
# agent's log (agent.metrics.listen: 127.0.0.1:0, --log-level info).
metrics_port() {
  local log=$1 deadline=$(( $(date +%s) + ${2:-60} )) p
  while [ "$(date +%s)" -lt "$deadline" ]; do
    p=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$log" 2>/dev/null | head -1)
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    sleep 0.05
  done
  echo "no metrics endpoint in $log" >&2
  return 1
}

# metric PORT NAME COMPONENT: one value of the /metrics text (counter: NAME ends in _total;
# gauge: buffer_records, buffer_bytes, ...), as an integer; empty when not there (yet).
metric() {
  curl -fs --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v n="webmon_component_$2" -v c="component=\"$3\"" \
      '!done && index($0, n "{") == 1 && index($0, c) { printf "%.0f\n", $NF; done = 1 }'
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# CPU seconds (user + system) of a running process, all threads.
cpu_of_pid() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
