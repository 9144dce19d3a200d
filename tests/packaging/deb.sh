#!/usr/bin/env bash
# packaging.deb: the webmon package in a Debian bookworm root (the base image, as a buildah
# working container), as an administrator uses it:
#   * `apt-get install ./webmon_*.deb` resolves the dependencies from the Debian mirror;
#   * the installed agent finds its built-in plugins, the webmon system user, /var/lib/webmon
#     and /etc/webmon/certs exist with the right owners and modes;
#   * /etc/webmon/webmon.env filled in (an edited conffile), the installed producer and consumer
#     run as the unit runs them (settings from webmon.env read as root, user webmon, working
#     directory /etc/webmon): checks go through Kafka into PostgreSQL;
#   * reinstalling and upgrading keep edited conffiles (an upgrade that changes an edited
#     conffile keeps the admin's and leaves the new one as .dpkg-dist); an unedited conffile
#     the upgrade changes is replaced;
#   * remove keeps /etc/webmon and /var/lib/webmon; purge deletes them.
# Usage: deb.sh <work dir>   (after packaging.image)
# Containers ($root, $ctr, ...) are named by lib.sh's pk_from (printf -v); single-quoted ${...}
# are dpkg-query formats and scripts run by the shell inside the root.
# shellcheck disable=SC2154,SC2016
source "$(dirname "$0")/lib.sh"
pk_setup "$1"
pk_work
deb=$(pk_deb webmon)

pk_from root "$PKG_BASE_IMAGE"
in_root() { pk_run "$root" -- "$@"; }
pk_buildah copy "$root" "$deb" /tmp/ >/dev/null
export DEBIAN_FRONTEND=noninteractive
pk_run --env DEBIAN_FRONTEND=noninteractive "$root" -- sh -c \
  "apt-get update -qq && apt-get install -y --no-install-recommends /tmp/$(basename "$deb")" \
  >"$work/apt.log" 2>&1 || fail "apt-get install ./$(basename "$deb") failed: $(tail -20 "$work/apt.log")"
echo "ok: apt-get install $(basename "$deb") with its dependencies from the mirror"

out=$(in_root webmon-agent --version) || fail "--version: $out"
[[ $out == "webmon-agent $PKG_VERSION "* ]] || fail "--version: $out"
plugins=$(in_root webmon-agent --list-plugins) || fail "--list-plugins: $plugins"
grep -q "^  /usr/lib/webmon/plugins$" <<<"$plugins" || fail "built-in plugin directory not searched: $plugins"
for p in http_check kafka_sink kafka_source postgres_sink generator add_fields; do
  grep -q "^  file: /usr/lib/webmon/plugins/$p.so$" <<<"$plugins" || fail "plugin $p not found: $plugins"
done
grep -q "^refused:" <<<"$plugins" && fail "plugins refused: $plugins"
echo "ok: $out finds its plugins in /usr/lib/webmon/plugins"

user=$(in_root getent passwd webmon) || fail "no webmon user"
IFS=: read -r _ _ uid _ _ home shell <<<"$user"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/webmon ] && [ "$shell" = /usr/sbin/nologin ] \
  || fail "webmon user: $user"
[ "$(in_root stat -c '%U:%G %a' /var/lib/webmon)" = "webmon:webmon 750" ] || fail "/var/lib/webmon: $(in_root stat -c '%U:%G %a' /var/lib/webmon)"
[ "$(in_root stat -c '%U:%G %a' /etc/webmon/certs)" = "root:webmon 750" ] || fail "/etc/webmon/certs: $(in_root stat -c '%U:%G %a' /etc/webmon/certs)"
[ "$(in_root stat -c '%U:%G %a' /etc/webmon/webmon.env)" = "root:root 600" ] || fail "/etc/webmon/webmon.env mode"
[ "$(in_root dpkg-query -W -f='${Conffiles}' webmon | awk '{print $1}' | sort | tr '\n' ' ')" = \
  "/etc/webmon/consumer.yaml /etc/webmon/dns_targets.yaml /etc/webmon/producer.yaml /etc/webmon/targets.yaml /etc/webmon/tcp_targets.yaml /etc/webmon/webmon.env " ] \
  || fail "conffiles: $(in_root dpkg-query -W -f='${Conffiles}' webmon)"
echo "ok: system user webmon ($user), /var/lib/webmon, /etc/webmon/certs, conffiles"

# The administrator's part: certificates, targets and webmon.env (from the template).
pk_stack_setup deb
for f in ca.pem service.cert service.key; do
  pk_buildah copy --chown root:webmon --chmod 0640 "$root" "$work/certs/$f" /etc/webmon/certs/ >/dev/null
done
pk_buildah copy "$root" "$work/targets.yaml" /etc/webmon/targets.yaml >/dev/null
# Loopback only: the installed tcp_check and dns_check target files name internet hosts.
: >"$work/no_targets.yaml"
pk_buildah copy "$root" "$work/no_targets.yaml" /etc/webmon/no_targets.yaml >/dev/null
in_root cat /etc/webmon/webmon.env >"$work/webmon.env"
sed -i -e "s|^KAFKA_HOST=.*|KAFKA_HOST=$KAFKA_HOST|" -e "s|^KAFKA_TOPIC=.*|KAFKA_TOPIC=$KAFKA_TOPIC|" \
  -e "s|^#KAFKA_GROUP=.*|KAFKA_GROUP=$KAFKA_GROUP|" \
  -e "s|^DATABASE_HOST=.*|DATABASE_HOST=$DATABASE_HOST|" -e "s|^DATABASE_PORT=.*|DATABASE_PORT=$DATABASE_PORT|" \
  -e "s|^DATABASE_DB=.*|DATABASE_DB=$DATABASE_DB|" -e "s|^DATABASE_USER=.*|DATABASE_USER=$DATABASE_USER|" \
  -e "s|^DATABASE_PASSWD=.*|DATABASE_PASSWD=$DATABASE_PASSWD|" \
  -e "s|^#DATABASE_SSLROOTCERT=|DATABASE_SSLROOTCERT=|" -e "s|^#WEBMON_INTERVAL=.*|WEBMON_INTERVAL=500ms|" \
  "$work/webmon.env"
printf '%s\n' "WEBMON_TCP_TARGETS_FILE=/etc/webmon/no_targets.yaml" \
  "WEBMON_DNS_TARGETS_FILE=/etc/webmon/no_targets.yaml" >>"$work/webmon.env"
pk_buildah copy --chmod 0600 "$root" "$work/webmon.env" /etc/webmon/webmon.env >/dev/null

# As webmon@<pipeline>.service runs it: a clean environment (systemd's for User=webmon) plus
# EnvironmentFile=/etc/webmon/webmon.env read as root, then the agent as webmon in
# WorkingDirectory=/etc/webmon.
as_unit() { # PIPELINE [AGENT OPTIONS]
  pk_run "$root" -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/webmon USER=webmon LOGNAME=webmon SHELL=/usr/sbin/nologin sh -c '
      set -a; . /etc/webmon/webmon.env; set +a; cd /etc/webmon; p=$1; shift
      exec setpriv --reuid=webmon --regid=webmon --init-groups webmon-agent --pipeline "/etc/webmon/$p.yaml" "$@"' sh "$@"
}
for p in producer consumer; do
  out=$(as_unit "$p" --validate 2>&1) || fail "installed $p does not validate with webmon.env: $out"
done
echo "ok: /etc/webmon/producer.yaml and consumer.yaml validate with /etc/webmon/webmon.env"
pk_start consumer as_unit consumer
pk_start producer as_unit producer
pk_exchange

# --- conffiles across reinstall, upgrade, remove and purge ------------------------------------
edited_env=$(in_root cat /etc/webmon/webmon.env)
edited_targets=$(in_root cat /etc/webmon/targets.yaml)
in_root dpkg -i "/tmp/$(basename "$deb")" >"$work/reinstall.log" 2>&1 || fail "reinstall failed: $(cat "$work/reinstall.log")"
[ "$(in_root cat /etc/webmon/webmon.env)" = "$edited_env" ] || fail "reinstall replaced the edited webmon.env"
[ "$(in_root cat /etc/webmon/targets.yaml)" = "$edited_targets" ] || fail "reinstall replaced the edited targets.yaml"
echo "ok: reinstalling the same version keeps the edited conffiles"

# Version ${PKG_VERSION}-2 of the same package whose targets.yaml (edited here) and producer.yaml
# (not edited) changed.
mkdir "$work/pkg"
dpkg-deb -R "$deb" "$work/pkg/root"
sed -i "s/^Version: .*/Version: ${PKG_VERSION}-2/" "$work/pkg/root/DEBIAN/control"
echo "# changed in ${PKG_VERSION}-2" >>"$work/pkg/root/etc/webmon/targets.yaml"
echo "# changed in ${PKG_VERSION}-2" >>"$work/pkg/root/etc/webmon/producer.yaml"
(cd "$work/pkg/root" && find etc usr lib -type f -exec md5sum {} + >DEBIAN/md5sums)
dpkg-deb -b --root-owner-group "$work/pkg/root" "$work/pkg/webmon_${PKG_VERSION}-2_amd64.deb" >/dev/null
new_producer=$(cat "$work/pkg/root/etc/webmon/producer.yaml")
new_targets=$(cat "$work/pkg/root/etc/webmon/targets.yaml")
pk_buildah copy "$root" "$work/pkg/webmon_${PKG_VERSION}-2_amd64.deb" /tmp/ >/dev/null
in_root dpkg -i --force-confdef --force-confold "/tmp/webmon_${PKG_VERSION}-2_amd64.deb" >"$work/upgrade.log" 2>&1 \
  || fail "upgrade failed: $(cat "$work/upgrade.log")"
[ "$(in_root dpkg-query -W -f='${Version}' webmon)" = "${PKG_VERSION}-2" ] || fail "not upgraded"
[ "$(in_root cat /etc/webmon/webmon.env)" = "$edited_env" ] || fail "the upgrade replaced the edited webmon.env"
[ "$(in_root stat -c '%a' /etc/webmon/webmon.env)" = 600 ] || fail "webmon.env mode changed by the upgrade"
[ "$(in_root cat /etc/webmon/targets.yaml)" = "$edited_targets" ] || fail "the upgrade replaced the edited targets.yaml"
[ "$(in_root cat /etc/webmon/targets.yaml.dpkg-dist)" = "$new_targets" ] || fail "no targets.yaml.dpkg-dist with the new version"
[ "$(in_root cat /etc/webmon/producer.yaml)" = "$new_producer" ] || fail "the unedited producer.yaml was not upgraded"
echo "ok: the upgrade keeps edited conffiles (new version in targets.yaml.dpkg-dist) and updates unedited ones"

in_root dpkg --remove webmon >"$work/remove.log" 2>&1 || fail "remove failed: $(cat "$work/remove.log")"
in_root test ! -e /usr/bin/webmon-agent || fail "remove left /usr/bin/webmon-agent"
[ "$(in_root dpkg-query -W -f='${Status}' webmon)" = "deinstall ok config-files" ] || fail "status after remove"
[ "$(in_root cat /etc/webmon/webmon.env)" = "$edited_env" ] || fail "remove changed /etc/webmon/webmon.env"
in_root test -f /etc/webmon/certs/ca.pem || fail "remove deleted /etc/webmon/certs"
in_root test -d /var/lib/webmon || fail "remove deleted /var/lib/webmon"
echo "ok: remove keeps /etc/webmon and /var/lib/webmon"
in_root dpkg --purge webmon >"$work/purge.log" 2>&1 || fail "purge failed: $(cat "$work/purge.log")"
in_root test ! -e /etc/webmon || fail "purge left /etc/webmon"
in_root test ! -e /var/lib/webmon || fail "purge left /var/lib/webmon"
echo "ok: purge deletes /etc/webmon and /var/lib/webmon"
