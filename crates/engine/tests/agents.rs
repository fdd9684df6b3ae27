//! AI agents through ingest: an agent's OTLP traces and the CloudTrail of the role its tool
//! call assumed make one chain — person → agent session → STS session → role — whichever
//! is read first, and the agent's calls outside its declared purpose are one finding with
//! the prompt context. Fixtures follow the OTLP JSON encoding, the GenAI and MCP semantic
//! conventions and CloudTrail's record format (no public corpus of agent traces exists).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use keyward_detect::intent::{Intents, Purpose, RULE};
use keyward_engine::{Engine, IngestOptions};
use keyward_graph::analysis;
use keyward_model::IdentityKind;
use serde_json::{Value, json};

const ACCT: &str = "111122223333";
const CONV: &str = "conv-42";
const SESSION: &str = "ai:agent/asst_finops_01/session/conv-42";
const STS: &str = "arn:aws:sts::111122223333:assumed-role/finops-agent/conv-42";

fn attr(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

/// An OTLP export of one agent turn of trace `trace`: `invoke_agent` of finops-agent by
/// dave@ in conversation `CONV` (span `root`, 14:05:00 on 2026-11-13), then `tools` under
/// it, each (span id, start in Unix nanoseconds, attributes).
fn turn(trace: &str, root: &str, tools: Vec<(&str, &str, Vec<Value>)>) -> Value {
    let span = |id: &str, parent: &str, start: &str, attrs: Vec<Value>| {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": "s",
               "startTimeUnixNano": start, "endTimeUnixNano": start, "attributes": attrs})
    };
    let mut spans = vec![span(
        root,
        "",
        "1794578700000000000",
        vec![
            attr("gen_ai.operation.name", "invoke_agent"),
            attr("gen_ai.agent.id", "asst_finops_01"),
            attr("gen_ai.agent.name", "finops-agent"),
            attr("gen_ai.conversation.id", CONV),
            attr("user.id", "dave@acme.example"),
        ],
    )];
    spans.extend(
        tools
            .into_iter()
            .map(|(id, start, attrs)| span(id, root, start, attrs)),
    );
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "finops-agent")]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

/// One agent turn: an `assume_role` tool call naming the role and the conversation as the
/// session name, then a tool that changes a Lambda function.
fn traces(dir: &Path) -> PathBuf {
    let args = json!({"RoleArn": format!("arn:aws:iam::{ACCT}:role/agents/finops-agent"),
                      "RoleSessionName": CONV})
    .to_string();
    let doc = turn(
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        vec![
            (
                "00f067aa0ba902b8",
                "1794578710000000000",
                vec![
                    attr("gen_ai.operation.name", "execute_tool"),
                    attr("gen_ai.tool.name", "assume_role"),
                    attr("gen_ai.tool.call.arguments", &args),
                ],
            ),
            (
                "00f067aa0ba902b9",
                "1794578780000000000",
                vec![
                    attr("gen_ai.operation.name", "execute_tool"),
                    attr("gen_ai.tool.name", "update_lambda"),
                    attr("mcp.method.name", "tools/call"),
                    attr("mcp.session.id", "191c4850af6c49e08843a3f6c80e5046"),
                ],
            ),
        ],
    );
    let p = dir.join("agents/traces.json");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

fn record(id: &str, time: &str, source: &str, name: &str, ident: Value) -> Value {
    json!({"eventVersion": "1.09", "userIdentity": ident, "eventTime": time,
           "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
           "sourceIPAddress": "10.0.3.41", "userAgent": "Boto3/1.35.54",
           "requestParameters": null, "responseElements": null,
           "requestID": id, "eventID": id, "readOnly": name.starts_with("Get"),
           "eventType": "AwsApiCall", "managementEvent": true,
           "recipientAccountId": ACCT, "eventCategory": "Management"})
}

/// The runtime's AssumeRole of `finops-agent` with the conversation as the session name,
/// then the session's Cost Explorer read and its Lambda change.
fn cloudtrail(dir: &Path) -> PathBuf {
    let runtime = json!({"type": "AssumedRole", "principalId": "AROAEXAMPLERUNTIME001:task",
        "arn": format!("arn:aws:sts::{ACCT}:assumed-role/ai-agent-runtime/task"),
        "accountId": ACCT, "accessKeyId": "ASIAEXAMPLERUNTIME01",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLERUNTIME001",
            "arn": format!("arn:aws:iam::{ACCT}:role/agents/ai-agent-runtime"), "accountId": ACCT,
            "userName": "ai-agent-runtime"}, "attributes": {"creationDate": "2026-11-13T14:00:00Z",
            "mfaAuthenticated": "false"}}});
    let me = json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLEFINOPS0001:{CONV}"),
        "arn": STS, "accountId": ACCT, "accessKeyId": "ASIAEXAMPLEFINOPS001",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEFINOPS0001",
            "arn": format!("arn:aws:iam::{ACCT}:role/agents/finops-agent"), "accountId": ACCT,
            "userName": "finops-agent"}, "attributes": {"creationDate": "2026-11-13T14:05:10Z",
            "mfaAuthenticated": "false"}}});
    let mut assume = record(
        "11111111-1111-4111-8111-111111111111",
        "2026-11-13T14:05:10Z",
        "sts.amazonaws.com",
        "AssumeRole",
        runtime,
    );
    assume["requestParameters"] = json!({"roleArn": format!("arn:aws:iam::{ACCT}:role/agents/finops-agent"),
                                         "roleSessionName": CONV});
    assume["responseElements"] = json!({"credentials": {"accessKeyId": "ASIAEXAMPLEFINOPS001",
        "sessionToken": "x", "expiration": "Nov 13, 2026, 2:20:10 PM"},
        "assumedRoleUser": {"assumedRoleId": format!("AROAEXAMPLEFINOPS0001:{CONV}"), "arn": STS}});
    let read = record(
        "22222222-2222-4222-8222-222222222222",
        "2026-11-13T14:05:20Z",
        "ce.amazonaws.com",
        "GetCostAndUsage",
        me.clone(),
    );
    let change = record(
        "33333333-3333-4333-8333-333333333333",
        "2026-11-13T14:06:21Z",
        "lambda.amazonaws.com",
        "PutFunctionConcurrency20171031",
        me,
    );
    let p = dir.join("cloudtrail.jsonl");
    let lines: Vec<String> = [assume, read, change]
        .iter()
        .map(|r| r.to_string())
        .collect();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn people(dir: &Path) -> PathBuf {
    let p = dir.join("people.csv");
    std::fs::write(
        &p,
        "email,name,team,status\ndave@acme.example,Dave,payments,active\n",
    )
    .unwrap();
    p
}

fn intents(allow: &[&str]) -> Intents {
    let allow: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
    Intents::new(
        vec![Purpose::new("cost-analysis", None, &allow).unwrap()],
        vec![("finops-*".into(), "cost-analysis".into())],
    )
    .unwrap()
}

/// A store in `dir` with the files ingested one at a time in this order.
fn ingested(dir: &Path, files: &[&PathBuf]) -> Engine {
    let mut e = Engine::open(&dir.join("store")).unwrap();
    for f in files {
        let r = e
            .ingest(
                std::slice::from_ref(*f),
                &IngestOptions::default(),
                &mut (),
                0,
            )
            .unwrap();
        assert_eq!(r.rejected, 0, "{f:?}");
    }
    e
}

/// Ingests the files one at a time in this order, then judges intent.
fn run(dir: &Path, files: &[PathBuf], allow: &[&str]) -> (Engine, Vec<keyward_detect::Finding>) {
    let mut e = ingested(dir, &files.iter().collect::<Vec<_>>());
    let found = e.evaluate_intent(&intents(allow)).unwrap();
    (e, found)
}

#[test]
fn the_chain_and_the_finding_do_not_depend_on_which_source_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let (t, c, p) = (
        traces(dir.path()),
        cloudtrail(dir.path()),
        people(dir.path()),
    );
    let mut seen = Vec::new();
    for (n, order) in [[&t, &c, &p], [&c, &p, &t]].into_iter().enumerate() {
        let sub = dir.path().join(format!("run{n}"));
        let files: Vec<PathBuf> = order.into_iter().cloned().collect();
        let (e, found) = run(&sub, &files, &["ce:read", "budgets:read"]);
        let g = e.graph();
        // The person is found from the STS session through the conversation.
        let owners = analysis::ownership(g, g.find(STS).unwrap());
        let dave = owners
            .people
            .iter()
            .find(|c| c.owner == "dave@acme.example")
            .expect("dave owns the session through his prompt");
        let hops: Vec<(&str, &str)> = dave
            .chain
            .iter()
            .map(|h| (h.node.as_str(), h.edge.as_str()))
            .collect();
        assert_eq!(
            hops,
            [
                (SESSION, "created"),
                ("person:dave@acme.example", "created")
            ]
        );
        let session = e.inventory().get(SESSION).unwrap();
        assert_eq!(session.kind, IdentityKind::AgentSession);
        assert_eq!(session.parent.as_deref(), Some("ai:agent/asst_finops_01"));
        assert_eq!(
            e.inventory().get("ai:agent/asst_finops_01").unwrap().kind,
            IdentityKind::AiAgent
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.rule_id, RULE);
        assert_eq!(f.identity.as_deref(), Some(SESSION));
        assert_eq!(
            f.events,
            [
                "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b9",
                "33333333-3333-4333-8333-333333333333"
            ]
        );
        assert_eq!(f.details["prompted_by"], "dave@acme.example");
        assert_eq!(f.details["credential"], STS);
        assert_eq!(
            f.details["actions"][0]["tool_call"]["tool"],
            "update_lambda"
        );
        assert_eq!(f.path, [SESSION, "person:dave@acme.example"]);
        seen.push((f.id.clone(), f.events.clone(), f.details.clone()));
        // Judging again changes nothing.
        let mut e = e;
        assert!(
            e.evaluate_intent(&intents(&["ce:read", "budgets:read"]))
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn calls_inside_the_purpose_and_agents_without_one_are_not_findings() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![traces(dir.path()), cloudtrail(dir.path())];
    let (_, found) = run(&dir.path().join("a"), &files, &["ce:read", "lambda:*"]);
    assert!(found.is_empty(), "{found:?}");
    let mut e = Engine::open(&dir.path().join("b/store")).unwrap();
    e.ingest(&files, &IngestOptions::default(), &mut (), 0)
        .unwrap();
    let other = Intents::new(
        vec![Purpose::new("support", None, &["ce:read".into()]).unwrap()],
        vec![("support-*".into(), "support".into())],
    )
    .unwrap();
    assert!(e.evaluate_intent(&other).unwrap().is_empty());
    assert!(e.evaluate_intent(&Intents::default()).unwrap().is_empty());
}

/// An exception of the intent rule keeps the actions it matches out: by the agent's name,
/// with or without detection enabled; one for another account or network changes nothing.
#[test]
fn an_exception_of_the_intent_rule_keeps_its_actions_out() {
    use keyward_detect::exceptions::Exception;
    let dir = tempfile::tempdir().unwrap();
    let files = vec![traces(dir.path()), cloudtrail(dir.path())];
    let audit = |what: &str| keyward_store::AuditEntry {
        at: 0,
        actor: "test".into(),
        action: "exception.add".into(),
        target: Some(what.into()),
        detail: None,
        before: None,
        after: None,
    };
    let exception = |name: &str, identities: &[&str], networks: &[&str]| Exception {
        rule: Some(RULE.into()),
        name: name.into(),
        identities: identities.iter().map(|s| (*s).to_owned()).collect(),
        namespaces: vec![],
        accounts: vec![],
        networks: networks.iter().map(|s| (*s).to_owned()).collect(),
        note: None,
    };
    for detection in [false, true] {
        let mut e = Engine::open(&dir.path().join(format!("d{detection}/store"))).unwrap();
        if detection {
            e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
                .unwrap();
        }
        e.ingest(&files, &IngestOptions::default(), &mut (), 0)
            .unwrap();
        // Not this agent's network: the finding stands.
        e.add_exception(
            exception("elsewhere", &["finops-agent"], &["192.0.2.0/24"]),
            &audit("elsewhere"),
        )
        .unwrap();
        let found = e
            .evaluate_intent(&intents(&["ce:read", "budgets:read"]))
            .unwrap();
        assert_eq!(found.len(), 1, "detection {detection}: {found:?}");
        // The agent by name, from its network: nothing outside the purpose is left.
        let dir2 = dir.path().join(format!("e{detection}/store"));
        let mut e = Engine::open(&dir2).unwrap();
        if detection {
            e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
                .unwrap();
        }
        e.add_exception(
            exception("finops changes concurrency", &["finops-*"], &["10.0.0.0/8"]),
            &audit("finops"),
        )
        .unwrap();
        e.ingest(&files, &IngestOptions::default(), &mut (), 0)
            .unwrap();
        let found = e
            .evaluate_intent(&intents(&["ce:read", "budgets:read"]))
            .unwrap();
        assert!(found.is_empty(), "detection {detection}: {found:?}");
    }
}

#[test]
fn the_chain_read_from_the_store_is_the_one_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        traces(dir.path()),
        cloudtrail(dir.path()),
        people(dir.path()),
    ];
    let (e, _) = run(dir.path(), &files, &["ce:read"]);
    let whole = {
        let g = e.graph();
        analysis::ownership(g, g.find(STS).unwrap())
    };
    drop(e);
    let view =
        Engine::open_about(&dir.path().join("store"), STS, keyward_engine::Need::Chain).unwrap();
    let i = view.inventory().get(STS).unwrap().clone();
    assert_eq!(view.owner_info(&i, &view.coverage()).ownership, whole);
}

#[test]
fn the_agent_questions_answer_from_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        people(dir.path()),
        traces(dir.path()),
        cloudtrail(dir.path()),
    ];
    let (e, _) = run(dir.path(), &files, &["ce:read"]);
    let t = |s: &str| keyward_model::time::parse(s).unwrap();
    let day = 24 * 3_600_000;

    // Which agents created identities in the 24 hours before 15:00 that day; none before.
    let created = e.agent_creations(t("2026-11-13T15:00:00Z") - day, t("2026-11-13T15:00:00Z"));
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].agent, "ai:agent/asst_finops_01");
    assert_eq!(created[0].sessions[0].session, SESSION);
    assert_eq!(
        created[0].sessions[0].prompted_by.as_deref(),
        Some("dave@acme.example")
    );
    let made: Vec<&str> = created[0].sessions[0]
        .created
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(made, [STS]);
    assert!(
        e.agent_creations(t("2026-11-13T00:00:00Z") - day, t("2026-11-13T00:00:00Z"))
            .is_empty()
    );

    // The chains it created: the session's tool calls, the STS session and its actions.
    let agent = e.agents()[0];
    let chains = e.agent_chains(agent).unwrap();
    let s = &chains.sessions[0];
    assert_eq!(s.tool_calls.get("assume_role"), Some(&1));
    assert_eq!(s.tool_calls.get("update_lambda"), Some(&1));
    assert_eq!(s.created[0].created.id, STS);
    let mut actions: Vec<&str> = s.created[0]
        .actions
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "ce.amazonaws.com:GetCostAndUsage",
            "lambda.amazonaws.com:PutFunctionConcurrency20171031"
        ]
    );
    assert!(s.tree.identities >= 1, "{:?}", s.tree);

    // What they access: the tools called, and the STS session's calls, which name no
    // resource, under their actions.
    let access = e.agent_access(None).unwrap();
    let rows: Vec<(&str, &str, usize)> = access
        .iter()
        .map(|r| (r.resource.as_str(), r.from, r.count))
        .collect();
    for want in [
        ("assume_role", "tool", 1),
        ("update_lambda", "tool", 1),
        ("ce.amazonaws.com:GetCostAndUsage", "action", 1),
        (
            "lambda.amazonaws.com:PutFunctionConcurrency20171031",
            "action",
            1,
        ),
    ] {
        assert!(rows.contains(&want), "{want:?} not in {rows:?}");
    }
    assert!(access.iter().all(|r| r.agents == ["finops-agent"]));
    // Since after the last call: nothing.
    assert!(
        e.agent_access(Some(t("2026-11-13T15:00:00Z")))
            .unwrap()
            .is_empty()
    );
}

/// An access key a tool call names joins the agent's session to what CloudTrail says the
/// key did around that call (a `used` edge): its calls then count for the intent rule and
/// the agent questions; its calls hours later, its owner's, do not.
#[test]
fn an_access_key_named_in_a_tool_call_joins_its_cloudtrail_around_the_call() {
    const KEY: &str = "AKIAEXAMPLEDEVTOOLSA";
    let user = format!("arn:aws:iam::{ACCT}:user/dev-tools");
    let dir = tempfile::tempdir().unwrap();
    let args = json!({"cli_command": format!(
        "AWS_ACCESS_KEY_ID={KEY} aws iam attach-role-policy --role-name ci --policy-arn arn:aws:iam::aws:policy/AdministratorAccess"),
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
    .to_string();
    let doc = turn(
        "5bf92f3577b34da6a3ce929d0e0e4737",
        "10f067aa0ba902b7",
        vec![(
            "10f067aa0ba902b8",
            "1794578710000000000",
            vec![
                attr("gen_ai.operation.name", "execute_tool"),
                attr("gen_ai.tool.name", "run_aws"),
                attr("gen_ai.tool.call.arguments", &args),
            ],
        )],
    );
    let traces = dir.path().join("traces.json");
    std::fs::write(&traces, serde_json::to_vec(&doc).unwrap()).unwrap();
    let me = json!({"type": "IAMUser", "principalId": "AIDAEXAMPLEDEVTOOLS01",
        "arn": user, "accountId": ACCT, "accessKeyId": KEY, "userName": "dev-tools"});
    let mut attach = record(
        "44444444-4444-4444-8444-444444444444",
        "2026-11-13T14:05:12Z",
        "iam.amazonaws.com",
        "AttachRolePolicy",
        me.clone(),
    );
    attach["requestParameters"] = json!({"roleName": "ci",
        "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
    // Three hours later: the key's owner at work, not the agent.
    let later = record(
        "55555555-5555-4555-8555-555555555555",
        "2026-11-13T17:05:12Z",
        "ec2.amazonaws.com",
        "TerminateInstances",
        me,
    );
    let ct = dir.path().join("cloudtrail.jsonl");
    std::fs::write(&ct, format!("{attach}\n{later}\n")).unwrap();
    for order in [[&traces, &ct], [&ct, &traces]] {
        let sub = dir.path().join(format!(
            "run-{}",
            order[0].extension().unwrap().to_string_lossy()
        ));
        let files: Vec<PathBuf> = order.into_iter().cloned().collect();
        let (e, found) = run(&sub, &files, &["ce:read"]);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.details["credential"], KEY);
        assert_eq!(f.details["role"], user.as_str());
        let actions: Vec<&str> = f.details["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["iam.amazonaws.com:AttachRolePolicy"]);
        assert_eq!(f.details["actions"][0]["tool_call"]["tool"], "run_aws");
        // The graph: the session used the key; the key is its user's.
        let g = e.graph();
        let session = g.find(SESSION).unwrap();
        assert!(
            g.out_edges(session)
                .any(|x| x.kind == keyward_graph::EdgeKind::Used && g.key(x.to) == KEY),
            "no `used` edge from the session to the key"
        );
        // The agent questions see it too, with the call around the tool call only.
        let chains = e.agent_chains(e.agents()[0]).unwrap();
        let used = &chains.sessions[0].used;
        assert_eq!(used.len(), 1, "{used:?}");
        assert_eq!(used[0].created.id, KEY);
        let acted: Vec<&str> = used[0].actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(acted, ["iam.amazonaws.com:AttachRolePolicy"]);
        let access = e.agent_access(None).unwrap();
        let acted = |action: &str| access.iter().any(|r| r.actions.contains_key(action));
        assert!(acted("iam.amazonaws.com:AttachRolePolicy"), "{access:?}");
        assert!(!acted("ec2.amazonaws.com:TerminateInstances"), "{access:?}");
    }
}

/// Claude Desktop's MCP log joins as OTLP traces do: the `tools/call` that assumed the
/// role names the STS session CloudTrail shows acting, created by the client's session;
/// its calls outside the purpose are a finding with the tool call as evidence.
#[test]
fn a_claude_desktop_mcp_log_joins_the_cloudtrail_of_the_role_it_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mcp-server-aws.log");
    let assume = json!({"method": "tools/call", "jsonrpc": "2.0", "id": 5, "params": {
        "name": "call_aws", "arguments": {"cli_command": format!(
            "aws sts assume-role --role-arn arn:aws:iam::{ACCT}:role/agents/finops-agent --role-session-name {CONV}")}}});
    let lines = [
        "2026-11-13T14:05:00.000Z [info] [aws] Initializing server...".to_owned(),
        r#"2026-11-13T14:05:00.120Z [info] [aws] Message from client: {"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"claude-ai","version":"0.1.0"}},"jsonrpc":"2.0","id":0}"#.to_owned(),
        format!("2026-11-13T14:05:09.000Z [info] [aws] Message from client: {assume}"),
        r#"2026-11-13T14:05:09.900Z [info] [aws] Message from server: {"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#.to_owned(),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let ct = cloudtrail(dir.path());
    let intents = Intents::new(
        vec![Purpose::new("cost-analysis", None, &["ce:read".into()]).unwrap()],
        vec![("claude-ai".into(), "cost-analysis".into())],
    )
    .unwrap();
    for (n, order) in [[&log, &ct], [&ct, &log]].into_iter().enumerate() {
        let mut e = ingested(&dir.path().join(format!("run{n}")), &order);
        let session = e
            .inventory()
            .iter()
            .find(|i| i.kind == IdentityKind::AgentSession)
            .expect("the client's session")
            .id
            .clone();
        assert!(session.starts_with("ai:agent/claude-ai/"), "{session}");
        let found = e.evaluate_intent(&intents).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.identity.as_deref(), Some(session.as_str()));
        assert_eq!(f.details["credential"], STS);
        assert_eq!(
            f.details["actions"][0]["action"],
            "lambda.amazonaws.com:PutFunctionConcurrency20171031"
        );
        assert_eq!(f.details["actions"][0]["tool_call"]["tool"], "call_aws");
    }
}
