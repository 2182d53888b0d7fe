#!/usr/bin/env bash
# ab.sh [--rounds N] BIN_A BIN_B - two raftbus builds side by side,
# interleaved: for each round, a fresh 3-member cluster of A then of B,
# each running the same raftbus-bench rows (put 1 client, put 256
# clients, linearizable get 256 clients, watch 100 watchers). Interleaving
# spreads the machine's noise (a shared disk, other work) over both, so
# the comparison holds even when the absolute figures move.
#
#   bench/ab.sh /tmp/old/build/broker/raftbus build/broker/raftbus
#
# Uses bench/cluster.sh (members stopped by PID), build/bench/raftbus-bench
# ($RAFTBUS_BENCH) and build/client/raftbusctl ($RAFTBUSCTL). Prints one line per build and round.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
[ "${1:-}" = --rounds ] && { rounds=${2:?--rounds needs N}; shift 2; }
[ $# -eq 2 ] || { echo "usage: ab.sh [--rounds N] BIN_A BIN_B" >&2; exit 2; }
bench=${RAFTBUS_BENCH:-build/bench/raftbus-bench}
ctl=${RAFTBUSCTL:-build/client/raftbusctl}
[ -x "$bench" ] || { echo "ab.sh: no $bench (build first)" >&2; exit 1; }

fmt() {
	python3 -c 'import json, sys
try:
    d = json.load(sys.stdin); l = d["latency_ms"]
    print("%.0f/s p50 %.2f p99 %.2f" % (d["throughput"], l["p50"], l["p99"]))
except Exception:
    print("failed")'
}

for ((r = 1; r <= rounds; r++)); do
	for bin in "$1" "$2"; do
		dir=$(mktemp -d /tmp/raftbus-ab.XXXXXX)
		if ! RAFTBUS_BIN=$bin bench/cluster.sh start raftbus 3 "$dir" >/dev/null; then
			echo "ab.sh: cluster of $bin did not start" >&2
			rm -rf "$dir"
			continue
		fi
		e=$(cat "$dir/endpoints")
		"$ctl" --endpoints "$e" put foo bar >/dev/null 2>&1 || true
		a=$("$bench" --endpoints "$e" --conns 1 --clients 1 -o json put --total 2000 --val-size 256 2>/dev/null | fmt)
		b=$("$bench" --endpoints "$e" --conns 16 --clients 256 -o json put --total 40000 --val-size 256 2>/dev/null | fmt)
		c=$("$bench" --endpoints "$e" --conns 16 --clients 256 -o json range foo --total 60000 --consistency l 2>/dev/null | fmt)
		w=$("$bench" --endpoints "$e" --conns 1 --clients 16 -o json watch --watchers 100 --put-total 3000 --val-size 256 2>/dev/null | fmt)
		bench/cluster.sh stop "$dir" >/dev/null || true
		rm -rf "$dir"
		echo "round $r $bin | put1 $a | put256 $b | get256 $c | watch $w"
	done
done
