#!/usr/bin/env bash
# cluster.sh - starts and stops the local clusters the side-by-side
# benchmark runs against: raftbus, etcd or NATS JetStream, N members on
# free loopback ports, data and logs in DIR.
#
#   cluster.sh start raftbus|etcd|nats N DIR   start, wait until it answers
#   cluster.sh stop DIR                        stop the members by PID
#   cluster.sh rss DIR                         peak RSS of each member, MiB
#
# start writes DIR/endpoints (comma-separated client URLs), DIR/pids (one
# PID a line) and DIR/kind. $RAFTBUS_LOG_LEVEL sets the members' --log-level
# (default warn). Binaries: $RAFTBUS_BIN (default
# build/broker/raftbus), $RAFTBUSCTL (build/client/raftbusctl), $NATS_LOAD
# (build/bench-tools/nats-load, used to wait for JetStream), etcd,
# etcdctl and nats-server from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

# START_TRIES: a port found free can be taken before the member binds it;
# then the whole cluster is started again on new ports.
START_TRIES=3
READY_TIMEOUT_S=30

die() { echo "cluster.sh: $*" >&2; exit 1; }

# free_ports N: N distinct free loopback ports (scripts/free-ports.py).
free_ports() {
	python3 scripts/free-ports.py "$1"
}

start_raftbus() {
	local n=$1 dir=$2 bin=${RAFTBUS_BIN:-build/broker/raftbus}
	[ -x "$bin" ] || die "no raftbus binary at $bin (set RAFTBUS_BIN)"
	local -a p
	read -r -a p < <(free_ports $((2 * n)))
	local cluster="" eps="" i
	for ((i = 0; i < n; i++)); do
		cluster+="${cluster:+,}m$i=tcp://127.0.0.1:${p[n + i]}"
		eps+="${eps:+,}tcp://127.0.0.1:${p[i]}"
	done
	echo "$eps" >"$dir/endpoints"
	for ((i = 0; i < n; i++)); do
		"$bin" --name "m$i" --data-dir "$dir/m$i" \
			--listen-client-urls "tcp://127.0.0.1:${p[i]}" \
			--listen-peer-urls "tcp://127.0.0.1:${p[n + i]}" \
			--initial-cluster "$cluster" --log-level "${RAFTBUS_LOG_LEVEL:-warn}" \
			>"$dir/m$i.log" 2>&1 &
		echo $! >>"$dir/pids"
	done
}

start_etcd() {
	local n=$1 dir=$2
	local -a p
	read -r -a p < <(free_ports $((2 * n)))
	local cluster="" eps="" i
	for ((i = 0; i < n; i++)); do
		cluster+="${cluster:+,}e$i=http://127.0.0.1:${p[n + i]}"
		eps+="${eps:+,}http://127.0.0.1:${p[i]}"
	done
	echo "$eps" >"$dir/endpoints"
	for ((i = 0; i < n; i++)); do
		etcd --name "e$i" --data-dir "$dir/e$i" \
			--listen-client-urls "http://127.0.0.1:${p[i]}" \
			--advertise-client-urls "http://127.0.0.1:${p[i]}" \
			--listen-peer-urls "http://127.0.0.1:${p[n + i]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${p[n + i]}" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "bench-$$" \
			--logger zap --log-level warn \
			>"$dir/e$i.log" 2>&1 &
		echo $! >>"$dir/pids"
	done
}

start_nats() {
	local n=$1 dir=$2
	local -a p
	read -r -a p < <(free_ports $((2 * n)))
	local routes="" eps="" i
	for ((i = 0; i < n; i++)); do
		routes+="${routes:+,}nats://127.0.0.1:${p[n + i]}"
		eps+="${eps:+,}nats://127.0.0.1:${p[i]}"
	done
	echo "$eps" >"$dir/endpoints"
	for ((i = 0; i < n; i++)); do
		# JetStream's default fsync policy (sync_interval 2 min) is kept:
		# it is what ANCHORS.md measured and what NATS ships.
		nats-server --server_name "n$i" -a 127.0.0.1 -p "${p[i]}" \
			--cluster_name bench --cluster "nats://127.0.0.1:${p[n + i]}" \
			--routes "$routes" -js -sd "$dir/n$i" \
			>"$dir/n$i.log" 2>&1 &
		echo $! >>"$dir/pids"
	done
}

# members_alive DIR: every PID in DIR/pids is still running.
members_alive() {
	local pid
	while read -r pid; do
		kill -0 "$pid" 2>/dev/null || return 1
	done <"$1/pids"
}

answers() {
	local kind=$1 eps
	eps=$(cat "$2/endpoints")
	case $kind in
	raftbus)
		"${RAFTBUSCTL:-build/client/raftbusctl}" --endpoints "$eps" \
			--dial-timeout 1s --command-timeout 2s \
			endpoint health --cluster >/dev/null 2>&1 ;;
	etcd)
		ETCDCTL_API=3 etcdctl --endpoints "$eps" --dial-timeout 1s \
			--command-timeout 2s endpoint health --cluster >/dev/null 2>&1 ;;
	nats)
		"${NATS_LOAD:-build/bench-tools/nats-load}" --endpoints "$eps" \
			wait --timeout-s 2 >/dev/null 2>&1 ;;
	esac
}

cmd_stop() {
	local dir=$1 pid
	[ -f "$dir/pids" ] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
	done <"$dir/pids"
	# Give them 10 s to exit cleanly, then SIGKILL the same PIDs.
	for _ in $(seq 100); do
		members_alive_any "$dir" || break
		sleep 0.1
	done
	while read -r pid; do
		kill -9 "$pid" 2>/dev/null || true
	done <"$dir/pids"
	rm -f "$dir/pids"
}

members_alive_any() {
	local pid
	while read -r pid; do
		kill -0 "$pid" 2>/dev/null && return 0
	done <"$1/pids"
	return 1
}

cmd_start() {
	local kind=$1 n=$2 dir=$3 try t
	case $kind in raftbus | etcd | nats) ;; *) die "unknown kind $kind" ;; esac
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "bad member count $n"
	mkdir -p "$dir"
	[ ! -f "$dir/pids" ] || die "$dir/pids exists: stop that cluster first"
	echo "$kind" >"$dir/kind"
	for ((try = 1; try <= START_TRIES; try++)); do
		: >"$dir/pids"
		"start_$kind" "$n" "$dir"
		for ((t = 0; t < READY_TIMEOUT_S * 5; t++)); do
			members_alive "$dir" || break
			if answers "$kind" "$dir"; then
				return 0
			fi
			sleep 0.2
		done
		echo "cluster.sh: $kind cluster not ready (try $try); logs in $dir" >&2
		cmd_stop "$dir"
		local d
		for d in "$dir"/*/; do rm -rf "$d"; done
	done
	die "could not start a $kind cluster"
}

cmd_rss() {
	local dir=$1 pid i=0 hwm
	[ -f "$dir/pids" ] || die "no $dir/pids"
	while read -r pid; do
		hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		if [ -n "$hwm" ]; then
			awk -v i="$i" -v k="$hwm" 'BEGIN {printf "member%d %.1f\n", i, k / 1024}'
		else
			echo "member$i gone"
		fi
		i=$((i + 1))
	done <"$dir/pids"
}

case ${1:-} in
start) [ $# -eq 4 ] || die "usage: start raftbus|etcd|nats N DIR"; cmd_start "$2" "$3" "$4" ;;
stop) [ $# -eq 2 ] || die "usage: stop DIR"; cmd_stop "$2" ;;
rss) [ $# -eq 2 ] || die "usage: rss DIR"; cmd_rss "$2" ;;
*) die "usage: cluster.sh start raftbus|etcd|nats N DIR | stop DIR | rss DIR" ;;
esac
