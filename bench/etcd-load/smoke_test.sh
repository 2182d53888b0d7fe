#!/usr/bin/env bash
# smoke_test.sh [TOOLS_DIR] - checks the reference load generators end to
# end: builds etcd-load and nats-load (into TOOLS_DIR, default a temp dir),
# starts a 3-member etcd and a 3-member NATS JetStream cluster with
# bench/cluster.sh, runs every workload with small totals and -o json, and
# asserts that each prints one JSON line of the documented shape with the
# expected total, no errors and a positive throughput; that bad command
# lines exit 2; and that cluster.sh rss reports every member. Clusters are
# stopped by PID and temp dirs removed on every exit path. About 30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/load-smoke.XXXXXX)
tools=${1:-$tmp/tools}
cleanup() {
	bench/cluster.sh stop "$tmp/etcd" 2>/dev/null || true
	bench/cluster.sh stop "$tmp/nats" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0 failed=0

bench/etcd-load/build.sh "$tools"
export NATS_LOAD=$tools/nats-load

# check TOTAL TOOL ARGS...: one JSON line, total TOTAL, no errors.
check() {
	local total=$1 line
	shift
	if line=$("$@" 2>/dev/null) && python3 - "$total" "$line" <<'PY'
import json, sys
want, line = int(sys.argv[1]), sys.argv[2]
assert len(line.splitlines()) == 1, "one line"
d = json.loads(line)
keys = ["system", "workload", "clients", "conns", "total", "errors",
        "duration_s", "throughput", "latency_ms"]
assert list(d) == keys, list(d)
assert list(d["latency_ms"]) == ["min", "p50", "p90", "p99", "p999", "max"]
assert d["total"] == want and d["errors"] == 0, (d["total"], d["errors"])
assert d["throughput"] > 0 and d["duration_s"] > 0
l = d["latency_ms"]
assert 0 < l["min"] <= l["p50"] <= l["p90"] <= l["p99"] <= l["p999"] <= l["max"]
PY
	then
		passed=$((passed + 1))
	else
		echo "failed: $* -> ${line:-nothing}" >&2
		failed=$((failed + 1))
	fi
}

# usage ARGS...: exits 2.
usage() {
	local rc=0
	"$@" >/dev/null 2>&1 || rc=$?
	if [ $rc = 2 ]; then passed=$((passed + 1)); else
		echo "failed: $* exited $rc, not 2" >&2
		failed=$((failed + 1))
	fi
}

bench/cluster.sh start etcd 3 "$tmp/etcd" || fail "etcd cluster"
eps=$(cat "$tmp/etcd/endpoints")
[ "$(bench/cluster.sh rss "$tmp/etcd" | grep -c '^member[0-9] [0-9.]*$')" = 3 ] ||
	fail "cluster.sh rss"
ETCDCTL_API=3 etcdctl --endpoints "$eps" put smoke-key v >/dev/null
e=("$tools/etcd-load" --endpoints "$eps" --conns 2 --clients 4 -o json)
check 200 "${e[@]}" put --total 200 --val-size 256 --key-space-size 1000
check 200 "${e[@]}" put --total 200 --sequential-keys --key-space-size 50
check 200 "${e[@]}" range smoke-key --total 200
check 200 "${e[@]}" range smoke-key --total 200 --consistency s
check 100 "${e[@]}" txn-put --total 100 --txn-ops 4
check 200 "${e[@]}" lease-keepalive --total 200
check 1000 "${e[@]}" watch --watchers 10 --put-total 100 --val-size 64
usage "${e[@]}" nope
usage "${e[@]}" put --bogus
usage "${e[@]}" range
usage "${e[@]}" range k --consistency x
bench/cluster.sh stop "$tmp/etcd"

bench/cluster.sh start nats 3 "$tmp/nats" || fail "nats cluster"
n=("$tools/nats-load" --endpoints "$(cat "$tmp/nats/endpoints")" --conns 2 -o json)
check 1000 "${n[@]}" pubsub --publishers 2 --subscribers 5 --total 200 --size 64
check 200 "${n[@]}" queue --producers 2 --consumers 3 --total 200 --size 64
check 200 "${n[@]}" queue --producers 2 --consumers 3 --total 200 --batch 4
usage "${n[@]}" nope
usage "${n[@]}" queue --total 0
bench/cluster.sh stop "$tmp/nats"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
