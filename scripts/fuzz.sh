#!/usr/bin/env bash
# fuzz.sh [SECONDS] - coverage-guided fuzzing (libFuzzer, clang, ASan +
# UBSan) of the decoders that take bytes from the network or a peer's log:
# client requests (the server's side), replies (the client's side), peer
# messages and store ops. Builds build-fuzz/, writes a seed corpus, runs
# each target for SECONDS (default 60) and exits non-zero on the first
# crash, leak, sanitizer report or failed round trip; the input that did it
# is left in build-fuzz/crashes/. The corpus grows in build-fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: fuzz.sh [SECONDS]" >&2; exit 2; }
if ! out=$(CC=clang scripts/setup.sh --with-clang build-fuzz -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false 2>&1); then
	printf '%s\n' "$out" | tail -30 >&2
	echo "fuzz.sh: the build failed" >&2
	exit 1
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p build-fuzz/crashes
build-fuzz/tests/fuzz/fuzz_seeds build-fuzz/corpus
for t in request reply peer store_op; do
	echo "== fuzz_$t for ${secs} s"
	log=build-fuzz/fuzz_$t.log
	rc=0
	build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix=build-fuzz/crashes/$t- -max_len=65536 \
		build-fuzz/corpus/$t >"$log" 2>&1 || rc=$?
	grep -E "^stat::(number_of_executed_units|new_units_added)|^cov:|ERROR|SUMMARY|Test unit written" "$log" | tail -6 || true
	if [ "$rc" -ne 0 ]; then
		echo "fuzz.sh: fuzz_$t failed (exit $rc); its log: $log; the input: build-fuzz/crashes/$t-*" >&2
		exit 1
	fi
done
echo "fuzz.sh: no failure in ${secs} s per target"
