#!/usr/bin/env bash
# dev.sh - the two entry points of README.md.
#
#   ./dev.sh demo   install what is missing, build, run the demo
#   ./dev.sh test   install what is missing, build, run the whole test suite
#
# Options after the command:
#   --asan          build and test with AddressSanitizer + UBSan (build-asan/)
#   --long          also register and run the long soaks (simulator sweeps)
#
# Without root, missing Debian packages are not installed: the exact
# apt-get line is printed and the script stops.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ $# -gt 0 ] && shift
builddir=build
meson_opts=(-Dlong_tests=false)
for arg in "$@"; do
	case "$arg" in
	--asan) builddir=build-asan
		meson_opts+=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
	--long) meson_opts+=(-Dlong_tests=true) ;;
	-h|--help) usage; exit 0 ;;
	*) echo "dev.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
	esac
done

case "$cmd" in
demo)
	scripts/setup.sh "$builddir" "${meson_opts[@]}"
	exec scripts/demo.sh "$builddir" ;;
test)
	scripts/setup.sh --with-etcd "$builddir" "${meson_opts[@]}"
	exec scripts/test.sh "$builddir" ;;
-h|--help|help) usage ;;
*) echo "dev.sh: expected 'demo' or 'test'" >&2; usage >&2; exit 2 ;;
esac
