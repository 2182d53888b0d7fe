#!/usr/bin/env bash
# compare.sh [--quick] [--sweep] [--out DIR] [--only RE] - raftbus side by side with
# etcd and NATS JetStream on this machine (issue 7). For every workload
# below it starts a fresh 3-member raftbus cluster and runs raftbus-bench,
# then a fresh 3-member etcd (or NATS) cluster and runs etcd-load (or
# nats-load) with the SAME arguments, records each member's peak RSS, and
# prints a Markdown table of throughput, ratio, p50/p99 and RSS. Raw JSON
# lines go to DIR/results.jsonl (one per system and workload).
#
#   --quick   small totals (CI speed, about 2 minutes)
#   --sweep   instead of the table: put with 1, 16, 64, 256 clients for
#             raftbus and etcd -> DIR/sweep.csv and DIR/sweep.png (plot.sh);
#             busy_cores_before > 0.3 in a row means other work skewed it
#   --out DIR where results go (default /tmp/raftbus-compare.<time>)
#   --only RE only the workloads whose name matches the extended regex RE
#
# Environment: BUILDDIR (default build) is configured and built unless
# RAFTBUS_BIN, RAFTBUSCTL and RAFTBUS_BENCH all name existing binaries;
# the Go tools are built into TOOLS_DIR (default BUILDDIR/bench-tools).
# A raftbus row whose workload raftbus-bench does not support (exit status
# 2: usage) prints n/a. Needs the packages of bench/setup-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 sweep=0 out="" only=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--sweep) sweep=1 ;;
	--out) out=${2:?--out needs a DIR}; shift ;;
	--only) only=${2:?--only needs a REGEX}; shift ;;
	*) echo "usage: compare.sh [--quick] [--sweep] [--out DIR] [--only REGEX]" >&2; exit 2 ;;
	esac
	shift
done
out=${out:-/tmp/raftbus-compare.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)

# One run of a load generator may take at most this long.
RUN_TIMEOUT_S=900
MEMBERS=3
VAL=256

builddir=${BUILDDIR:-build}
export RAFTBUS_BIN=${RAFTBUS_BIN:-$builddir/broker/raftbus}
export RAFTBUSCTL=${RAFTBUSCTL:-$builddir/client/raftbusctl}
RAFTBUS_BENCH=${RAFTBUS_BENCH:-$builddir/bench/raftbus-bench}
tools=${TOOLS_DIR:-$builddir/bench-tools}
export NATS_LOAD=$tools/nats-load
ETCD_LOAD=$tools/etcd-load

build() {
	local c
	for c in etcd etcdctl nats-server go python3; do
		command -v "$c" >/dev/null || {
			echo "compare: $c missing; run bench/setup-bench.sh as root" >&2
			exit 1
		}
	done
	if ! [ -x "$RAFTBUS_BIN" ] || ! [ -x "$RAFTBUSCTL" ] ||
		! [ -x "$RAFTBUS_BENCH" ]; then
		echo "compare: building raftbus in $builddir" >&2
		[ -f "$builddir/build.ninja" ] ||
			meson setup "$builddir" -Dtests=false >/dev/null
		# Only the three programs, not the test suites.
		meson compile -C "$builddir" broker/raftbus:executable \
			client/raftbusctl:executable >"$out/logs/meson.log" 2>&1 || {
			echo "compare: raftbus build failed, see $out/logs/meson.log" >&2
			exit 1
		}
		# A tree without raftbus-bench still gets its reference rows.
		meson compile -C "$builddir" bench/raftbus-bench:executable \
			>>"$out/logs/meson.log" 2>&1 ||
			echo "compare: no raftbus-bench: raftbus rows will be n/a" >&2
	fi
	echo "compare: building etcd-load and nats-load in $tools" >&2
	bench/etcd-load/build.sh "$tools"
}

# The workloads: name | arguments given to both tools | reference system
# [| arguments given to raftbus-bench only: what the reference has no way
# to do, such as batched queue pushes and acks].
# Totals are "full/quick".
rows() {
	local q=$quick
	t() { if [ "$q" = 1 ]; then echo "$2"; else echo "$1"; fi; }
	local kv="--val-size $VAL --key-space-size 100000"
	echo "put 1 client|--conns 1 --clients 1 put --total $(t 5000 300) $kv|etcd"
	echo "put 256 clients|--conns 16 --clients 256 put --total $(t 100000 5000) $kv|etcd"
	echo "range l 256 clients|--conns 16 --clients 256 range bench-key --total $(t 100000 5000) --consistency l|etcd"
	echo "txn-put 4 ops|--conns 16 --clients 256 txn-put --total $(t 20000 1000) --txn-ops 4 $kv|etcd"
	echo "lease-keepalive|--conns 16 --clients 256 lease-keepalive --total $(t 100000 5000)|etcd"
	# One connection, as in etcd's own benchmark tool, with 16 putters.
	echo "watch 100 watchers|--conns 1 --clients 16 watch --watchers 100 --put-total $(t 10000 300) --val-size $VAL|etcd"
	echo "pubsub 16 pub 100 sub|--conns 16 --clients 16 pubsub --publishers 16 --subscribers 100 --total $(t 10000 300) --size $VAL|nats"
	echo "queue 8 prod 8 cons|--conns 8 --clients 8 queue --producers 8 --consumers 8 --total $(t 10000 500) --size $VAL|nats"
	# Fetches of 10 on both; raftbus also pushes and acks 10 per request
	# (nats.go's JetStream publish and ack are per message).
	echo "queue 8x8 batch 10|--conns 8 --clients 8 queue --producers 8 --consumers 8 --total $(t 20000 1000) --size $VAL --batch 10|nats|--push-batch 10"
	echo "queue 8x8 batch 100|--conns 8 --clients 8 queue --producers 8 --consumers 8 --total $(t 50000 2000) --size $VAL --batch 100|nats|--push-batch 100"
}

# preload KIND DIR ARGS: what a workload needs in the store beforehand.
preload() {
	local kind=$1 dir=$2 args=$3 eps val
	case $args in *" range bench-key "*) ;; *) return 0 ;; esac
	eps=$(cat "$dir/endpoints")
	val=$(head -c $VAL /dev/zero | tr '\0' v)
	case $kind in
	raftbus) "$RAFTBUSCTL" --endpoints "$eps" put bench-key "$val" >/dev/null ;;
	etcd) ETCDCTL_API=3 etcdctl --endpoints "$eps" put bench-key "$val" >/dev/null ;;
	esac
}

# busy_cores: CPUs' worth of time not idle over the next second.
busy_cores() {
	local a b
	a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
	echo "$a $b" | awk -v n="$(nproc)" '{
		busy = $3 - $1; all = busy + $4 - $2
		printf "%.2f", (all > 0 ? n * busy / all : 0) }'
}

# run_one KIND TAG ARGS: fresh cluster, one tool run, RSS, stop. Prints
# the tool's JSON line with "rss_mib" added, "n/a" (unsupported) or
# "failed".
run_one() {
	local kind=$1 tag=$2 args=$3 dir tool rc=0 json rss load1
	dir=$(mktemp -d "/tmp/raftbus-compare-$kind.XXXXXX")
	case $kind in
	raftbus)
		tool=$RAFTBUS_BENCH
		[ -x "$tool" ] || { echo n/a; rm -rf "$dir"; return; } ;;
	etcd) tool=$ETCD_LOAD ;;
	nats) tool=$NATS_LOAD ;;
	esac
	if ! bench/cluster.sh start "$kind" $MEMBERS "$dir" 2>"$out/logs/$tag.cluster"; then
		echo failed
		cp "$dir"/*.log "$out/logs/" 2>/dev/null || true
		rm -rf "$dir"
		return
	fi
	preload "$kind" "$dir" " $args "
	# Other work on this 2-core machine skews every figure: how many cores
	# were busy during the second before the run is kept with the result.
	load1=$(busy_cores)
	# shellcheck disable=SC2086 # args is a word list on purpose
	timeout "$RUN_TIMEOUT_S" "$tool" --endpoints "$(cat "$dir/endpoints")" \
		-o json $args >"$out/logs/$tag.out" 2>"$out/logs/$tag.err" || rc=$?
	echo "exit status $rc" >>"$out/logs/$tag.err"
	rss=$(bench/cluster.sh rss "$dir" | awk '{printf "%s%s", s, $2; s="/"}')
	bench/cluster.sh stop "$dir"
	json=$(grep -m1 '^{' "$out/logs/$tag.out" || true)
	if [ "$rc" = 2 ] && [ -z "$json" ]; then
		echo n/a
	elif [ -z "$json" ]; then
		echo failed
		for f in "$dir"/*.log; do cp "$f" "$out/logs/$tag.$(basename "$f")"; done
	else
		python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["rss_mib"]=sys.argv[2]; d["busy_cores_before"]=float(sys.argv[3]); print(json.dumps(d))' "$json" "$rss" "$load1"
	fi
	rm -rf "$dir"
}

# table RESULTS: the Markdown table from the row-tagged results.
table() {
	python3 - "$1" <<'PY'
import json, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    row, side, res = line.rstrip("\n").split("\t", 2)
    if row not in rows:
        rows[row] = {}
        order.append(row)
    rows[row][side] = json.loads(res) if res.startswith("{") else res
def thr(r):
    return f'{r["throughput"]:,.0f}' if isinstance(r, dict) else r
def lat(r):
    if not isinstance(r, dict):
        return r
    l = r["latency_ms"]
    e = f' ({r["errors"]} err)' if r["errors"] else ""
    return f'{l["p50"]:.2f} / {l["p99"]:.2f}{e}'
def rss(r):
    return r.get("rss_mib", "?") if isinstance(r, dict) else "-"
print("| workload | raftbus thr /s | ref thr /s | ratio | raftbus p50/p99 ms | ref p50/p99 ms | peak RSS MiB per member (raftbus; ref) |")
print("|---|---:|---:|---:|---:|---:|---|")
for row in order:
    r, ref = rows[row].get("raftbus", "n/a"), rows[row].get("ref", "n/a")
    name = ref["system"] if isinstance(ref, dict) else "?"
    ratio = "n/a"
    if isinstance(r, dict) and isinstance(ref, dict) and ref["throughput"] > 0:
        ratio = f'{r["throughput"] / ref["throughput"]:.2f}x'
    print(f'| {row} | {thr(r)} | {thr(ref)} ({name}) | {ratio} | {lat(r)} | {lat(ref)} | {rss(r)}; {rss(ref)} |')
busy = [r["busy_cores_before"] for v in rows.values() for r in v.values()
        if isinstance(r, dict) and "busy_cores_before" in r]
if busy and max(busy) > 0.3:
    print(f"\nWarning: other work kept up to {max(busy):.2f} cores busy just"
          " before a run: the figures are skewed.")
PY
}

compare() {
	local res=$out/results.jsonl tagged=$out/rows.tsv name args ref r e i=0
	: >"$res"
	: >"$tagged"
	while IFS='|' read -r name args ref only_rb; do
		i=$((i + 1))
		echo "compare: [$i] $name: raftbus" >&2
		r=$(run_one raftbus "$i-raftbus" "$args${only_rb:+ $only_rb}")
		echo "compare: [$i] $name: $ref" >&2
		e=$(run_one "$ref" "$i-$ref" "$args")
		printf '%s\traftbus\t%s\n%s\tref\t%s\n' "$name" "$r" "$name" "$e" >>"$tagged"
		for x in "$r" "$e"; do
			case $x in "{"*) echo "$x" >>"$res" ;; esac
		done
	done < <(rows | grep -E -- "^[^|]*(${only:-.})[^|]*[|]")
	echo
	echo "Arguments (identical for both tools unless marked raftbus only; -o json and --endpoints added):"
	rows | grep -E -- "^[^|]*(${only:-.})[^|]*[|]" | awk -F'|' '{printf "- %s: `%s` (vs %s)%s\n", $1, $2, $3, ($4 != "" ? "; raftbus only: `" $4 "`" : "")}'
	echo
	table "$tagged" | tee "$out/table.md"
	echo
	echo "results: $res, table: $out/table.md, logs: $out/logs" >&2
}

sweep() {
	local csv=$out/sweep.csv kind c conns total r
	echo "system,clients,conns,throughput,p50_ms,p99_ms,busy_cores_before" >"$csv"
	for kind in raftbus etcd; do
		for c in 1 16 64 256; do
			conns=$((c < 16 ? c : 16))
			if [ $quick = 1 ]; then total=$((c * 20 + 300)); else total=$((c * 400 + 3000)); fi
			echo "compare: sweep $kind $c clients" >&2
			r=$(run_one "$kind" "sweep-$kind-$c" "--conns $conns --clients $c put --total $total --val-size $VAL --key-space-size 100000")
			case $r in
			"{"*) python3 -c 'import json,sys; d=json.loads(sys.argv[1]); l=d["latency_ms"]; print(",".join(str(x) for x in (d["system"], d["clients"], d["conns"], d["throughput"], l["p50"], l["p99"], d["busy_cores_before"])))' "$r" >>"$csv" ;;
			*) echo "compare: sweep $kind $c: $r" >&2 ;;
			esac
		done
	done
	cat "$csv"
	if command -v gnuplot >/dev/null; then
		bench/plot.sh "$csv" "$out/sweep.png"
		echo "plot: $out/sweep.png" >&2
	fi
}

build
if [ $sweep = 1 ]; then sweep; else compare; fi
