#!/usr/bin/env bash
# test.sh BUILDDIR - runs every registered test and prints one closing line
# "N passed, N failed" that counts every test case: each Criterion case
# separately (from its "Synthesis" line), every other test program as one.
# Exits non-zero if any test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
builddir=${1:?usage: test.sh BUILDDIR [MESON TEST ARGS...]}
shift

# Sanitizer builds: any UB report fails the test that caused it.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

meson test -C "$builddir" --print-errorlogs --no-rebuild "$@"
rc=$?

python3 - "$builddir/meson-logs/testlog.json" "$rc" <<'PY'
import json, re, sys
log, meson_rc = sys.argv[1], int(sys.argv[2])
synth = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+)")
passed = failed = 0
try:
    lines = open(log).read().splitlines()
except OSError:
    lines = []
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
if not lines:
    failed += 1
if meson_rc != 0 and failed == 0:
    failed = 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
