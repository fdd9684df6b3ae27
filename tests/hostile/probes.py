#!/usr/bin/env python3
"""Hostile-client probes against a real `keyward serve` on loopback.

Each probe is bounded in count and time and talks only to 127.0.0.1. It asserts status
codes, that the server survives, and what it costs: peak RSS under concurrent gzip bombs,
/healthz latency while they inflate and while idle sockets pile up, and how long idle
connections live. Prints one line per probe and a closing `N passed, N failed` line.

Usage: probes.py BIN DATA_DIR PORT  (run.sh sets it up)
"""

import gzip
import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
import zlib

BIN, DATA, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
HOST = "127.0.0.1"
HEADER_TIMEOUT = 2  # seconds, passed to `serve --header-timeout`
results = []
figures = {}


def probe(name):
    def wrap(f):
        def run():
            t0 = time.monotonic()
            try:
                f()
                results.append((name, True, ""))
                print(f"ok    {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            except Exception as e:  # a failed probe is reported, the others still run
                results.append((name, False, repr(e)))
                print(f"FAIL  {name}: {e!r}", flush=True)
        PROBES.append(run)
        return f
    return wrap


PROBES = []


def request(method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def healthz_ms():
    t0 = time.monotonic()
    status, _ = request("GET", "/healthz", timeout=10)
    assert status == 200, status
    return (time.monotonic() - t0) * 1000


def rss_peak_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def rss_now_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def bomb(size):
    """A gzip member of `size` zero bytes, compressed as it is produced (~1 MB per GiB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [comp.compress(chunk) for _ in range(size >> 20)]
    out.append(comp.flush())
    return b"".join(out)


def server_pid():
    return int(open(os.path.join(DATA, "..", "serve.pid")).read())


TOKEN = open(os.path.join(DATA, "..", "operator.token")).read().strip()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@probe("deep nesting: 400, the server still answers")
def deep():
    for depth in (12_000, 1_000_000):
        for path, body in (
            ("/api/ingest", "[" * depth),
            ("/api/ingest", '{"Records":[' + '{"a":' * depth + "1" + "}" * depth + "]}"),
            ("/api/webhooks/kubernetes-audit", '{"kind":"EventList","items":[' + "[" * depth + "]}"),
        ):
            status, text = request("POST", path, body.encode(), AUTH)
            assert status == 400, (path, depth, status, text[:200])
            assert b"nested deeper than" in text, text[:200]
    # A JSON-lines body: the deep line is rejected, the good line after it kept.
    good = json.dumps({"eventVersion": "1.09", "eventID": "hostile-ok", "eventTime": "2026-11-10T10:00:00Z",
                       "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
                       "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/h"}})
    deep_line = good[:-1] + ', "requestParameters": ' + '{"a":' * 50_000 + "}"
    status, text = request("POST", "/api/ingest", (deep_line + "\n" + good + "\n").encode(), AUTH)
    assert status == 200, (status, text[:300])
    answer = json.loads(text)
    assert answer["accepted"] == 1 and answer["rejected"] == 1, answer
    assert healthz_ms() < 1000


@probe("four concurrent 1 GiB gzip bombs: 413, bounded memory, /healthz answers")
def bombs():
    honest = bomb(1 << 30)
    figures["bomb_compressed_bytes"] = len(honest)
    # The trailer's size field says 1,000 bytes: a reader that trusted it would be fooled.
    lying = honest[:-4] + (1000).to_bytes(4, "little")
    for name, payload in (("honest", honest), ("lying_trailer", lying)):
        four_bombs(name, payload)


def four_bombs(name, payload):
    pid = server_pid()
    before = rss_now_kb(pid)
    statuses, lat, done = [], [], threading.Event()

    def post(path):
        s, _ = request("POST", path, payload, {**AUTH, "Content-Encoding": "gzip"}, timeout=120)
        statuses.append(s)

    def poll():
        while not done.is_set():
            lat.append(healthz_ms())
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.monotonic()
    posts = [threading.Thread(target=post, args=(p,)) for p in
             ["/api/ingest", "/api/ingest", "/api/webhooks/kubernetes-audit", "/api/ingest"]]
    for t in posts:
        t.start()
    for t in posts:
        t.join(180)
    done.set()
    poller.join()
    peak = rss_peak_kb(pid)
    figures[f"{name}_bombs"] = {
        "seconds": round(time.monotonic() - t0, 2),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
        "healthz_ms_max": round(max(lat), 1),
        "healthz_samples": len(lat),
    }
    assert statuses == [413] * 4, statuses
    # Two bodies inflate at once (the ingest permits), each to at most the 64 MiB limit.
    # The allocator (mimalloc) unmaps a freed 64 MiB buffer after a short purge delay, so
    # the next pair may map theirs before the last pair's are gone: at most four buffers
    # above the base (seen: ~225 MB usually, 317 MB once). Unbounded it was 2.4 GB.
    bound = before + 4 * 64 * 1024 + 64 * 1024
    assert peak < bound, f"peak RSS {peak / 1024:.0f} MB (bound {bound / 1024:.0f} MB)"
    assert max(lat) < 100, f"/healthz took {max(lat):.0f} ms"


@probe("1,100 idle connections: /healthz answers, they are closed after the header timeout")
def idle():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    socks = []
    for _ in range(1100):
        s = socket.create_connection((HOST, PORT), timeout=5)
        socks.append((s, time.monotonic()))
    try:
        lat = [healthz_ms() for _ in range(20)]
        figures["healthz_with_1100_idle_ms_max"] = round(max(lat), 1)
        assert max(lat) < 100, f"/healthz took {max(lat):.0f} ms with 1,100 idle sockets"
        # Every idle socket is closed by the server within the header timeout (+ slack),
        # timed from its own connect: all are watched at once.
        sel = selectors.DefaultSelector()
        for s, opened in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, opened)
        lived, deadline = [], time.monotonic() + HEADER_TIMEOUT + 10
        while len(lived) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                try:
                    data = key.fileobj.recv(1)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                assert data == b"", data
                lived.append(time.monotonic() - key.data)
                sel.unregister(key.fileobj)
        sel.close()
        assert len(lived) == len(socks), f"{len(socks) - len(lived)} idle sockets still open"
        figures["idle_closed_after_s"] = {"min": round(min(lived), 2), "max": round(max(lived), 2)}
        assert max(lived) < HEADER_TIMEOUT + 1.5, max(lived)
    finally:
        for s, _ in socks:
            s.close()
    assert healthz_ms() < 100


@probe("a slowloris head and a slow body are cut off")
def slow():
    s = socket.create_connection((HOST, PORT), timeout=HEADER_TIMEOUT + 5)
    t0 = time.monotonic()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
    try:
        while s.recv(1024):
            pass
    except ConnectionResetError:
        pass
    closed = time.monotonic() - t0
    s.close()
    figures["slow_head_closed_after_s"] = round(closed, 2)
    assert closed < HEADER_TIMEOUT + 2, closed
    # A body trickled past --body-timeout (2 s in run.sh): 408.
    s = socket.create_connection((HOST, PORT), timeout=15)
    s.sendall(f"POST /api/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
              "Content-Length: 1000\r\n\r\n".encode())
    t0 = time.monotonic()
    answer = b""
    while time.monotonic() - t0 < 10:
        try:
            s.sendall(b"{")
        except OSError:
            break
        s.settimeout(0.5)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        answer += chunk
        if b"\r\n\r\n" in answer:
            break
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    figures["slow_body_408_after_s"] = round(time.monotonic() - t0, 2)


@probe("auth scheme is case-insensitive; unauthenticated bodies are not read")
def auth():
    status, _ = request("GET", "/api/findings", headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 200, status
    # 8 MiB announced, 64 KiB sent: the 401 comes without the body being read.
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n" + b"x" * 65536)
    answer = s.recv(4096)
    s.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    status, _ = request("GET", "/api/findings", headers={"Authorization": "Basic x"})
    assert status == 401, status


@probe("dashboard: no sign-in from Origin: null")
def dashboard():
    body = f"token={TOKEN}".encode()
    status, _ = request("POST", "/ui/login", body, {
        "Content-Type": "application/x-www-form-urlencoded", "Origin": "null", "Host": f"{HOST}:{PORT}"})
    assert status == 403, status


@probe("a note over 4,096 bytes is refused")
def note():
    body = json.dumps({"status": "resolved", "note": "n" * 5000}).encode()
    status, _ = request("POST", "/api/findings/kwf-none/status", body,
                        {**AUTH, "Content-Type": "application/json"})
    assert status == 400, status


for p in PROBES:
    p()
alive = healthz_ms() < 1000
print(json.dumps(figures, indent=1))
if not alive:
    results.append(("the server survived every probe", False, "/healthz"))
failed = sum(1 for _, ok, _ in results if not ok)
print(f"hostile: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
