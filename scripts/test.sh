#!/usr/bin/env bash
# test.sh BUILDDIR... - runs every registered test in each build directory
# and prints one closing line "N passed, N failed" that counts every test
# case over all of them: each Criterion case separately (from its
# "Synthesis" line), a should-fail test and every other test program as one.
# Before that line it prints again, for every failed test, the lines of its
# output that say what failed (a failed check, a sanitizer report) and its
# last TEST_FAIL_TAIL_LINES (default 40) lines, so that the end of a long
# CI log, often all that is kept, shows why. Exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: test.sh BUILDDIR..." >&2; exit 2; }

# Sanitizer builds: any UB report fails the test that caused it.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

logs=()
rcs=()
for builddir in "$@"; do
	echo "== tests in $builddir"
	meson test -C "$builddir" --print-errorlogs --no-rebuild
	rcs+=($?)
	logs+=("$builddir/meson-logs/testlog.json")
done

TEST_FAIL_TAIL_LINES=${TEST_FAIL_TAIL_LINES:-40} \
python3 - "${rcs[*]}" "${logs[@]}" <<'PY'
import json, os, re, sys
tail_n = int(os.environ["TEST_FAIL_TAIL_LINES"])
failures = []
meson_rcs = [int(x) for x in sys.argv[1].split()]
synth = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+)")
passed = failed = 0
for log, meson_rc in zip(sys.argv[2:], meson_rcs):
    try:
        lines = open(log).read().splitlines()
    except OSError:
        lines = []
    f0 = failed
    for line in lines:
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        m = synth.findall(out)
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if t.get("result") == "EXPECTEDFAIL":
            passed += 1       # a should-fail test as a whole is one case
        elif m:
            tested, passing, failing = map(int, m[-1])
            passed += passing
            failed += failing
            if not ok and failing == 0:   # crashed or timed out outside a case
                failed += 1
        elif ok:
            passed += 1
        else:
            failed += 1
        if not ok:
            failures.append((log, t.get("name"), t.get("result"), out))
    if not lines or (meson_rc != 0 and failed == f0):
        failed += 1       # no log, or meson failed without a failing test
cause = re.compile(r"CHECK FAILED|FAIL|[Aa]ssert|Sanitizer|runtime error|"
                   r"Segmentation|Aborted|timed out|[Tt]imeout")
for log, name, result, out in failures:
    lines = out.splitlines()
    print(f"==== failed: {name} ({result}, {log})")
    print("\n".join([l for l in lines if cause.search(l)][:20]))
    print(f"==== its last {min(tail_n, len(lines))} lines of output:")
    print("\n".join(lines[-tail_n:]))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
