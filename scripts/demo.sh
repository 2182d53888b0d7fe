#!/usr/bin/env bash
# demo.sh BUILDDIR - the demo of README command (1): a local 3-member
# raftbus cluster driven with raftbusctl (scripts/cluster-demo.sh), after a
# short tour of the replicated state machine on its own (store demo).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${1:?usage: demo.sh BUILDDIR}
echo "=== the state machine alone: what every member applies (store/)"
"$builddir/broker/raftbus-store-demo"
echo
echo "=== a 3-member cluster"
exec scripts/cluster-demo.sh "$builddir"
