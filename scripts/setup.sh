#!/usr/bin/env bash
# setup.sh [--with-etcd] [--with-clang] BUILDDIR [MESON OPTIONS...]
# Installs the Debian packages raftbus needs (when run as root; otherwise
# prints the exact apt-get line and fails), then configures and builds.
# --with-etcd also installs etcd-server, the reference the differential test
# (tests/etcd_diff) compares the store against; --with-clang installs clang,
# for the fuzz targets (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: setup.sh [--with-etcd] [--with-clang] BUILDDIR [MESON OPTIONS...]"
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--with-etcd) extra+=(etcd-server); shift ;;
	--with-clang) extra+=(clang); shift ;;
	*) break ;;
	esac
done
builddir=${1:?$usage}
shift

packages=(gcc meson ninja-build pkg-config libnng-dev libmsgpack-dev
	liblmdb-dev libcriterion-dev "${extra[@]}")
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	line="apt-get install -y ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages; run as root:" >&2
		echo "  apt-get update && $line" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -f "$builddir/build.ninja" ]; then
	meson configure "$builddir" "$@" >/dev/null
else
	meson setup "$builddir" "$@" >/dev/null
fi
meson compile -C "$builddir"
