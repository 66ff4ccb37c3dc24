#!/usr/bin/env python3
# Idle keep-alive connections for the HTTP and HTTPS benches: opens N connections (TLS with --tls), each makes
# one GET / and reads the whole answer, then all wait; prints "ready N" and holds them until stdin closes.
# Usage: idle_client.py --port P --host H --count N [--hold S] [--within S] [--tls [--sni NAME] [--cafile CA]]
import argparse
import socket
import ssl
import sys
import time


def read_answer(s, request_no):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError(f"connection {request_no}: closed before the head ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"connection {request_no}: {head.splitlines()[0]!r}")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise OSError(f"connection {request_no}: no Content-Length")
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError(f"connection {request_no}: closed in the body")
        body += chunk


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--hold", type=float, default=120.0)
    p.add_argument("--within", type=float, default=120.0, help="seconds to open them all, or fail")
    p.add_argument("--tls", action="store_true", help="HTTPS: a TLS handshake first")
    p.add_argument("--sni", default="localhost", help="the server name sent (and checked with --cafile)")
    p.add_argument("--cafile", help="check the server's chain against this CA; without it, no check")
    a = p.parse_args()
    context = None
    if a.tls:
        # One context for all: its session cache and settings are shared, as a real client's would be.
        context = ssl.create_default_context(cafile=a.cafile)
        if not a.cafile:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
    request = f"GET / HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()
    held = []
    deadline = time.monotonic() + a.within
    for i in range(a.count):
        if time.monotonic() > deadline:
            print(f"idle_client: only {i} connections in {a.within:g} s", file=sys.stderr)
            return 1
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        if context is not None:
            s = context.wrap_socket(s, server_hostname=a.sni)
        s.sendall(request)
        read_answer(s, i)
        held.append(s)
    print(f"ready {len(held)}", flush=True)
    # Held until the bench closes stdin (it has read the proxy's memory by then) or --hold passes.
    import select
    select.select([sys.stdin], [], [], a.hold)
    for s in held:
        s.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        print(f"idle_client: {e}", file=sys.stderr)
        sys.exit(1)
