#!/usr/bin/env bash
# plot.sh CSV OUT.png - draws compare.sh --sweep's CSV (system, clients,
# conns, throughput, p50_ms, p99_ms[, ...]) as two panels, throughput and p99
# against client count, raftbus vs etcd, with gnuplot (bench/plot.gp).
set -euo pipefail
csv=${1:?usage: plot.sh CSV OUT.png}
png=${2:?usage: plot.sh CSV OUT.png}
[ -r "$csv" ] || { echo "plot.sh: cannot read $csv" >&2; exit 1; }
command -v gnuplot >/dev/null || {
	echo "plot.sh: gnuplot missing; run bench/setup-bench.sh" >&2
	exit 1
}
gnuplot -e "csv='$csv'; png='$png'" "$(dirname "$0")/plot.gp"
