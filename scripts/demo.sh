#!/usr/bin/env bash
# demo.sh BUILDDIR - the demo of README command (1). Until the raftbus server
# exists, it walks through the replicated state machine (store/).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${1:?usage: demo.sh BUILDDIR}
exec "$builddir/broker/raftbus-store-demo"
