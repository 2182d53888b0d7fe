#!/bin/sh
# install_test.sh BUILDDIR SERVER_BIN SANITIZE - `meson install` into a temp
# destdir, build a small program against the installed libraftbus through
# its pkg-config file alone, and run it against a real single member: the
# library, its header and raftbus.pc work for a user outside this tree.
# SANITIZE is meson's b_sanitize ("none" or e.g. "address,undefined"): a
# sanitized library needs a program built with the same runtime.
set -eu
builddir=$1
server=$2
sanitize=${3:-none}
tmp=$(mktemp -d /tmp/rb-install.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

meson install -C "$builddir" --no-rebuild --destdir "$tmp/root" >/dev/null
pc=$(dirname "$(find "$tmp/root" -name raftbus.pc | head -n 1)")
[ -d "$pc" ] || { echo "no raftbus.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$tmp/root"

cat >"$tmp/user.c" <<'C'
#include <raftbus.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *eps[] = { argv[1] };
	struct rb_config cfg = { eps, 1, 3000, 5000 };
	rb_client *c;
	if (argc != 2 || rb_client_open(&cfg, &c) != 0)
		return 1;
	struct rb_put put = { .key = (const uint8_t *)"k", .key_len = 1,
		.value = (const uint8_t *)"v", .value_len = 1 };
	struct rb_resp r = { 0 };
	int rc = rb_put(c, &put, &r);
	printf("put: %s, revision %lld\n", rc ? rb_strerror(rc) : "OK",
		(long long)r.header.revision);
	rb_resp_free(&r);
	rb_client_close(c);
	return rc ? 1 : 0;
}
C
san=
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
cc -std=c11 $san -o "$tmp/user" "$tmp/user.c" $(pkg-config --cflags --libs raftbus)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
peer=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" --data-dir "$tmp/m" --listen-client-urls "tcp://127.0.0.1:$port" \
	--listen-peer-urls "tcp://127.0.0.1:$peer" --log-level warn &
pid=$!
libdir=$(dirname "$pc")    # .../lib/<triplet>/pkgconfig -> .../lib/<triplet>
LD_LIBRARY_PATH="$libdir" "$tmp/user" "tcp://127.0.0.1:$port"
