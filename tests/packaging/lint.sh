#!/usr/bin/env bash
# packaging.lint: the packages the image was built from, checked without installing them:
#   * lintian reports no errors (its warnings are printed);
#   * webmon's Depends come from dpkg-shlibdeps (the libraries the agent and plugins link);
#   * /etc/webmon files are conffiles; maintainer scripts are present;
#   * webmon-sdk-dev holds the headers, the CMake package and the example; the example, built
#     against the unpacked package with find_package(webmon_sdk), runs in the unpacked agent;
#   * webmon@.service passes `systemd-analyze verify` (with the package's files as the root)
#     without a single message, and its stop timeout exceeds the agent's shutdown_timeout.
# Usage: lint.sh <work dir>   (after packaging.image)
source "$(dirname "$0")/lib.sh"
pk_setup "$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deb=$(pk_deb webmon)
sdk=$(pk_deb webmon-sdk-dev)

# lintian refuses to run as root without --allow-root.
lintian_out=$(lintian --allow-root --fail-on error --display-info "$deb" "$sdk" 2>&1) \
  || fail "lintian reports errors: $lintian_out"
echo "lintian: $(grep -c '^E: ' <<<"$lintian_out" || true) errors, $(grep -c '^W: ' <<<"$lintian_out" || true) warnings, $(grep -c '^I: ' <<<"$lintian_out" || true) info"
grep -E '^[EW]: ' <<<"$lintian_out" || true

depends=$(dpkg-deb -f "$deb" Depends)
names=$(sed -e 's/ *([^)]*)//g' -e 's/, */\n/g' <<<"$depends")
for lib in passwd libc6 libstdc++6 libcurl4 librdkafka1 libpq5 libyaml-cpp0.7 libpcre2-8-0 libssl3; do
  grep -Fxq "$lib" <<<"$names" || fail "webmon does not depend on $lib: $depends"
done
echo "ok: Depends (dpkg-shlibdeps, and passwd for the postinst): $depends"

dpkg-deb -e "$deb" "$work/control"
[ "$(sort "$work/control/conffiles" | tr '\n' ' ')" = \
  "/etc/webmon/consumer.yaml /etc/webmon/dns_targets.yaml /etc/webmon/producer.yaml /etc/webmon/targets.yaml /etc/webmon/tcp_targets.yaml /etc/webmon/webmon.env " ] \
  || fail "conffiles: $(cat "$work/control/conffiles")"
for s in postinst prerm postrm; do [ -x "$work/control/$s" ] || fail "no $s"; done
listing=$(dpkg-deb -c "$sdk")
for f in ./usr/include/webmon/sdk/plugin.hpp ./usr/lib/cmake/webmon_sdk/webmon_sdkConfig.cmake \
  ./usr/lib/cmake/webmon_sdk/WebmonSdkPlugin.cmake ./usr/share/doc/webmon-sdk-dev/examples/hello_sink/hello_sink.cpp; do
  grep -q " $f$" <<<"$listing" || fail "webmon-sdk-dev lacks $f"
done
echo "ok: conffiles, maintainer scripts, SDK contents"

# systemd-analyze verify needs the unit's binary and systemd's own units under one root.
mkdir -p "$work/root/lib/systemd"
dpkg-deb -x "$deb" "$work/root"
cp -a /lib/systemd/system "$work/root/lib/systemd/"
verify=$(systemd-analyze verify --man=no --root="$work/root" webmon@producer.service webmon@consumer.service 2>&1) \
  || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify printed: $verify"
unit="$work/root/lib/systemd/system/webmon@.service"
for line in "User=webmon" "EnvironmentFile=/etc/webmon/webmon.env" "ExecStart=/usr/bin/webmon-agent --pipeline /etc/webmon/%i.yaml" \
  "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "StateDirectory=webmon" \
  "Restart=on-failure" "KillSignal=SIGTERM"; do
  grep -qx "$line" "$unit" || fail "webmon@.service lacks $line"
done
# The agent's default agent.shutdown_timeout (conf/ does not change it) against TimeoutStopSec.
shutdown=$(sed -n 's/.*{"shutdown_timeout", OptionType::duration, "\([0-9]*\)s".*/\1/p' "$PKG_SRC/agent/src/pipeline.cpp")
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[ -n "$shutdown" ] && [ -n "$stop" ] && [ "$stop" -gt "$shutdown" ] \
  || fail "TimeoutStopSec=${stop}s must exceed the agent's shutdown_timeout (${shutdown}s)"
grep -q shutdown_timeout "$PKG_SRC"/conf/producer.yaml "$PKG_SRC"/conf/consumer.yaml \
  && fail "conf/ sets shutdown_timeout: check TimeoutStopSec in webmon@.service against it"
exposure=$(systemd-analyze security --offline=yes --root="$work/root" --threshold=40 webmon@producer.service 2>&1) \
  || fail "systemd-analyze security: exposure above 4.0 (--threshold is in tenths): $(tail -1 <<<"$exposure")"
echo "ok: webmon@.service verifies cleanly; TimeoutStopSec=${stop}s > shutdown_timeout ${shutdown}s; $(tail -1 <<<"$exposure" | sed 's/→ //')"

# The SDK package as a plugin author uses it: the example from /usr/share/doc, built with
# find_package(webmon_sdk) against the unpacked package, run by the packaged agent (which finds
# its built-in generator plugin relative to itself).
mkdir -p "$work/sdkroot"
dpkg-deb -x "$sdk" "$work/sdkroot"
cp -r "$work/sdkroot/usr/share/doc/webmon-sdk-dev/examples/hello_sink" "$work/hello_sink"
cmake -S "$work/hello_sink" -B "$work/hello_build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/sdkroot/usr" >"$work/sdk.log" 2>&1 || fail "configure the example: $(cat "$work/sdk.log")"
cmake --build "$work/hello_build" >>"$work/sdk.log" 2>&1 || fail "build the example: $(cat "$work/sdk.log")"
HELLO_COUNT=1000 HELLO_REPORT="$work/report" "$work/root/usr/bin/webmon-agent" --plugin-dir "$work/hello_build" \
  --pipeline "$work/hello_sink/pipeline.yaml" 2>"$work/hello.log" || fail "the example did not run: $(cat "$work/hello.log")"
[ "$(cat "$work/report")" = $'hello_sink: 50 of 500 records match\nhello_sink: 50 of 500 records match' ] \
  || fail "unexpected report from the example: $(cat "$work/report")"
echo "ok: the SDK package's example builds with find_package(webmon_sdk) and runs in the packaged agent"
