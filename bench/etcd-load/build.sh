#!/usr/bin/env bash
# build.sh OUTDIR - builds the reference load generators etcd-load and
# nats-load into OUTDIR, offline, from Debian's Go source packages
# (golang-etcd-server-dev, golang-github-nats-io-go-nats-dev: see
# bench/setup-bench.sh). GOPATH mode: a temp GOPATH whose src/raftbus-bench
# is a link to bench/, next to /usr/share/gocode; no module download.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
bench=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
gopath=$(mktemp -d /tmp/raftbus-gopath.XXXXXX)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src"
ln -s "$bench" "$gopath/src/raftbus-bench"
export GO111MODULE=off GOPROXY=off GOFLAGS='' GOPATH="$gopath:/usr/share/gocode"
export GOCACHE=${GOCACHE:-$HOME/.cache/go-build}
cd "$gopath/src/raftbus-bench"
for tool in etcd-load nats-load; do
	go build -o "$out/$tool" "raftbus-bench/$tool"
done
