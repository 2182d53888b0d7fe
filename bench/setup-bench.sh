#!/usr/bin/env bash
# setup-bench.sh - installs the Debian packages the side-by-side benchmark
# (bench/compare.sh) needs besides raftbus's own build dependencies: the
# reference servers (etcd, NATS JetStream), the Go toolchain and the Debian
# Go source packages the load generators bench/etcd-load and bench/nats-load
# are built from offline, and gnuplot for bench/plot.sh.
# As root it runs apt-get update + install; otherwise it prints the exact
# apt-get line and exits 1. Installing nothing when all is present.
set -euo pipefail

packages=(etcd-server etcd-client golang-go golang-etcd-server-dev
	golang-github-nats-io-go-nats-dev nats-server gnuplot-nox python3)
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup-bench: all packages present"
	exit 0
fi
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "setup-bench: missing packages; run as root:" >&2
	echo "  apt-get update && $line" >&2
	exit 1
fi
echo "setup-bench: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Recommends pull in nothing the benchmark uses; the Go -dev packages'
# Depends bring the rest of the source tree clientv3 and nats.go import.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-bench: done"
