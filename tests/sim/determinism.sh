#!/bin/sh
# determinism.sh - runs the same raftsim seeds in two separate processes and
# passes only if both print the same summary line, which carries a hash of
# every traced event: a seed must replay bit for bit (same events, same
# virtual times, same payloads), across processes and address layouts.
# Usage: determinism.sh RAFTSIM [raftsim args...]
set -u
a=$("$@" 2>&1) || { printf '%s\n' "$a" | tail -n 60; echo "determinism: first run failed" >&2; exit 1; }
b=$("$@" 2>&1) || { printf '%s\n' "$b" | tail -n 60; echo "determinism: second run failed" >&2; exit 1; }
ha=$(printf '%s\n' "$a" | grep 'trace_hash=')
hb=$(printf '%s\n' "$b" | grep 'trace_hash=')
echo "run 1: $ha"
echo "run 2: $hb"
if [ -z "$ha" ] || [ "$ha" != "$hb" ]; then
	echo "determinism: FAIL: the two runs differ" >&2
	exit 1
fi
echo "determinism: ok"
