#!/usr/bin/env python3
# Writes the seed corpora under tests/fuzz/corpus/<target>/ from the byte arrays of the unit tests
# (string literals, adjacent ones joined), plus generated TLS ClientHellos. Run by hand when the unit
# tests gain cases worth seeding: python3 tests/fuzz/seeds_from_tests.py
import hashlib
import os
import re
import ssl
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "tests", "fuzz", "corpus")
per_target = 30

literal = re.compile(r'R"\((.*?)\)"|"((?:[^"\\\n]|\\.)*)"s?', re.S)
gap = re.compile(r"\s*")


def unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = body[i + 1]
        i += 2
        if n == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i:])
            out.append(int(m.group(0), 16) & 0xFF)
            i += len(m.group(0))
        elif n in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i - 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += len(m.group(0)) - 1
        else:
            out += {"r": b"\r", "n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\", "'": b"'"}.get(n, n.encode())
    return bytes(out)


def literals(path):
    """Each run of adjacent string literals in a C++ file, joined, as bytes."""
    text = open(os.path.join(root, path), encoding="utf-8").read()
    pos = 0
    found = []
    while True:
        m = literal.search(text, pos)
        if not m:
            return found
        value = b""
        while m:
            value += m.group(1).encode() if m.group(1) is not None else unescape(m.group(2))
            pos = m.end()
            nxt = literal.match(text, gap.match(text, pos).end())
            m = nxt
        found.append(value)


def write(target, seeds):
    folder = os.path.join(corpus, target)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):  # regress-* files are findings kept as regression inputs
        if old.startswith("seed-"):
            os.remove(os.path.join(folder, old))
    unique = sorted(set(seeds), key=lambda s: (len(s), s))
    if len(unique) > per_target:  # evenly spread over the sizes, the smallest and the largest kept
        unique = [unique[i * (len(unique) - 1) // (per_target - 1)] for i in range(per_target)]
    for s in unique:
        name = "seed-" + hashlib.sha1(s).hexdigest()[:12]
        with open(os.path.join(folder, name), "wb") as f:
            f.write(s)
    print(f"{target}: {len(unique)} seeds")


methods = (b"GET ", b"POST ", b"PUT ", b"CONNECT ", b"OPTIONS ", b"HEAD ", b"DELETE ")
http_tests = ["tests/unit/http/head_test.cpp", "tests/unit/http/rewrite_test.cpp"]
requests = [s for p in http_tests for s in literals(p) if s.lstrip(b"\r\n").startswith(methods) and b"\r\n" in s]
responses = [s for p in http_tests + ["tests/unit/feed/route_feed_test.cpp"] for s in literals(p)
             if s.startswith(b"HTTP/1.") and b"\r\n" in s]
write("request_head", requests)
# The response target's first byte: the method (low 3 bits; 0 GET, 1 HEAD, 2 CONNECT) and two flags.
write("response_head", [bytes([i % 3 | (0x08 if i % 2 else 0)]) + s for i, s in enumerate(responses)])

chunked = [s for s in literals("tests/unit/http/chunked_test.cpp")
           if re.match(rb"^[0-9a-fA-F]+[;\r]", s) and b"\r\n" in s]
# The chunked target's first byte: how many cuts, then two bytes per cut.
write("chunked", [b"\x00" + s for s in chunked] + [b"\x02\x00\x03\x00\x07" + s for s in chunked[:8]])

hosts = [s for s in literals("tests/unit/route/table_test.cpp")
         if 0 < len(s) < 80 and b" " not in s and b"\n" not in s and (b"." in s or b":" in s)]
write("route_resolve", [bytes([i % 2]) + s for i, s in enumerate(hosts)])

configs = [s for s in literals("tests/unit/config/config_file_test.cpp") if s.lstrip().startswith((b"{", b"["))]
write("config_file", [bytes([i % 2]) + s for i, s in enumerate(configs)])

write("active_routes", [s for s in literals("tests/unit/config/active_routes_test.cpp")
                        if s.lstrip().startswith((b"{", b"["))])

feed = literals("tests/unit/feed/route_feed_test.cpp")
hub = [s for s in feed if s.startswith(b"HTTP/1.") or s.lstrip().startswith((b"[", b"{"))]
write("hub_answer", [b"\x00" + s for s in hub])


def client_hello(sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


hellos = [client_hello(n) for n in ("web.localhost", "API.test", "localhost", "example.com", None)]
write("tls_sniff", hellos + requests[:5])
sys.exit(0)
