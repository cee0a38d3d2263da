#!/usr/bin/env bash
# Builds the offline base image `localhost/centricity-base:bookworm` from Debian packages alone:
# a debootstrap minbase root file system with Debian's python3 (3.11 on bookworm) and its venv module, imported into
# buildah's local store. No image registry is contacted. The Debian mirror is the one this
# machine's apt already uses (or $DEBIAN_MIRROR), so nothing host-specific is written in the repo.
#
# Where an image registry is reachable, skip this and pass any Python 3.11 image instead, e.g.
#   make images BASE_IMAGE=<your-registry>/python:3.11-slim-bookworm
set -euo pipefail

TAG="${1:-localhost/centricity-base:bookworm}"
SUITE="${SUITE:-bookworm}"

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # deb822 sources (URIs:) first, then the one-line format (deb URL suite ...).
  mirror="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
  [ -n "$mirror" ] || mirror="$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
[ -n "$mirror" ] || { echo "no Debian mirror found: set DEBIAN_MIRROR" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Slim it: no package caches, lists, documentation or locales are needed at run time.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

ctr="$(buildah from scratch)"
trap 'rm -rf "$work"; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
tar -C "$rootfs" -cf "$work/rootfs.tar" .
buildah add --quiet "$ctr" "$work/rootfs.tar" /
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 \
  --label org.opencontainers.image.description="Debian $SUITE minbase with python3" "$ctr"
buildah commit --quiet --rm "$ctr" "$TAG"
echo "built $TAG"
