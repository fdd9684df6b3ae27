"""The example estate's AI agent: `finops-agent`, a cost-analysis agent on ECS, prompted by
carol@acme.example on Friday 2026-11-13.

Its runtime's ECS task role (`agents/ai-agent-runtime`) assumes `agents/finops-agent` with the
conversation id as the role session name, so CloudTrail's session
`assumed-role/finops-agent/conv-7f3a9c2e41b8` is the credential the agent's tool calls use. Its
traces are OTLP JSON as the OpenTelemetry Collector's `file` exporter writes them (one
`ExportTraceServiceRequest` per line), with the GenAI agent and tool-call spans and the MCP
client spans of the semantic conventions (`gen_ai.*`, `mcp.*`).

The first turn reads Cost Explorer and the budgets; in the second, asked about the cost of
`orders-processor`, the agent caps the function's reserved concurrency
(`PutFunctionConcurrency20171031`): a change to a Lambda function, outside the purpose
`cost-analysis` that `examples/keyward.yaml` gives it. Reserved concurrency is not in
`list-functions` output, so the Lambda snapshot stays as it is.

Built with a random source of its own (`random.Random(SEED + 29)`), after everything else, so
the other files are the same bytes as without it.

A second assistant, in a different format: Claude Desktop on an engineer's laptop, as its MCP log
(`mcp-server-shell.log`, the lines Claude Desktop writes: `<time> [level] [server] Message from
client: <JSON-RPC>`). Debugging the nightly backups the same Friday afternoon, the engineer pasted
`svc-backup`'s long-lived key into the chat; the `shell` MCP server's `run_command` tool runs the
AWS CLI with it, from the laptop: a `DescribeSnapshots`, then a `DeleteSnapshot` of one of that
night's snapshots. `examples/keyward.yaml` gives `claude-ai` the purpose `ops-readonly` (reads
only), so the deletion is outside it; the key's own nightly calls, hours earlier, are not the
agent's. Its own random source too (`SEED + 31`).
"""
import json
import os
import random
from datetime import timedelta

import estate_formats

AGENT_ID = "asst_finops_01"
AGENT_NAME = "finops-agent"
CONVERSATION = "conv-7f3a9c2e41b8"
PROMPTER = "carol@acme.example"
TASK_IP = "10.0.3.41"
UA_AGENT = ("Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#5.10.227-219.884.amzn2.x86_64 md/arch#x86_64 "
            "lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#legacy "
            "Botocore/1.35.54")


class Swap:
    """Runs the scenario with its own random source in both generator modules, and keeps its
    CloudTrail records out of the week's `EVENTS` (already written)."""

    def __init__(self, g, seed):
        self.g = g
        self.rng = random.Random(seed)

    def __enter__(self):
        self.saved = (self.g.R, estate_formats.R)
        self.g.R = self.rng
        estate_formats.R = self.rng
        self.first = len(self.g.EVENTS)
        return self

    def __exit__(self, *exc):
        self.records = [e["rec"] for e in self.g.EVENTS[self.first:]]
        del self.g.EVENTS[self.first:]
        self.g.R, estate_formats.R = self.saved
        return False


def build(g):
    """The agent's two roles (to add to the IAM snapshot), its CloudTrail records and its traces."""
    with Swap(g, g.SEED + 29) as s:
        day = g.DAYS[4]  # Friday 11-13
        created = g.d(2026, 10, 20, 15, 44, 2)
        runtime = g.role_rec("ai-agent-runtime", created, "/agents/")
        finops = g.role_rec("finops-agent", created + timedelta(minutes=3), "/agents/")
        roles = [role_detail(g, runtime, g.doc({"Effect": "Allow", "Principal": {
            "Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}), "agent-runtime", g.doc(
            g.allow("sts:AssumeRole", f"arn:aws:iam::{g.PROD}:role/agents/*")), g.at(day, 14, 5, 31)),
            role_detail(g, finops, g.doc({"Effect": "Allow", "Principal": {"AWS": runtime["arn"]},
                                          "Action": "sts:AssumeRole"}), "finops-agent-access", g.doc(
                g.allow(["ce:Get*", "ce:Describe*", "budgets:View*", "budgets:Describe*", "cur:Describe*",
                         "pricing:Get*"]),
                # Granted "to right-size functions": more than reading costs needs.
                g.allow(["lambda:Get*", "lambda:List*", "lambda:PutFunctionConcurrency"],
                        f"arn:aws:lambda:{g.US}:{g.PROD}:function:*")), g.at(day, 14, 10, 3))]
        task = g.hexs(32)
        runtime_sess = g.service_assume(g.at(day, 14, 2, 7), "ecs-tasks.amazonaws.com", runtime, task)
        t_assume = g.at(day, 14, 5, 31)
        sess = g.Session(finops, CONVERSATION, t_assume)
        g.ev(t_assume, runtime_sess.ident(), "sts.amazonaws.com", "AssumeRole", g.US, TASK_IP, UA_AGENT,
             req={"roleArn": finops["arn"], "roleSessionName": CONVERSATION, "durationSeconds": 900},
             resp=g.assume_resp(sess, 900), resources=g.role_resource(finops["arn"]))
        me = sess.ident()
        fn_arn = f"arn:aws:lambda:{g.US}:{g.PROD}:function:orders-processor"
        month = {"start": "2026-10-01", "end": "2026-11-01"}
        calls = [
            (g.at(day, 14, 5, 40), "ce", "GetCostAndUsage",
             {"timePeriod": month, "granularity": "MONTHLY", "metrics": ["UnblendedCost"],
              "groupBy": [{"type": "DIMENSION", "key": "SERVICE"}]}),
            (g.at(day, 14, 5, 52), "ce", "GetCostAndUsage",
             {"timePeriod": {"start": "2026-11-01", "end": "2026-11-13"}, "granularity": "DAILY",
              "metrics": ["UnblendedCost"]}),
            (g.at(day, 14, 6, 5), "ce", "GetCostForecast",
             {"timePeriod": {"start": "2026-11-13", "end": "2026-12-01"}, "metric": "UNBLENDED_COST",
              "granularity": "MONTHLY"}),
            (g.at(day, 14, 6, 20), "budgets", "DescribeBudgets", {"accountId": g.PROD}),
            (g.at(day, 14, 9, 12), "ce", "GetCostAndUsage",
             {"timePeriod": month, "granularity": "MONTHLY", "metrics": ["UnblendedCost"],
              "filter": {"dimensions": {"key": "SERVICE", "values": ["AWS Lambda"]}},
              "groupBy": [{"type": "DIMENSION", "key": "USAGE_TYPE"}]}),
        ]
        for t, svc, name, req in calls:
            g.ev(t, me, f"{svc}.amazonaws.com", name, g.US, TASK_IP, UA_AGENT, req=req, resp=None)
        g.ev(g.at(day, 14, 9, 44), me, "lambda.amazonaws.com", "PutFunctionConcurrency20171031", g.US, TASK_IP,
             UA_AGENT, req={"functionName": "orders-processor", "reservedConcurrentExecutions": 5},
             resp={"reservedConcurrentExecutions": 5}, ro=False, api_version="2017-10-31",
             resources=[{"accountId": g.PROD, "type": "AWS::Lambda::Function", "ARN": fn_arn}])
        g.ev(g.at(day, 14, 10, 3), me, "ce.amazonaws.com", "GetCostAndUsage", g.US, TASK_IP, UA_AGENT,
             req={"timePeriod": {"start": "2026-11-13", "end": "2026-11-14"}, "granularity": "DAILY",
                  "metrics": ["UnblendedCost"]}, resp=None)
        traces = build_traces(g, day, finops["arn"])
        name = f"{g.PROD}_CloudTrail_{g.US}_{day:%Y%m%d}T1415Z_{estate_formats.rand_str(16)}.json.gz"
    return roles, s.records, traces, name


LAPTOP_IP = "203.0.113.57"
UA_LAPTOP = ("aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 "
             "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#ec2.{}")
# Pasted into the chat with the key id; the log keeps it, Keyward never does (it is redacted).
PASTED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def build_mcp(g):
    """Claude Desktop's `shell` MCP server log lines, and the CloudTrail records of the key its tool
    calls named."""
    with Swap(g, g.SEED + 31) as s:
        day = g.DAYS[4]  # Friday 11-13
        key = g.KEYS["svc-backup-1"]["id"]
        me = g.ident_user(g.U["svc-backup"], key)
        nightly = [e["rec"] for e in g.EVENTS[:s.first]
                   if e["rec"]["eventName"] == "CreateSnapshot" and e["t"].date() == day.date()
                   and e["rec"]["userIdentity"].get("accessKeyId") == key]
        snapshot = nightly[0]["responseElements"]["snapshotId"]
        env = f"AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={PASTED_SECRET} AWS_DEFAULT_REGION={g.US}"
        start = g.at(day, 15, 58, 2).replace(microsecond=310_000)
        lines = []

        def line(t, text, level="info"):
            lines.append(f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z [{level}] [shell] {text}")

        def client(t, msg):
            line(t, "Message from client: " + json.dumps(msg, separators=(",", ":")))

        def server(t, msg):
            line(t, "Message from server: " + json.dumps(msg, separators=(",", ":")))

        ms = lambda n: timedelta(milliseconds=n)  # noqa: E731
        line(start, "Initializing server...")
        line(start + ms(412), "Server started and connected successfully")
        client(start + ms(530), {"method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "claude-ai", "version": "0.1.0"}}, "jsonrpc": "2.0", "id": 0})
        server(start + ms(611), {"jsonrpc": "2.0", "id": 0, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "shell-mcp", "version": "0.3.1"}}})
        client(start + ms(640), {"method": "notifications/initialized", "jsonrpc": "2.0"})
        client(start + ms(702), {"method": "tools/list", "params": {}, "jsonrpc": "2.0", "id": 1})
        server(start + ms(745), {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{
            "name": "run_command", "description": "Run a shell command on this machine",
            "inputSchema": {"type": "object", "properties": {"command": {"type": "string"}},
                            "required": ["command"]}}]}})
        calls = [(g.at(day, 16, 3, 41), "describe-snapshots --owner-ids self", "DescribeSnapshots",
                  {"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "sharedUsersSet": {},
                   "filterSet": {}}, None),
                 (g.at(day, 16, 6, 12), f"delete-snapshot --snapshot-id {snapshot}", "DeleteSnapshot",
                  {"snapshotId": snapshot}, {"requestId": g.uid(), "_return": True})]
        for n, (t, args, name, req, resp) in enumerate(calls, start=2):
            t = t + ms(g.R.randint(100, 900))
            client(t, {"method": "tools/call", "params": {"name": "run_command", "arguments": {
                "command": f"{env} aws ec2 {args}"}}, "jsonrpc": "2.0", "id": n})
            sent = t + timedelta(seconds=g.R.randint(1, 2))
            g.ev(sent.replace(microsecond=0), me, "ec2.amazonaws.com", name, g.US, LAPTOP_IP,
                 UA_LAPTOP.format(args.split()[0]), req=req, resp=resp)
            server(sent + ms(g.R.randint(300, 900)), {"jsonrpc": "2.0", "id": n, "result": {
                "content": [{"type": "text", "text": "exit code 0"}], "isError": False}})
        name = f"{g.PROD}_CloudTrail_{g.US}_{day:%Y%m%d}T1610Z_{estate_formats.rand_str(16)}.json.gz"
    return s.records, lines, name


def write_mcp(g, records, lines, name):
    """The laptop's CloudTrail delivery file for 11-13 16:10, and the MCP log."""
    day = g.DAYS[4]
    path = os.path.join(g.OUT, "AWSLogs", g.PROD, "CloudTrail", g.US, f"{day:%Y}", f"{day:%m}", f"{day:%d}", name)
    g.write_gz(path, json.dumps({"Records": records}, separators=(",", ":")).encode())
    out = os.path.join(g.OUT, "agents", "mcp-server-shell.log")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return len(records), len(lines)


def role_detail(g, r, trust, policy_name, policy, last_used):
    """A `RoleDetailList` entry as `get-account-authorization-details` prints it."""
    return {"Path": r["path"], "RoleName": r["name"], "RoleId": r["id"], "Arn": r["arn"],
            "CreateDate": g.cli(r["created"]), "AssumeRolePolicyDocument": trust, "InstanceProfileList": [],
            "RolePolicyList": [{"PolicyName": policy_name, "PolicyDocument": policy}],
            "AttachedManagedPolicies": [],
            "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "owner", "Value": "alice@acme.example"}],
            "RoleLastUsed": {"LastUsedDate": g.cli(last_used), "Region": g.US}}


def nanos(t):
    return str(int(t.timestamp()) * 1_000_000_000)


def attr(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def build_traces(g, day, role_arn):
    """Two agent turns, one export request each. Tool calls are MCP `tools/call` client spans of the
    billing MCP server, or local tools (`assume_aws_role`)."""
    resource = {"attributes": [attr("service.name", AGENT_NAME), attr("service.version", "1.4.2"),
                               attr("cloud.provider", "aws"), attr("cloud.platform", "aws_ecs"),
                               attr("cloud.account.id", g.PROD), attr("cloud.region", g.US)]}
    scope = {"name": "openinference.instrumentation.openai_agents", "version": "0.1.12"}
    mcp_session = g.hexs(32)
    requests = []
    turns = [
        (g.at(day, 14, 5, 20), "What did we spend on AWS last month, by service, and where is this month heading?",
         [("assume_aws_role", 11, {"RoleArn": role_arn, "RoleSessionName": CONVERSATION,
                                    "DurationSeconds": 900}, False),
          ("get_cost_and_usage", 20, {"time_period": {"start": "2026-10-01", "end": "2026-11-01"},
                                      "granularity": "MONTHLY", "group_by": "SERVICE"}, True),
          ("get_cost_and_usage", 32, {"time_period": {"start": "2026-11-01", "end": "2026-11-13"},
                                      "granularity": "DAILY"}, True),
          ("get_cost_forecast", 45, {"time_period": {"start": "2026-11-13", "end": "2026-12-01"}}, True),
          ("describe_budgets", 60, {"account_id": g.PROD}, True)]),
        (g.at(day, 14, 9, 0), "orders-processor looks expensive. Can you do something about it?",
         [("get_cost_and_usage", 12, {"time_period": {"start": "2026-10-01", "end": "2026-11-01"},
                                      "service": "AWS Lambda", "group_by": "USAGE_TYPE"}, True),
          ("set_lambda_concurrency", 44, {"function_name": "orders-processor",
                                          "reserved_concurrent_executions": 5}, True),
          ("get_cost_and_usage", 63, {"time_period": {"start": "2026-11-13", "end": "2026-11-14"},
                                      "granularity": "DAILY"}, True)]),
    ]
    request_id = 0
    for start, question, tools in turns:
        trace = g.hexs(32)
        root = g.hexs(16)
        end = start + timedelta(seconds=max(t[1] for t in tools) + 9)
        spans = [{"traceId": trace, "spanId": root, "parentSpanId": "", "name": f"invoke_agent {AGENT_NAME}",
                  "kind": 1, "startTimeUnixNano": nanos(start), "endTimeUnixNano": nanos(end),
                  "attributes": [attr("gen_ai.operation.name", "invoke_agent"),
                                 attr("gen_ai.provider.name", "openai"),
                                 attr("gen_ai.agent.id", AGENT_ID), attr("gen_ai.agent.name", AGENT_NAME),
                                 attr("gen_ai.agent.description",
                                      "Answers questions about AWS spend from Cost Explorer and budgets"),
                                 attr("gen_ai.conversation.id", CONVERSATION),
                                 attr("gen_ai.request.model", "gpt-4.1"),
                                 attr("user.id", PROMPTER),
                                 attr("gen_ai.input.messages", json.dumps(
                                     [{"role": "user", "parts": [{"type": "text", "content": question}]}]))],
                  "status": {"code": 1}}]
        for tool, offset, args, mcp in tools:
            t = start + timedelta(seconds=offset)
            chat = g.hexs(16)
            spans.append({"traceId": trace, "spanId": chat, "parentSpanId": root, "name": "chat gpt-4.1",
                          "kind": 3, "startTimeUnixNano": nanos(t - timedelta(seconds=6)),
                          "endTimeUnixNano": nanos(t - timedelta(seconds=1)),
                          "attributes": [attr("gen_ai.operation.name", "chat"),
                                         attr("gen_ai.provider.name", "openai"),
                                         attr("gen_ai.request.model", "gpt-4.1"),
                                         attr("gen_ai.response.model", "gpt-4.1-2025-04-14"),
                                         attr("gen_ai.usage.input_tokens", g.R.randint(900, 4000)),
                                         attr("gen_ai.usage.output_tokens", g.R.randint(40, 400)),
                                         attr("gen_ai.response.finish_reasons", "tool_calls")],
                          "status": {}})
            call_id = "call_" + estate_formats.rand_str(24)
            attrs = [attr("gen_ai.operation.name", "execute_tool"), attr("gen_ai.tool.name", tool),
                     attr("gen_ai.tool.type", "extension" if mcp else "function"),
                     attr("gen_ai.tool.call.id", call_id),
                     attr("gen_ai.tool.call.arguments", json.dumps(args, separators=(",", ":")))]
            if mcp:
                request_id += 1
                attrs += [attr("mcp.method.name", "tools/call"), attr("mcp.session.id", mcp_session),
                          attr("mcp.protocol.version", "2025-06-18"), attr("jsonrpc.request.id", str(request_id)),
                          attr("network.transport", "tcp"), attr("server.address", "billing-mcp.internal"),
                          attr("server.port", 8080)]
            spans.append({"traceId": trace, "spanId": g.hexs(16), "parentSpanId": root,
                          "name": f"{'tools/call' if mcp else 'execute_tool'} {tool}",
                          "kind": 3 if mcp else 1, "startTimeUnixNano": nanos(t),
                          "endTimeUnixNano": nanos(t + timedelta(milliseconds=g.R.randint(300, 2500))),
                          "attributes": attrs, "status": {}})
        requests.append({"resourceSpans": [{"resource": resource, "scopeSpans": [
            {"scope": scope, "spans": spans}]}]})
    return requests


def write(g, records, traces, name):
    """One more CloudTrail delivery file for the agent's 11-13 afternoon, and the traces."""
    day = g.DAYS[4]
    path = os.path.join(g.OUT, "AWSLogs", g.PROD, "CloudTrail", g.US, f"{day:%Y}", f"{day:%m}", f"{day:%d}", name)
    body = json.dumps({"Records": records}, separators=(",", ":")).encode()
    g.write_gz(path, body)
    out = os.path.join(g.OUT, "agents", "finops-agent-traces.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for r in traces:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    return len(records), sum(len(r["resourceSpans"][0]["scopeSpans"][0]["spans"]) for r in traces)
