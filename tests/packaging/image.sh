#!/usr/bin/env bash
# packaging.image (the fixture of the other packaging tests): the base image and the webmon
# image, built as a user without a Docker daemon would.
#  1. debootstrap --variant=minbase bookworm from the Debian mirror this machine's apt sources
#     name, once: the root is cached as a tarball under $WEBMON_CACHE/packaging.
#  2. that root imported as docker.io/library/debian:bookworm-slim (no registry is reachable).
#  3. the repository's Dockerfile built unchanged (podman build --isolation chroot); its first
#     stage builds the release preset and the .debs, its second installs webmon_*.deb.
#  4. the packages in the image (/debs) copied to <work>/debs for the other packaging tests.
# Usage: image.sh <work dir>
# Containers ($root, $ctr, ...) are named by lib.sh's pk_from (printf -v).
# shellcheck disable=SC2154
source "$(dirname "$0")/lib.sh"
pk_setup "$1"
work=$PKG_WORK
trap pk_cleanup EXIT

# The first Debian mirror for bookworm in the machine's apt sources (deb822 or one-line).
apt_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""; types = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = " " substr($i, 7) " "
          if ($i ~ /^URIs:/) uris = substr($i, 6)
          if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
        }
        gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites)
        if (types ~ / deb / && suites ~ / bookworm /) { split(uris, u, " "); print u[1]; exit }
      }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i + 1) == "bookworm") { print $i; exit } }' /etc/apt/sources.list)
  fi
  printf '%s\n' "$m"
}

mkdir -p "$PKG_CACHE"
if [ ! -s "$PKG_BASE_TAR" ]; then
  mirror=$(apt_mirror)
  [ -n "$mirror" ] || fail "no Debian bookworm mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources"
  echo "debootstrap --variant=minbase bookworm from $mirror (once; cached in $PKG_BASE_TAR)"
  root=$(mktemp -d "$PKG_CACHE/root.XXXXXX")
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { rm -rf "$root"; fail "debootstrap failed (log: $work/debootstrap.log)"; }
  # Like the official image: no package lists or downloaded packages in the root.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -cf "$PKG_BASE_TAR.tmp" . && mv "$PKG_BASE_TAR.tmp" "$PKG_BASE_TAR"
  rm -rf "$root"
  pk_podman rmi -f "$PKG_BASE_IMAGE" >/dev/null 2>&1 || true
fi
if ! pk_podman image exists "$PKG_BASE_IMAGE"; then
  pk_podman import --change 'CMD ["bash"]' "$PKG_BASE_TAR" "$PKG_BASE_IMAGE" >/dev/null \
    || fail "podman import of $PKG_BASE_TAR failed"
fi
echo "ok: base image $PKG_BASE_IMAGE"

echo "building the Dockerfile (podman build --isolation chroot; log: $work/build.log)"
pk_podman build --isolation chroot --pull=never --format docker -t "$PKG_IMAGE" \
  -f "$PKG_SRC/Dockerfile" "$PKG_SRC" >"$work/build.log" 2>&1 || fail "podman build failed"
# Keep the cache bounded without losing the layers the next build reuses (the build stage's
# apt-get layer is an untagged image too): earlier builds' images go only above 6 GiB.
if [ "$(du -sk "$PKG_CACHE/containers" | cut -f1)" -gt $((6 * 1024 * 1024)) ]; then
  echo "container storage above 6 GiB: removing earlier builds' images"
  pk_podman image prune -f >/dev/null 2>&1 || true
fi
echo "ok: image $PKG_IMAGE built from the Dockerfile"

rm -rf "$PKG_DEBS"
mkdir -p "$PKG_DEBS"
pk_from ctr "$PKG_IMAGE"
pk_buildah run --user root --volume "$PKG_DEBS:/pk-debs" "$ctr" -- sh -c 'cp /debs/*.deb /pk-debs/' \
  || fail "could not copy /debs out of the image"
webmon_deb=$(pk_deb webmon)
sdk_deb=$(pk_deb webmon-sdk-dev)
echo "ok: $(basename "$webmon_deb") and $(basename "$sdk_deb") copied to $PKG_DEBS"
