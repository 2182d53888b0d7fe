#!/usr/bin/env python3
"""free-ports.py N: prints N distinct free loopback TCP ports, space-separated.

They are drawn below the kernel's ephemeral range (32768 and up by
default), so an outgoing connection cannot take one between this check and
the bind of the server it is for; each is checked by binding it on
127.0.0.1 (all held until the N are chosen, then released). Used by
scripts/cluster-demo.sh and bench/cluster.sh."""
import random
import socket
import sys

PORT_LO, PORT_HI = 20000, 32000
TRIES_MAX = 10000


def main():
    n = int(sys.argv[1])
    got, held = [], []
    for _ in range(TRIES_MAX):
        if len(got) == n:
            break
        p = random.randrange(PORT_LO, PORT_HI)
        if p in got:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            s.close()
            continue
        held.append(s)
        got.append(p)
    if len(got) < n:
        sys.exit("free-ports.py: only %d free ports found" % len(got))
    print(" ".join(map(str, got)))


if __name__ == "__main__":
    main()
