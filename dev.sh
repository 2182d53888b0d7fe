#!/usr/bin/env bash
# dev.sh - the two entry points of README.md.
#
#   ./dev.sh demo   install what is missing, build, run the demo
#   ./dev.sh test   install what is missing, build, run the whole test suite,
#                   once in a plain build (build/) and once under
#                   AddressSanitizer + UBSan (build-asan/)
#
# Options after the command:
#   --no-asan       test: only the plain build
#   --long          test: also register and run the long soaks
#
# Without root, missing Debian packages are not installed: the exact
# apt-get line is printed and the script stops.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ $# -gt 0 ] && shift
asan=1
meson_opts=(-Dlong_tests=false)
for arg in "$@"; do
	case "$arg" in
	--no-asan) asan=0 ;;
	--long) meson_opts+=(-Dlong_tests=true) ;;
	-h|--help) usage; exit 0 ;;
	*) echo "dev.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
	esac
done

case "$cmd" in
demo)
	scripts/setup.sh build "${meson_opts[@]}"
	exec scripts/demo.sh build ;;
test)
	scripts/setup.sh --with-etcd build "${meson_opts[@]}"
	dirs=(build)
	if [ $asan -eq 1 ]; then
		scripts/setup.sh build-asan "${meson_opts[@]}" \
			-Db_sanitize=address,undefined -Db_lundef=false
		dirs+=(build-asan)
	fi
	exec scripts/test.sh "${dirs[@]}" ;;
-h|--help|help) usage ;;
*) echo "dev.sh: expected 'demo' or 'test'" >&2; usage >&2; exit 2 ;;
esac
