#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with real records: the example estate and, when present,
# ../shared/corpora (never committed: fuzz/corpus is ignored by git).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${KEYWARD_CORPORA:-$root/../shared/corpora}
estate=$root/examples/estate
c=$here/corpus
mkdir -p "$c"/{gzip,array_split,cloudtrail,cloudtrail_differential,cloudtrail_blocks,k8s_audit,iam_authz,organizations,cred_report,k8s_snapshot,sniff_and_time,terraform,codeowners,people,lambda,graph_derive,rule_file,detect_event,github_webhook,otel_traces,response_policy,playbook,govern_check,policy_load,bus_wire,broker_jwt,broker_leases,mcp_log}
python3 - "$estate" "$shared" "$c" "$root" <<'PY'
import gzip, hashlib, json, os, sys
estate, shared, c, root = sys.argv[1:]
def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(c, target, name), "wb") as f:
        f.write(data)
def records(doc):
    d = json.loads(doc)
    return d["Records"] if isinstance(d, dict) and "Records" in d else (d if isinstance(d, list) else [])
n = 0
for base, _, files in os.walk(os.path.join(estate, "AWSLogs")):
    for f in sorted(files)[:6]:
        doc = gzip.open(os.path.join(base, f)).read()
        put("cloudtrail", doc[:20000])
        # A size byte, then a whole (small) delivery file of a few records.
        head = {"Records": records(doc)[:4]}
        put("cloudtrail_blocks", bytes([(n * 37 + len(files)) % 256]) + json.dumps(head, ensure_ascii=False).encode())
        put("array_split", doc[:20000])
        for r in records(doc)[:40]:
            put("cloudtrail", json.dumps(r)); put("cloudtrail_differential", json.dumps(r)); n += 1
put("iam_authz", open(os.path.join(estate, "aws/111122223333/iam-authorization-details.json"), "rb").read())
org = os.path.join(root, "crates/cli/tests/organizations/org")
for i, f in enumerate(sorted(os.listdir(org))):
    put("organizations", bytes([i % 3]) + open(os.path.join(org, f), "rb").read())
put("cred_report", open(os.path.join(estate, "aws/111122223333/credential-report.csv"), "rb").read())
put("k8s_snapshot", open(os.path.join(estate, "k8s/prod-eks/rbac-snapshot.json"), "rb").read()[:30000])
for line in open(os.path.join(estate, "k8s/prod-eks/audit.jsonl")).readlines()[:80]:
    put("k8s_audit", line)
put("terraform", open(os.path.join(estate, "terraform/iam.tf"), "rb").read())
put("terraform", '{"format_version":"1.2","terraform_version":"1.9.8","planned_values":{"root_module":{"resources":[{"address":"aws_iam_access_key.k","mode":"managed","type":"aws_iam_access_key","name":"k","values":{"user":"u","secret":"x"}}],"child_modules":[{"address":"module.m","resources":[{"address":"module.m.aws_iam_role.r","mode":"managed","type":"aws_iam_role","name":"r","values":{"name":"r","assume_role_policy":"{\\"Version\\":\\"2012-10-17\\"}"}}]}]}}}')
put("terraform", '{"resource":{"aws_iam_user":{"u":{"name":"${var.n}"}}}}')
put("codeowners", open(os.path.join(estate, "terraform/CODEOWNERS"), "rb").read())
put("codeowners", "docs/*\ndocs/a/b.md\n**/logs @octocat\n/apps/github\n")
put("people", open(os.path.join(estate, "people.csv"), "rb").read())
put("lambda", open(os.path.join(estate, "aws/111122223333/lambda-functions.json"), "rb").read())
# graph_derive: a selector byte (which object kind) then a JSON document.
put("graph_derive", b"\x00" + open(os.path.join(estate, "aws/111122223333/iam-authorization-details.json"), "rb").read())
for i, obj in enumerate(json.load(open(os.path.join(estate, "k8s/prod-eks/rbac-snapshot.json"))).get("items", [])[:24]):
    put("graph_derive", bytes([i % 8]) + json.dumps(obj).encode())
for t in ["2026-11-10T08:15:02.123456Z", "2019-08-16 17:27:59+00:00", "Nov 10, 2026 8:15:02 AM", "AKIABTX3GSDS2CT3VIU7"]:
    put("sniff_and_time", t)
# Gzip: a real S3 object whole, cut short, with a damaged middle, and two members.
ct_gz = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(estate, "AWSLogs")) for f in fs if f.endswith(".gz"))[0]
gz = open(ct_gz, "rb").read()
put("gzip", gz); put("gzip", gz[: len(gz) // 2]); put("gzip", gz + gz)
put("gzip", gz[:20] + bytes(b ^ 0x5A for b in gz[20:28]) + gz[28:])
put("gzip", gzip.compress(b"\0" * (4 << 20)))
# Envelopes of bodies: an EventList, Records, lookup-events, lines, a non-array `items`.
for t in ['{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"kind":"Event"}]}',
          '{"Records":[{"eventVersion":"1.09"}]}', '{"Events":[{"CloudTrailEvent":"{}"}]}',
          '{"a":1}\n{"b":2}\n', '{"kind":"EventList","items":{}}', '{"Records":3}']:
    put("sniff_and_time", t)
if os.path.isdir(shared):
    sd = os.path.join(shared, "aws-cloudtrail-stratus-detonations/detonation-logs")
    for f in sorted(os.listdir(sd)):
        for r in json.load(open(os.path.join(sd, f)))[:5]:
            put("cloudtrail", json.dumps(r)); put("cloudtrail_differential", json.dumps(r))
    for line in open(os.path.join(shared, "panther-labelled-events/events/AWS.CloudTrail.jsonl")):
        put("cloudtrail_differential", json.dumps(json.loads(line)["event"]))
    for line in open(os.path.join(shared, "panther-labelled-events/events/Amazon.EKS.Audit.jsonl")):
        put("k8s_audit", json.dumps(json.loads(line)["event"]))
    put("iam_authz", open(os.path.join(shared, "aws-iam-authz-small/small-authz-details.json"), "rb").read())
    for i, line in enumerate(open(os.path.join(shared, "panther-labelled-events/events/GitHub.Webhook.jsonl"))):
        p = json.loads(line)["event"]
        ev = next((k for k in ("workflow_run", "workflow_job") if k in p), "push")
        put("github_webhook", json.dumps({"guid": f"p-{i}", "delivered_at": "2026-11-20T10:00:00Z",
                                          "event": ev, "request": {"headers": {}, "payload": p}}))
    for f in sorted(os.listdir(sd)):
        for r in json.load(open(os.path.join(sd, f)))[:20]:
            put("detect_event", b"\x00" + json.dumps(r).encode())
    for base, _, files in os.walk(os.path.join(shared, "sigma-cloud-rules")):
        for f in sorted(files):
            if f.endswith((".yml", ".yaml")):
                put("rule_file", open(os.path.join(base, f), "rb").read())
    kd = os.path.join(shared, "k8s-rbac-posture-kubescape/rules")
    for base, _, files in os.walk(kd):
        if base.endswith("input"):
            for f in files:
                put("k8s_snapshot", open(os.path.join(base, f), "rb").read())
# rule_file: the built-in rules; detect_event: a selector byte (0 CloudTrail, 1 Kubernetes
# audit, 4 GitHub webhook; +2 closes the baseline hour) then one record, from the rules' own examples.
# response_policy: the example policy.
put("response_policy", open(os.path.join(root, "examples/respond/policy.yml"), "rb").read())
# playbook: the example playbooks (the seed workflow's among them).
pb = os.path.join(root, "examples/playbooks")
for f in sorted(os.listdir(pb)):
    put("playbook", open(os.path.join(pb, f), "rb").read())
# govern_check: a kind byte (0 Terraform, 1 policy, 2 Kubernetes), then `keyward check`'s
# own fixtures.
fx = os.path.join(root, "crates/cli/tests/check")
for sub, kind in (("infra", 0), ("policies", 1), ("k8s", 2)):
    for f in sorted(os.listdir(os.path.join(fx, sub))):
        put("govern_check", bytes([kind]) + open(os.path.join(fx, sub, f), "rb").read())
rules_dir = os.path.join(root, "crates/detect/rules")
for f in sorted(os.listdir(rules_dir)):
    text = open(os.path.join(rules_dir, f), "rb").read()
    put("rule_file", text)
for line in open(os.path.join(estate, "k8s/prod-eks/audit.jsonl")).readlines()[:40]:
    put("detect_event", b"\x01" + line.encode())
# github_webhook: the deliveries in the GitHub rules' examples.
import re
for f in sorted(os.listdir(rules_dir)):
    if f.startswith("github-"):
        for line in open(os.path.join(rules_dir, f)):
            line = line.strip()
            if line.startswith("- {"):
                put("github_webhook", line[2:])
                put("detect_event", b"\x04" + line[2:].encode())
# broker_leases: leases as the broker records them (a JWT under a service account, an AWS
# session under it), whole and cut short.
lease = {"lease_id": "kwl-1", "kind": "jwt", "state": "active", "workload": "k8s:prod/system:serviceaccount:pay:api",
         "workload_kind": "service_account", "workload_platform": "kubernetes", "workload_name": "api",
         "proof": "kubernetes", "issuer": "https://k8s", "subject": "system:serviceaccount:pay:api",
         "created_by": "k8s:prod/system:serviceaccount:pay:api", "target": "vault",
         "identity": "keyward:lease/kwl-1", "reference": "kwl-1", "issued_at": 1, "expires_at": 900001,
         "max_expires_at": 3600001}
aws = dict(lease, lease_id="kwl-2", kind="aws", parent="kwl-1", created_by="keyward:lease/kwl-1",
           identity="arn:aws:sts::123456789012:assumed-role/r/kwl-2", reference="ASIAEXAMPLE", state="revoked",
           revoked_at=5)
for l in (lease, aws):
    line = json.dumps(l).encode()
    put("broker_leases", line); put("broker_leases", line[: len(line) // 2])
put("broker_leases", json.dumps(lease).encode() + b"\n" + json.dumps(aws).encode())
# otel_traces: the estate agent's export requests, whole and cut short.
for line in open(os.path.join(estate, "agents/finops-agent-traces.jsonl"), "rb").read().splitlines():
    put("otel_traces", line); put("otel_traces", line[: len(line) // 2])
# mcp_log: a Claude Desktop MCP log (both bracket orders: older versions put the server
# first), whole, line by line and cut short.
init = {"method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "claude-ai", "version": "0.1.0"}}, "jsonrpc": "2.0", "id": 0}
call = {"method": "tools/call", "params": {"name": "call_aws", "arguments": {"cli_command":
        "aws sts assume-role --role-arn arn:aws:iam::111122223333:role/agents/support-agent --role-session-name ticket-4821"}},
        "jsonrpc": "2.0", "id": 5}
keys = {"method": "tools/call", "params": {"name": "configure", "arguments": {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "password": "hunter2"}}, "jsonrpc": "2.0", "id": "k-1"}
result = {"jsonrpc": "2.0", "id": 5, "result": {"content": [{"type": "text", "text": "ok"}], "isError": False}}
mcp = ["2025-06-13T14:44:29.818Z [info] [aws] Initializing server...",
       "2025-06-13T14:44:29.945Z [info] [aws] Message from client: " + json.dumps(init, separators=(",", ":")),
       "2025-06-13T14:44:31.402Z [error] [aws] Some stderr text of the server",
       "2025-06-13T14:45:02.101Z [info] [aws] Message from client: " + json.dumps(call, separators=(",", ":")),
       "2025-06-13T14:45:02.900Z [info] [aws] Message from server: " + json.dumps(result, separators=(",", ":")),
       "2024-11-26T22:09:43.436Z [github] [info] Message from client: " + json.dumps(keys, separators=(",", ":")),
       "2024-11-26T22:09:44.000Z [github] [info] Message from client: [" + json.dumps(call) + "," + json.dumps(keys) + "]"]
for line in mcp:
    put("mcp_log", line); put("mcp_log", line[: len(line) // 2])
put("mcp_log", "\n".join(mcp) + "\n")
put("mcp_log", "\r\n".join(reversed(mcp)))
for base, _, files in os.walk(os.path.join(estate, "AWSLogs")):
    for f in sorted(files)[:4]:
        for i, r in enumerate(records(gzip.open(os.path.join(base, f)).read())[:30]):
            put("detect_event", bytes([2 * (i % 2)]) + json.dumps(r).encode())
# Depth (see docs/fuzzing.md): nesting past normalize::MAX_NESTING (100), at the limit,
# and cut short inside it, for every target whose input reaches a recursive parser.
deep_arr, deep_obj = "[" * 5000, '{"a":' * 5000
ct = lambda rp: '{"eventVersion":"1.09","eventID":"d","eventTime":"2026-11-10T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a"},"requestParameters":' + rp + "}"
closed = lambda d: '{"a":' * d + "1" + "}" * d
for t in ["array_split", "cloudtrail", "cloudtrail_differential", "k8s_audit", "iam_authz", "organizations", "k8s_snapshot",
          "lambda", "github_webhook", "otel_traces", "sniff_and_time", "terraform"]:
    put(t, deep_arr); put(t, deep_obj); put(t, "[" * 5000 + "]" * 5000)
for rp in [closed(5000), closed(99), closed(100), closed(101), deep_obj]:
    put("cloudtrail", ct(rp)); put("cloudtrail_differential", ct(rp))
    put("cloudtrail", '{"Records":[' + ct("{}") + "," + ct(rp) + "," + ct("{}") + "]}")
    put("cloudtrail_blocks", b"\x07" + ('{"Records":[' + ct("{}") + "," + ct(rp) + "," + ct("{}") + "]}").encode())
    put("array_split", "[" + ct("{}") + "," + ct(rp) + "]")
    put("detect_event", b"\x00" + ct(rp).encode())
put("cloudtrail", '{"CloudTrailEvent":' + json.dumps(ct(closed(5000))) + "}")
put("k8s_audit", '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"d","requestObject":' + closed(5000) + "}")
put("mcp_log", "2025-06-13T14:45:02.101Z [info] [aws] Message from client: " + deep_arr)
put("mcp_log", "2025-06-13T14:45:02.101Z [aws] [info] Message from client: " + closed(101))
put("k8s_snapshot", "kind: List\nitems: " + "[" * 5000 + "\n")
put("k8s_snapshot", "- " * 5000 + "x\n")
put("terraform", 'resource "aws_iam_role" "r" {\n  a = ' + "(" * 5000 + "1" + ")" * 5000 + "\n}\n")
put("terraform", 'resource "aws_iam_role" "r" {\n  a = "' + '${"' * 3000 + "\n}\n")
put("rule_file", "title: t\ndetection: " + "[" * 5000 + "\n")
# policy_load: the built-in and example policies, each with the example entities after a NUL.
pol = os.path.join(root, "crates", "policy", "src", "default.cedar")
ex = os.path.join(root, "examples", "policies")
ents = open(os.path.join(ex, "entities.json"), "rb").read()
for f in [pol] + [os.path.join(ex, x) for x in sorted(os.listdir(ex)) if x.endswith(".cedar")]:
    text = open(f, "rb").read()
    put("policy_load", text)
    put("policy_load", text + b"\0" + ents)
put("policy_load", "permit (principal, action, resource) when " + "(" * 3000 + "true" + ")" * 3000 + ";")
# bus_wire: records as a gateway publishes them (a head line, then the raw record).
ev = {"native_id": "e-1", "source": "cloudtrail", "time": 1794268800000,
      "action": "s3.amazonaws.com:ListBuckets", "actor": "arn:aws:iam::111122223333:user/ci",
      "credential": "AKIAEXAMPLE", "source_ip": "10.0.0.1", "stage": 0}
obs = {"id": "arn:aws:iam::111122223333:user/ci", "platform": "aws", "kind": "iam_user",
       "name": "ci", "source": "cloudtrail", "used_at": 1794268800000, "seen_at": None,
       "facts": {"account": "111122223333", "tags": {"owner": "alice"}}}
head = {"v": 1, "label": "AWSLogs/x.json.gz", "format": "cloudtrail", "event": ev, "observations": [obs]}
put("bus_wire", json.dumps(head) + "\n" + json.dumps({"eventID": "e-1", "eventName": "ListBuckets"}))
put("bus_wire", json.dumps({"v": 1, "label": "k8s", "format": "k8s-audit", "cluster": "prod"}) + "\n")
# broker_jwt: tokens signed by the keys of the target's fixed JWKS (RS256 with kube-shaped
# claims, ES256 and EdDSA with GitHub-shaped ones, ES384), and an unsigned `alg: none` one.
for t in [
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsia2V5d2FyZCJdLCJleHAiOjQwMDAwMDAwMDAsImlhdCI6MTgwMDAwMDAwMCwiaXNzIjoiaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZSIsImt1YmVybmV0ZXMuaW8iOnsibmFtZXNwYWNlIjoiZGVmYXVsdCIsInNlcnZpY2VhY2NvdW50Ijp7Im5hbWUiOiJhcGkiLCJ1aWQiOiIwYjFjIn19LCJuYmYiOjE4MDAwMDAwMDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZWZhdWx0OmFwaSJ9.mVsfH_B-htFxatNXfVOUyPweWlS2GtnK4gIV3OR6S3wkn2CMkknEZz2LfCHqgp_hqjOTZz1YRnUxLKfw42pK_qA2kTQzmCN-ffBg4t8z2v9cGj6p1HOGPsk-Ng3uUfzapgW_3ienk8D3WihTD-oriK6mkfC6YxdX3JQBSAHwb22s1CuMHNtZy71q7krtz6f_9l8fl2H9g6F5xaKA3ygAsxQufNqYt2sLXIhAXTHLZ4pIgN-IVu0HLdKiv6JlEjez53DUjgl0Z6Vb7PkhAWXVkc-wNtJGLPWgQYWKzwJ3TTgKILdKvvyKxxqgaSZTtX3biLe8KVozYCl_8phf_O2zCw",
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InAyNTYiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJrZXl3YXJkIiwiZXhwIjo0MDAwMDAwMDAwLCJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiam9iX3dvcmtmbG93X3JlZiI6ImFjbWUvYXBpLy5naXRodWIvd29ya2Zsb3dzL2NpLnltbEByZWZzL2hlYWRzL21haW4iLCJyZWYiOiJyZWZzL2hlYWRzL21haW4iLCJyZXBvc2l0b3J5IjoiYWNtZS9hcGkiLCJzdWIiOiJyZXBvOmFjbWUvYXBpOnJlZjpyZWZzL2hlYWRzL21haW4ifQ.bphFjuAzz4nGube13hK3JH4GMaBMJETYi2iEtcoPDwvpv2GRxXROYGgOoliwYzOadV9Wz1MiikMiE3Dbnxk3kA",
    "eyJhbGciOiJFUzM4NCIsImtpZCI6InAzODQifQ.eyJhdWQiOlsia2V5d2FyZCJdLCJleHAiOjQwMDAwMDAwMDAsImlhdCI6MTgwMDAwMDAwMCwiaXNzIjoiaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZSIsImt1YmVybmV0ZXMuaW8iOnsibmFtZXNwYWNlIjoiZGVmYXVsdCIsInNlcnZpY2VhY2NvdW50Ijp7Im5hbWUiOiJhcGkiLCJ1aWQiOiIwYjFjIn19LCJuYmYiOjE4MDAwMDAwMDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZWZhdWx0OmFwaSJ9.yYTnmUTc92wg_hXmuWM3uCOrKnC_f0NXx4-or1Vq7GblM842tRnETpIkQTwzccs-8xecBPB6_Q0xlj6pVwR5cG1IiYAPvwTsOmAaROvM_uRHDKpSbP0uBr8qd0N1iaon",
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIn0.eyJhdWQiOiJrZXl3YXJkIiwiZXhwIjo0MDAwMDAwMDAwLCJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiam9iX3dvcmtmbG93X3JlZiI6ImFjbWUvYXBpLy5naXRodWIvd29ya2Zsb3dzL2NpLnltbEByZWZzL2hlYWRzL21haW4iLCJyZWYiOiJyZWZzL2hlYWRzL21haW4iLCJyZXBvc2l0b3J5IjoiYWNtZS9hcGkiLCJzdWIiOiJyZXBvOmFjbWUvYXBpOnJlZjpyZWZzL2hlYWRzL21haW4ifQ.d2O9RUyBokWTIdz5w8rC34VyOJyZ3qZT9gMKNKxBWEsSx3ULDbd6_9tbUDomYVg64HkSCiddCAYz9GQwTSzcAw",
    "eyJhbGciOiJub25lIn0.eyJhdWQiOlsia2V5d2FyZCJdLCJleHAiOjQwMDAwMDAwMDAsImlhdCI6MTgwMDAwMDAwMCwiaXNzIjoiaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZSIsImt1YmVybmV0ZXMuaW8iOnsibmFtZXNwYWNlIjoiZGVmYXVsdCIsInNlcnZpY2VhY2NvdW50Ijp7Im5hbWUiOiJhcGkiLCJ1aWQiOiIwYjFjIn19LCJuYmYiOjE4MDAwMDAwMDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZWZhdWx0OmFwaSJ9.",
]:
    put("broker_jwt", t)
print(f"seeded {n} estate CloudTrail records and the shared corpora into {c}")
PY
