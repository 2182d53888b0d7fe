#!/bin/sh
# smoke_test.sh BENCH RAFTBUS - the bench-smoke test: starts a 1-member
# raftbus on free loopback ports in a temp dir, runs every workload of
# raftbus-bench with a small --total and -o json, and asserts that the JSON
# line parses, has the documented shape, counts exactly --total requests
# (watch, pubsub, queue: exactly the deliveries or acks expected) and no
# errors; checks the -o csv series adds up to --total; checks that
# bad command lines exit 2 with a message. The member is stopped by PID and
# the temp dir removed on every exit path.
set -eu
bench=${1:?usage: smoke_test.sh BENCH RAFTBUS}
raftbus=${2:?usage: smoke_test.sh BENCH RAFTBUS}
total=200

dir=$(mktemp -d /tmp/rbb-smoke.XXXXXX)
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Two loopback ports the kernel picked, then released.
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
cport=${ports% *}
pport=${ports#* }
ep="tcp://127.0.0.1:$cport"
"$raftbus" --name m0 --data-dir "$dir/m0" \
	--listen-client-urls "$ep" \
	--listen-peer-urls "tcp://127.0.0.1:$pport" \
	--heartbeat-interval 50 --election-timeout 500 --log-level warn \
	>"$dir/m0.log" 2>&1 &
pid=$!

# check_json NAME CLIENTS CONNS TOTAL FILE: the one line of FILE is the
# record of workload NAME with that many clients (writers, for the flow
# workloads), connections and delivered total, no error, sane latencies.
check_json() {
	python3 - "$@" <<'EOF' || fail "$1: bad JSON record: $(cat "$5")"
import json, sys
name, clients, conns, total, path = sys.argv[1:6]
lines = open(path).read().splitlines()
assert len(lines) == 1, "expected one line, got %d" % len(lines)
d = json.loads(lines[0])
keys = ["system", "workload", "clients", "conns", "total", "errors",
        "duration_s", "throughput", "latency_ms"]
assert list(d) == keys, list(d)
assert list(d["latency_ms"]) == ["min", "p50", "p90", "p99", "p999", "max"]
assert d["system"] == "raftbus" and d["workload"] == name, d
assert d["clients"] == int(clients) and d["conns"] == int(conns), d
assert d["total"] == int(total), "total %s != %s" % (d["total"], total)
assert d["errors"] == 0, "errors: %s" % d["errors"]
assert d["duration_s"] > 0 and d["throughput"] > 0, d
l = d["latency_ms"]
assert 0 < l["min"] <= l["p50"] <= l["p90"] <= l["p99"] <= l["p999"] <= l["max"], l
EOF
}

# run_json NAME CLIENTS CONNS [workload args...]
run_json() {
	name=$1 clients=$2 conns=$3
	shift 3
	"$bench" --endpoints "$ep" --clients "$clients" --conns "$conns" \
		-o json "$name" --total "$total" "$@" >"$dir/out" 2>"$dir/err" ||
		fail "$name exited $?: $(cat "$dir/err")"
	check_json "$name" "$clients" "$conns" "$total" "$dir/out"
	echo "ok: $name $(cat "$dir/out")"
}

run_json put 1 1 --val-size 256
run_json put 32 4 --key-space-size 1000 --sequential-keys
run_json range 16 2 00000001
run_json range 16 2 0 1 --consistency s
run_json txn-put 8 2 --txn-ops 4 --key-space-size 100
run_json lease-keepalive 8 2 --ttl 30

# The flow workloads: the report's total is what had to be delivered
# (watchers x puts, subscribers x messages, messages acked) and its
# clients the number of writers; no error means every reader got every
# write once, in order, and every pushed message was acked exactly once.
# run_flow NAME WRITERS EXPECTED [workload args...] (2 connections)
run_flow() {
	name=$1 writers=$2 expected=$3
	shift 3
	"$bench" --endpoints "$ep" --clients 2 --conns 2 -o json "$name" "$@" \
		>"$dir/out" 2>"$dir/err" ||
		fail "$name exited $?: $(cat "$dir/err")"
	check_json "$name" "$writers" 2 "$expected" "$dir/out"
	echo "ok: $name $(cat "$dir/out")"
}

# 70 watchers with a chain of polls each: more actors than the first
# allocation of the flow (64); then sharing chains of 10 (35 watchers a
# connection: 3 full chains and one of 5) and of 1024 (one a connection)
run_flow watch 4 14000 --watchers 70 --put-total 200 --putters 4 --val-size 64 --per-poll 1
run_flow watch 4 14000 --watchers 70 --put-total 200 --putters 4 --val-size 64
run_flow watch 4 14000 --watchers 70 --put-total 200 --putters 4 --val-size 64 --per-poll 1024
run_flow pubsub 2 400 --publishers 2 --subscribers 2 --total 200 --size 32
run_flow pubsub 2 1400 --publishers 2 --subscribers 7 --total 200 --size 32 --per-poll 3
run_flow queue 2 200 --producers 2 --consumers 2 --total 200
run_flow queue 2 200 --producers 2 --consumers 3 --total 200 --batch 8

# -o csv: the per-second rows add up to --total.
"$bench" --endpoints "$ep" --clients 4 -o csv --csv-file "$dir/series.csv" \
	put --total "$total" >"$dir/out" 2>"$dir/err" ||
	fail "csv run exited $?: $(cat "$dir/err")"
python3 - "$dir/series.csv" "$total" <<'EOF' || fail "bad csv: $(cat "$dir/series.csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["second", "ops", "errors", "p50_ms", "p99_ms"], rows[0]
assert len(rows) >= 2
assert sum(int(r[1]) for r in rows[1:]) == int(sys.argv[2])
assert all(int(r[2]) == 0 for r in rows[1:])
EOF
grep -q "Latency distribution" "$dir/out" || fail "no text summary with --csv-file"
echo "ok: csv"

# Bad command lines: exit 2, a message naming the problem, the usage.
expect_usage_error() {
	want=$1
	shift
	set +e
	"$bench" --endpoints "$ep" "$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "'$*' exited $rc, not 2"
	grep -q -- "$want" "$dir/err" || fail "'$*': no '$want' in: $(cat "$dir/err")"
	grep -q "^usage: raftbus-bench" "$dir/err" || fail "'$*': no usage"
	[ ! -s "$dir/out" ] || fail "'$*' wrote to stdout"
	echo "ok: usage error: $*"
}
expect_usage_error "unknown flag '--bogus'" put --bogus
expect_usage_error "unknown workload 'nope'" nope
expect_usage_error "not a number" put --total 12x
expect_usage_error "between 1 and" --clients 0 put
expect_usage_error "may not exceed" --clients 2 --conns 3 put
expect_usage_error "KEY is required" range
expect_usage_error "l or s" range k --consistency x
expect_usage_error "needs a value" put --total
expect_usage_error "WORKLOAD is required" --clients 2
expect_usage_error "between 8 and" watch --val-size 4
expect_usage_error "between 1 and" watch --per-poll 0
expect_usage_error "between 16 and" queue --size 8
expect_usage_error "between 1 and 100" queue --batch 101
expect_usage_error "unknown flag '--watchers' for pubsub" pubsub --watchers 3
expect_usage_error "--rate is not supported" queue --rate 10
"$bench" --help >"$dir/out" || fail "--help exited $?"
for w in lease-keepalive watch pubsub queue; do
	grep -q "^  $w " "$dir/out" || fail "--help does not list $w"
done

kill "$pid"
wait "$pid" || fail "raftbus did not stop cleanly (status $?)"
pid=""
if grep -q -e Sanitizer -e "runtime error" "$dir/m0.log"; then
	fail "sanitizer report in the member's log: $(cat "$dir/m0.log")"
fi
echo "bench-smoke: all checks passed"
