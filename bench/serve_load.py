#!/usr/bin/env python3
"""Loopback load test of `keyward serve`: sustained CloudTrail POSTs.

Starts the given keyward binary on a fresh data directory with every built-in rule,
creates an operator token, and for --seconds keeps --concurrency clients posting
CloudTrail `{"Records":[...]}` bodies of --batch records (gzip, as a log shipper sends
them). Records come from the bundled estate's S3 delivery files, each given a fresh
`eventID` and an `eventTime` of now, so every one is a new event; each batch also
carries one `CreateLoginProfile` for another user, which the built-in rule
kw-aws-login-profile reports.

Because findings fire inside the request's pipeline (the answer is sent after the
commit, listing the findings it opened or extended), the POST's latency *is* the time
from POST to finding; the script checks each answer names the expected finding.

Prints accepted events/s, latency percentiles and the server's RSS at start and end as
a Markdown table. Standard library only.
"""
import argparse
import glob
import gzip
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records():
    out = []
    for p in sorted(glob.glob(f"{ROOT}/examples/estate/AWSLogs/**/*.json.gz", recursive=True)):
        with gzip.open(p) as f:
            out.extend(json.load(f)["Records"])
    return out


TRIGGER = {
    "eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile",
    "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.0",
    "requestParameters": {"userName": "svc-reporting", "passwordResetRequired": False},
    "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLELOAD", "accountId": "111122223333",
                     "arn": "arn:aws:iam::111122223333:user/load-tester", "userName": "load-tester",
                     "accessKeyId": "AKIAEXAMPLELOAD00001"},
    "eventType": "AwsApiCall", "managementEvent": True, "readOnly": False,
    "recipientAccountId": "111122223333", "eventCategory": "Management",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=f"{ROOT}/target/release/keyward")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--port", type=int, default=18790)
    a = ap.parse_args()

    pool = records()
    work = tempfile.mkdtemp(prefix="keyward-load-")
    data = f"{work}/data"
    token = subprocess.check_output(
        [a.bin, "--data-dir", data, "token", "create", "--role", "operator", "--name", "load"],
        stderr=subprocess.DEVNULL, text=True).strip()
    log = open(f"{work}/serve.log", "w")
    server = subprocess.Popen([a.bin, "--data-dir", data, "serve", "--listen", f"127.0.0.1:{a.port}"],
                              stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        rss_start = rss_kib(server.pid)
        cpu_start = cpu_seconds(server.pid)
        lock = threading.Lock()
        lat, accepted, errors, with_finding = [], [0], [], [0]
        deadline = time.monotonic() + a.seconds
        cursor = [0]

        def body():
            with lock:
                start = cursor[0]
                cursor[0] = (start + a.batch) % len(pool)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            batch = []
            for i in range(a.batch - 1):
                r = dict(pool[(start + i) % len(pool)])
                r["eventID"] = str(uuid.uuid4())
                r["eventTime"] = now
                batch.append(r)
            t = dict(TRIGGER, eventID=str(uuid.uuid4()), eventTime=now)
            batch.append(t)
            return gzip.compress(json.dumps({"Records": batch}).encode(), 1)

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
            headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                       "Content-Type": "application/json"}
            while time.monotonic() < deadline:
                b = body()
                t0 = time.perf_counter()
                conn.request("POST", "/api/ingest", body=b, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                dt = time.perf_counter() - t0
                if resp.status != 200:
                    errors.append((resp.status, payload[:200]))
                    continue
                d = json.loads(payload)
                hit = any(f["rule_id"] == "kw-aws-login-profile" for f in d["findings"])
                with lock:
                    lat.append(dt)
                    accepted[0] += d["accepted"]
                    with_finding[0] += hit

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(a.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        rss_end = rss_kib(server.pid)
        cpu = cpu_seconds(server.pid) - cpu_start
        if errors:
            print(f"{len(errors)} failed POSTs, first: {errors[0]}", file=sys.stderr)
            sys.exit(1)
        lat.sort()
        q = statistics.quantiles(lat, n=100, method="inclusive")
        print(f"| duration | {elapsed:.1f} s, {a.concurrency} clients, {a.batch} records per POST (gzip) |")
        print(f"| POSTs | {len(lat)} ({len(lat) / elapsed:.1f}/s), {with_finding[0]} answered with the kw-aws-login-profile finding |")
        print(f"| accepted events | {accepted[0]} ({accepted[0] / elapsed:,.0f} events/s) |")
        print(f"| POST → finding latency | p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms |")
        print(f"| server CPU | {cpu:.1f} s ({cpu / elapsed:.2f} cores; {accepted[0] / max(cpu, 0.01):,.0f} events per CPU-second) |")
        print(f"| server RSS | {rss_start / 1024:.1f} MiB at start, {rss_end / 1024:.1f} MiB at end |")
        if with_finding[0] != len(lat):
            print("some answers lacked the expected finding", file=sys.stderr)
            sys.exit(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
