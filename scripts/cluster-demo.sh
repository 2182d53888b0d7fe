#!/usr/bin/env bash
# cluster-demo.sh BUILDDIR - the demo of README command (1): starts a local
# 3-member raftbus cluster on free loopback ports in a temp dir, shows
# put/get/txn/lease through raftbusctl against different members, kills the
# leader with SIGKILL and shows that acknowledged writes survive and a new
# leader takes over. Every member is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${1:?usage: cluster-demo.sh BUILDDIR}
raftbus=$builddir/broker/raftbus
ctl=$builddir/client/raftbusctl

dir=$(mktemp -d /tmp/raftbus-demo.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

# Six distinct free loopback ports (see scripts/free-ports.py).
read -r -a ports < <(python3 scripts/free-ports.py 6)
cluster=""
for i in 0 1 2; do
	cluster+="${cluster:+,}m$i=tcp://127.0.0.1:${ports[$((3 + i))]}"
done
endpoints=""
for i in 0 1 2; do
	endpoints+="${endpoints:+,}tcp://127.0.0.1:${ports[$i]}"
	"$raftbus" --name "m$i" --data-dir "$dir/m$i" \
		--listen-client-urls "tcp://127.0.0.1:${ports[$i]}" \
		--listen-peer-urls "tcp://127.0.0.1:${ports[$((3 + i))]}" \
		--initial-cluster "$cluster" --log-level warn \
		>"$dir/m$i.log" 2>&1 &
	pids+=($!)
done
ep() { echo "tcp://127.0.0.1:${ports[$1]}"; }
run() { echo "\$ raftbusctl $*"; "$ctl" --dial-timeout 3s --command-timeout 10s "$@"; }

echo "== a 3-member cluster in $dir (client ports ${ports[*]:0:3})"
for _ in $(seq 50); do
	"$ctl" --endpoints "$endpoints" endpoint health --cluster >/dev/null 2>&1 && break
	sleep 0.2
done
run --endpoints "$endpoints" endpoint health --cluster
run --endpoints "$endpoints" member list
run --endpoints "$(ep 0)" put /config/app/color blue
run --endpoints "$(ep 1)" put /config/app/size 10
run --endpoints "$(ep 2)" get /config/app/ --prefix
run --endpoints "$(ep 1)" get /config/app/color --rev 2 -w json
printf 'value("/config/app/color") = "blue"\n\nput /config/app/color red\n\nput /config/app/color black\n\n' >"$dir/txn"
echo "\$ raftbusctl txn < compare-and-swap"
"$ctl" --endpoints "$(ep 0)" txn <"$dir/txn"
lease=$("$ctl" --endpoints "$endpoints" lease grant 60 | awk '{print $2}')
echo "lease $lease granted with TTL(60s)"
run --endpoints "$endpoints" put /services/web/1 10.0.0.1:80 --lease "$lease"
run --endpoints "$endpoints" lease timetolive "$lease" --keys
run --endpoints "$endpoints" lease revoke "$lease"
run --endpoints "$endpoints" get /services/ --prefix --count-only

echo "== pub/sub: a topic is a prefix; messages are ordered by revision"
run --endpoints "$endpoints" pub /orders/ 'order 1: 2 apples'
run --endpoints "$endpoints" pub /orders/ 'order 2: 1 pear' --header region=eu
run --endpoints "$endpoints" pub /orders/ 'order 2: 1 pear' --id order-2
run --endpoints "$endpoints" pub /orders/ 'order 2: 1 pear (retry)' --id order-2
run --endpoints "$endpoints" sub /orders/ --from earliest --group billing --count 3
run --endpoints "$endpoints" group describe billing
echo "== a work queue: push, claim with a visibility timeout, ack"
run --endpoints "$endpoints" queue push jobs 'resize 42.png'
run --endpoints "$endpoints" queue push jobs 'resize 43.png'
popped=$("$ctl" --endpoints "$endpoints" queue pop jobs --consumer w1 --visibility 30s --wait 5s)
echo "\$ raftbusctl queue pop jobs --consumer w1 --visibility 30s --wait 5s"
echo "$popped"
receipt=$(echo "$popped" | sed -n 's/.*receipt=\([^ ]*\).*/\1/p' | head -1)
run --endpoints "$endpoints" queue ack jobs "$receipt"
run --endpoints "$endpoints" queue stats jobs

echo "== a watcher replays /config/ from revision 1, then follows it live"
echo "\$ raftbusctl watch /config/ --prefix --rev 1 &"
"$ctl" --endpoints "$endpoints" watch /config/ --prefix --rev 1 >"$dir/watch.out" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")

leader_id=$("$ctl" --endpoints "$endpoints" endpoint status -w json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["leader"])')
for i in 0 1 2; do
	id=$("$ctl" --endpoints "$(ep "$i")" endpoint status -w json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
	[ "$id" = "$leader_id" ] && leader=$i
done
echo "== kill -9 the leader m$leader (pid ${pids[$leader]})"
{ kill -9 "${pids[$leader]}"; wait "${pids[$leader]}"; } 2>/dev/null || true
others=""
for i in 0 1 2; do
	[ "$i" = "$leader" ] || others+="${others:+,}$(ep "$i")"
done
run --endpoints "$others" put /config/app/after-failover yes
run --endpoints "$others" get /config/app/ --prefix
for _ in $(seq 50); do
	grep -q after-failover "$dir/watch.out" && break
	sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
echo "== what the watcher printed (history, then live across the leader's death)"
cat "$dir/watch.out"
echo "== done; stopping the members"
