#!/usr/bin/env bash
# setup.sh [--with-etcd] BUILDDIR [MESON OPTIONS...]
# Installs the Debian packages raftbus needs (when run as root; otherwise
# prints the exact apt-get line and fails), then configures and builds.
# --with-etcd also installs etcd-server, the reference the differential test
# (tests/etcd_diff) compares the store against.
set -euo pipefail
cd "$(dirname "$0")/.."
with_etcd=0
if [ "${1:-}" = --with-etcd ]; then
	with_etcd=1
	shift
fi
builddir=${1:?usage: setup.sh [--with-etcd] BUILDDIR [MESON OPTIONS...]}
shift

packages=(gcc meson ninja-build pkg-config libnng-dev libmsgpack-dev
	liblmdb-dev libcriterion-dev)
[ $with_etcd -eq 1 ] && packages+=(etcd-server)
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
