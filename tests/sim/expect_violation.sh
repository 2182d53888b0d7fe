#!/bin/sh
# expect_violation.sh - passes only if a raftsim run FAILS with a SAFETY
# violation. Used by the injected-bug tests: a raftsim built against a core
# with a known bug must catch it, and must catch it as a broken invariant
# (not a crash, a timeout of the liveness check or a usage error).
# Usage: expect_violation.sh RAFTSIM [raftsim args...]
set -u
if [ $# -lt 1 ]; then
	echo "usage: $0 RAFTSIM [args...]" >&2
	exit 2
fi
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 80
if [ "$rc" -eq 0 ]; then
	echo "expect_violation: FAIL: raftsim exited 0, the injected bug was not caught" >&2
	exit 1
fi
if [ "$rc" -ne 1 ]; then
	echo "expect_violation: FAIL: raftsim exited $rc (crash or usage error), not a checker verdict" >&2
	exit 1
fi
if ! printf '%s\n' "$out" | grep -q 'SAFETY VIOLATION \['; then
	echo "expect_violation: FAIL: raftsim failed without naming a safety violation" >&2
	exit 1
fi
echo "expect_violation: ok: the injected bug was caught as a safety violation"
exit 0
