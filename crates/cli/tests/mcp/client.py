"""A real MCP client (the Python `mcp` SDK) against Keyward's MCP server.

Usage:
  client.py stdio KEYWARD_BINARY GLOBAL_ARGS…  `keyward mcp` over stdio; the arguments name
      a store that holds the example estate (`--data-dir DIR`, maybe `--store URL`; `keyward
      --config examples/keyward.yaml ingest examples/estate`).
  client.py http URL  streamable HTTP at URL (`keyward serve`'s `/mcp`) with the bearer
      token in the environment's KEYWARD_MCP_TOKEN; a request without it must get 401. Lists the tools, asks
the three AI-agent questions and checks the answers name finops-agent, the STS session its
conversation created and the resources it touched. Exit 0 when every check holds; prints
what failed otherwise. Run by crates/cli/tests/mcp.rs.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

AGENT = "ai:agent/asst_finops_01"
SESSION = AGENT + "/session/conv-7f3a9c2e41b8"
STS = "arn:aws:sts::111122223333:assumed-role/finops-agent/conv-7f3a9c2e41b8"
# Claude Desktop (its MCP log), and the key pasted into its chat.
CLAUDE = "ai:agent/claude-ai"
BACKUP_KEY = "AKIABTX3GSDS5C35PII6"
# The example estate's agent activity is from 2026-11-13.
UNTIL = "2026-11-14T00:00:00Z"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


async def call(session, name, args):
    result = await session.call_tool(name, args)
    check(not result.is_error, f"`{name}` answered an error: {result.content}")
    text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    return json.loads(text) if not result.is_error else {}


async def ask(session):
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    for expected in [
        "search_inventory", "get_identity", "ownership_chain", "blast_radius",
        "escalation_paths", "findings", "risk", "compliance_status",
        "agents_created_identities", "agent_identity_chains", "agent_resource_access",
    ]:
        check(expected in names, f"tool `{expected}` not listed")
    for t in tools.tools:
        check(bool(t.description), f"tool `{t.name}` has no description")
        check(t.input_schema.get("type") == "object", f"tool `{t.name}` has no object schema")

    # 1. Which AI agents have created identities in the last 24 hours?
    created = await call(session, "agents_created_identities", {"until": UNTIL, "hours": 24})
    agents = created.get("agents", [])
    check([a["agent_name"] for a in agents] == ["finops-agent"],
          f"agents that created identities: {[a.get('agent_name') for a in agents]}")
    made = [c["id"] for a in agents for s in a["sessions"] for c in s["created"]]
    check(STS in made, f"created identities {made} lack the STS session")
    prompted = [s.get("prompted_by") for a in agents for s in a["sessions"]]
    check("carol@acme.example" in prompted, f"prompted_by: {prompted}")
    # A window before the agent acted names none.
    early = await call(session, "agents_created_identities",
                       {"until": "2026-11-01T00:00:00Z", "hours": 24})
    check(early.get("agents") == [], f"a window without activity: {early.get('agents')}")

    # 2. Show me the identity chains created by finops-agent.
    chains = await call(session, "agent_identity_chains", {"agent": "finops-agent"})
    check(chains.get("agent") == AGENT, f"chains of {chains.get('agent')}")
    sessions = chains.get("sessions", [])
    check([s["session"] for s in sessions] == [SESSION], f"sessions: {sessions}")
    if sessions:
        s = sessions[0]
        check(s.get("prompted_by") == "carol@acme.example", f"prompted_by {s.get('prompted_by')}")
        check("get_cost_and_usage" in s.get("tool_calls", {}), f"tool calls {s.get('tool_calls')}")
        creds = {c["id"]: c for c in s.get("created", [])}
        check(STS in creds, f"created {list(creds)}")
        actions = [a["action"] for a in creds.get(STS, {}).get("actions", [])]
        check(any(a.startswith("lambda.amazonaws.com:") for a in actions),
              f"the STS session's actions {actions} lack its Lambda calls")
        check(any(a.startswith("ce.amazonaws.com:") for a in actions),
              f"the STS session's actions {actions} lack its Cost Explorer calls")

    # 3. What resources are our AI agents accessing most frequently?
    access = await call(session, "agent_resource_access", {"limit": 50})
    rows = access.get("resources", [])
    check(len(rows) > 0, "no resources accessed")
    counts = [r["count"] for r in rows]
    check(counts == sorted(counts, reverse=True), f"not most frequent first: {counts}")
    check(all(set(r["agents"]) <= {"finops-agent", "claude-ai"} for r in rows),
          f"agents other than finops-agent and claude-ai: {[r['agents'] for r in rows]}")
    # Claude Desktop's deletion, made with the key its tool call named (its MCP log).
    check(any("claude-ai" in r["agents"] and "ec2.amazonaws.com:DeleteSnapshot" in r["actions"]
              for r in rows), f"no DeleteSnapshot by claude-ai among {rows}")
    froms = {r["from"] for r in rows}
    check("tool" in froms, f"no tool calls among {froms}")
    check(froms & {"target", "action"}, f"no cloud events among {froms}")
    check(any("lambda" in r["resource"] or any("lambda" in a for a in r["actions"]) for r in rows),
          f"no Lambda resource among {[r['resource'] for r in rows]}")

    # The other tools answer on the same estate.
    inv = await call(session, "search_inventory", {"kind": "ai_agent"})
    check(sorted(i["id"] for i in inv.get("items", [])) == sorted([AGENT, CLAUDE]), f"inventory {inv}")
    # The key Claude Desktop's tool call named is `used`, with what it did around the call.
    claude = await call(session, "agent_identity_chains", {"agent": "claude-ai"})
    used = [u for s in claude.get("sessions", []) for u in s.get("used", [])]
    check([u["id"] for u in used] == [BACKUP_KEY], f"keys claude-ai used: {used}")
    check(any(a["action"] == "ec2.amazonaws.com:DeleteSnapshot" for u in used for a in u["actions"]),
          f"the key's actions around the call: {used}")
    ident = await call(session, "get_identity", {"id": "finops-agent/conv-7f3a9c2e41b8"})
    check(ident.get("identity", {}).get("id") == SESSION, "get_identity of the session")
    owner = await call(session, "ownership_chain", {"id": AGENT})
    check(owner.get("ownership", {}).get("owner") == "carol@acme.example", f"owner {owner}")
    blast = await call(session, "blast_radius", {"id": SESSION})
    check(blast.get("identities", 0) >= 1, f"blast radius {blast.get('identities')}")
    found = await call(session, "findings", {"identity": SESSION})
    check(any(f["rule_id"] == "kw-ai-agent-outside-purpose" for f in found.get("findings", [])),
          "no outside-purpose finding for the session")
    risk = await call(session, "risk", {"id": AGENT})
    check("worst_open_finding" in risk, f"risk {risk}")
    comp = await call(session, "compliance_status", {"framework": "soc2"})
    check(bool(comp), "compliance answered nothing")
    await call(session, "escalation_paths", {})
    bad = await session.call_tool("get_identity", {"id": "no-such-identity"})
    check(bad.is_error, "an unknown identity is not an error")
    not_agent = await session.call_tool("agent_identity_chains",
                                        {"agent": "arn:aws:iam::111122223333:role/finops-agent"})
    check(not_agent.is_error, "a role's chains answered as an agent's")


async def over_stdio(binary, global_args):
    params = StdioServerParameters(command=binary, args=[*global_args, "mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await ask(session)


def unauthenticated_status(url):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    })
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


async def over_http(url):
    status = unauthenticated_status(url)
    check(status == 401, f"a request without a token got {status}, not 401")
    token = os.environ["KEYWARD_MCP_TOKEN"]
    headers = {"authorization": f"Bearer {token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await ask(session)


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        asyncio.run(over_stdio(sys.argv[2], sys.argv[3:]))
    elif sys.argv[1] == "http":
        asyncio.run(over_http(sys.argv[2]))
    else:
        sys.exit(f"unknown transport `{sys.argv[1]}` (stdio or http)")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("ok: every check held")
