//! Claude Desktop MCP log fixtures: lines in the shape Claude Desktop writes them (both
//! orders of the brackets), with the values of the AWS API MCP server's `call_aws` tool;
//! the credentials and secrets are AWS's documented examples.

use keyward_model::{Diagnostic, Event, IdentityKind, Observation, SourceKind};
use serde_json::Value;

use super::*;
use crate::{Context, Format, Layout, Output, Sink, sniff};

#[derive(Default)]
struct Seen {
    events: Vec<Event<'static>>,
    raws: Vec<String>,
    observations: Vec<Observation>,
    diagnostics: Vec<Diagnostic>,
}

impl Sink for Seen {
    fn accept(&mut self, out: Output<'_>) {
        let out = out.into_owned();
        self.events.extend(out.event);
        if let Some(raw) = out.raw {
            self.raws.push(String::from_utf8_lossy(&raw).into_owned());
        }
        self.observations.extend(out.observations);
    }
    fn reject(&mut self, diag: Diagnostic) {
        self.diagnostics.push(diag);
    }
}

impl Seen {
    fn observed(&self, kind: IdentityKind) -> Vec<&Observation> {
        self.observations
            .iter()
            .filter(|o| o.kind == kind)
            .collect()
    }
    fn rejected(&self) -> Vec<(u64, String)> {
        self.diagnostics
            .iter()
            .map(|d| (d.line, d.reason.to_string()))
            .collect()
    }
}

/// Reads `log` as one document, in a fresh context.
fn read(log: &str) -> Seen {
    let mut seen = Seen::default();
    normalize_document(log.as_bytes(), &mut Context::default(), &mut seen);
    seen
}

const INIT: &str = r#"2025-06-13T14:44:29.945Z [info] [aws] Message from client: {"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"claude-ai","version":"0.1.0"}},"jsonrpc":"2.0","id":0}"#;

const ASSUME: &str = r#"2025-06-13T14:45:02.101Z [info] [aws] Message from client: {"method":"tools/call","params":{"name":"call_aws","arguments":{"cli_command":"aws sts assume-role --role-arn arn:aws:iam::111122223333:role/agents/support-agent --role-session-name ticket-4821"}},"jsonrpc":"2.0","id":5}"#;

/// A server's session as Claude Desktop logs it, newest bracket order.
fn log() -> String {
    [
        "2025-06-13T14:44:29.818Z [info] [aws] Initializing server...",
        INIT,
        r#"2025-06-13T14:44:30.101Z [info] [aws] Message from server: {"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2024-11-05","capabilities":{"tools":{}},"serverInfo":{"name":"aws-api-mcp-server","version":"1.0.0"}}}"#,
        r#"2025-06-13T14:44:30.200Z [info] [aws] Message from client: {"method":"notifications/initialized","jsonrpc":"2.0"}"#,
        r#"2025-06-13T14:44:30.210Z [info] [aws] Message from client: {"method":"tools/list","params":{},"jsonrpc":"2.0","id":1}"#,
        "2025-06-13T14:44:31.402Z [error] [aws] Some stderr text of the server",
        "  at Object.<anonymous> (/usr/lib/node_modules/server.js:1:1)",
        ASSUME,
        r#"2025-06-13T14:45:02.900Z [info] [aws] Message from server: {"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"{\"Credentials\":{\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}}"}],"isError":false}}"#,
        "",
    ]
    .join("\n")
}

#[test]
fn initialize_then_a_tool_call_is_an_event_of_the_clients_session() {
    let seen = read(&log());
    assert_eq!(seen.rejected(), []);
    let [e] = seen.events.as_slice() else {
        panic!("{:?}", seen.events)
    };
    let session = "ai:agent/claude-ai/session/aws@2025-06-13T14:44:29.945Z";
    assert_eq!(e.source, SourceKind::McpLog);
    assert_eq!(e.action, "tools/call");
    assert_eq!(e.actor.as_deref(), Some(session));
    assert_eq!(e.target.as_deref(), Some("call_aws"));
    assert_eq!(e.native_id, "aws@2025-06-13T14:45:02.101Z#5");
    assert_eq!(
        Some(e.time),
        keyward_model::time::parse("2025-06-13T14:45:02.101Z")
    );
    let [agent] = seen.observed(IdentityKind::AiAgent)[..] else {
        panic!("{:?}", seen.observations)
    };
    assert_eq!(agent.id, "ai:agent/claude-ai");
    assert_eq!(agent.facts.details["agent"]["version"], "0.1.0");
    let [s] = seen.observed(IdentityKind::AgentSession)[..] else {
        panic!("{:?}", seen.observations)
    };
    assert_eq!(s.id, session);
    assert_eq!(s.facts.parent.as_deref(), Some("ai:agent/claude-ai"));
    assert_eq!(s.facts.details["agent_session"]["server"], "aws");
}

#[test]
fn an_assume_role_in_the_arguments_is_the_sts_session_the_agent_session_created() {
    let seen = read(&log());
    let [sts] = seen.observed(IdentityKind::StsSession)[..] else {
        panic!("{:?}", seen.observations)
    };
    assert_eq!(
        sts.id,
        "arn:aws:sts::111122223333:assumed-role/support-agent/ticket-4821"
    );
    assert_eq!(sts.source, SourceKind::McpLog);
    assert_eq!(
        sts.facts.parent.as_deref(),
        Some("arn:aws:iam::111122223333:role/support-agent")
    );
    assert_eq!(
        sts.facts.assumed_by.as_deref(),
        Some("ai:agent/claude-ai/session/aws@2025-06-13T14:44:29.945Z")
    );
}

#[test]
fn both_orders_of_the_brackets_read_alike() {
    let older = log()
        .replace("[info] [aws]", "[aws] [info]")
        .replace("[error] [aws]", "[aws] [error]");
    assert_ne!(older, log());
    let (a, b) = (read(&log()), read(&older));
    assert_eq!(b.rejected(), []);
    assert_eq!(a.events, b.events);
    assert_eq!(a.raws, b.raws);
    // Levels in any case.
    let upper = ASSUME.replace("[info]", "[INFO]");
    assert_eq!(read(&upper).events.len(), 1);
}

#[test]
fn an_access_key_in_the_arguments_is_the_credential_and_secrets_are_not_kept() {
    let line = r#"2025-06-13T14:46:00.000Z [info] [aws] Message from client: {"method":"tools/call","params":{"name":"configure","arguments":{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","password":"hunter2","db":{"password":"correct horse"},"region":"us-east-1"},"_meta":{"progressToken":"tok-9"}},"jsonrpc":"2.0","id":"call-7"}"#;
    let seen = read(&format!("{INIT}\n{line}\n"));
    let [e] = seen.events.as_slice() else {
        panic!("{:?}", seen.events)
    };
    assert_eq!(e.credential.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(e.native_id, "aws@2025-06-13T14:46:00Z#call-7");
    let [raw] = seen.raws.as_slice() else {
        panic!("{:?}", seen.raws)
    };
    for secret in ["wJalrXUtnFEMI", "hunter2", "correct horse", "tok-9"] {
        assert!(!raw.contains(secret), "`{secret}` kept in {raw}");
    }
    let r: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let args = &r["params"]["arguments"];
    assert_eq!(args["AccessKeyId"], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(args["SecretAccessKey"], "[redacted]");
    assert_eq!(args["db"]["password"], "[redacted]");
    assert_eq!(args["region"], "us-east-1");
    assert_eq!(r["params"]["name"], "configure");
    assert_eq!(r["id"], "call-7");
    assert_eq!(r["server"], "aws");
    assert_eq!(r["context"]["agent"], "claude-ai");
    assert_eq!(r["context"]["session"], "aws@2025-06-13T14:44:29.945Z");
    // The redaction is otel's: the same arguments are stored the same way.
    let line: Value = serde_json::from_str(
        line.split_once("Message from client: ")
            .map_or("", |(_, j)| j),
    )
    .unwrap_or(Value::Null);
    assert_eq!(
        *args,
        crate::tool_args::redact_arguments(&line["params"]["arguments"])
    );
}

#[test]
fn a_bad_message_is_rejected_with_its_line_and_the_rest_is_read() {
    let log = [
        INIT,
        r#"2025-06-13T14:45:00.000Z [info] [aws] Message from client: {"method":"tools/call","params":{"name""#,
        r#"2025-06-13T14:45:00.500Z [info] [aws] Message from server: {"jsonrpc":"2.0","id":5,"#,
        &format!(
            "2025-06-13T14:45:01.000Z [info] [aws] Message from client: {}1{}",
            "[".repeat(5000),
            "]".repeat(5000)
        ),
        &ASSUME.replace("2025-06-13T14:45:02.101Z", "2025-13-45T99:00:00Z"),
        &ASSUME.replace("[info] [aws]", "[aws] [trace]"),
        r#"2025-06-13T14:45:03.000Z [info] [aws] Message from client: {"method":"tools/call","params":{"arguments":{}},"jsonrpc":"2.0","id":9}"#,
        "2025-06-13T14:45:04.000Z [info] [aws] Message from client: \u{fffd}",
        ASSUME,
    ]
    .join("\n");
    let mut bytes = log.into_bytes();
    // A byte that is not UTF-8 where the message starts.
    if let Some(at) = bytes.windows(3).position(|w| w == "\u{fffd}".as_bytes()) {
        bytes.splice(at..at + 3, [0xff]);
    }
    let mut seen = Seen::default();
    normalize_document(&bytes, &mut Context::default(), &mut seen);
    let lines: Vec<u64> = seen.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8], "{:?}", seen.rejected());
    let reasons = seen.rejected();
    assert!(
        reasons[0]
            .1
            .starts_with("the message from the client: invalid JSON")
    );
    assert!(
        reasons[1]
            .1
            .starts_with("the message from the server: invalid JSON")
    );
    assert_eq!(reasons[2].1, crate::TOO_DEEP);
    assert_eq!(reasons[3].1, "`timestamp` is not an RFC 3339 time");
    assert!(reasons[4].1.starts_with("expected `<RFC 3339 time>"));
    assert_eq!(reasons[5].1, "missing `params.name`");
    assert_eq!(reasons[6].1, "invalid JSON: not UTF-8");
    assert_eq!(seen.events.len(), 1);
}

#[test]
fn lines_without_a_message_are_skipped() {
    let log = [
        "2025-06-13T14:44:29.818Z [info] [aws] Initializing server...",
        "2025-06-13T14:44:31.402Z [error] [aws] Some stderr text of the server",
        "2025-06-13T14:44:31.403Z [error] [aws] it said: Message from client: {not json",
        "not a log line at all",
        "2025-06-13T14:44:31.404Z [info] Connected",
        "",
        "\r",
    ]
    .join("\n");
    let seen = read(&log);
    assert_eq!(seen.rejected(), []);
    assert!(seen.events.is_empty() && seen.observations.is_empty());
}

#[test]
fn a_tool_call_before_any_initialize_belongs_to_the_servers_unknown_client() {
    let older = ASSUME.replace("[info] [aws]", "[aws] [info]");
    let seen = read(&older);
    assert_eq!(seen.rejected(), []);
    let [e] = seen.events.as_slice() else {
        panic!("{:?}", seen.events)
    };
    assert_eq!(
        e.actor.as_deref(),
        Some("ai:agent/mcp-client:aws/session/aws")
    );
    let [agent] = seen.observed(IdentityKind::AiAgent)[..] else {
        panic!("{:?}", seen.observations)
    };
    assert_eq!(agent.id, "ai:agent/mcp-client:aws");
    assert!(agent.facts.details.is_empty());
    let [sts] = seen.observed(IdentityKind::StsSession)[..] else {
        panic!("{:?}", seen.observations)
    };
    assert_eq!(
        sts.facts.assumed_by.as_deref(),
        Some("ai:agent/mcp-client:aws/session/aws")
    );
}

#[test]
fn a_new_initialize_starts_a_new_session_and_servers_are_apart() {
    let later_init = INIT
        .replace("14:44:29.945Z", "15:00:00.000Z")
        .replace("claude-ai", "claude-code");
    let other = ASSUME.replace("[aws]", "[github]");
    let log = [INIT, ASSUME, &later_init, ASSUME, &other].join("\n");
    let seen = read(&log);
    let actors: Vec<_> = seen.events.iter().map(|e| e.actor.as_deref()).collect();
    assert_eq!(
        actors,
        [
            Some("ai:agent/claude-ai/session/aws@2025-06-13T14:44:29.945Z"),
            Some("ai:agent/claude-code/session/aws@2025-06-13T15:00:00Z"),
            Some("ai:agent/mcp-client:github/session/github"),
        ]
    );
}

#[test]
fn a_json_rpc_batch_is_read_element_by_element() {
    let call = ASSUME
        .split_once("Message from client: ")
        .map_or("", |(_, j)| j);
    let line = format!(
        "2025-06-13T14:45:02.101Z [info] [aws] Message from client: [{call},{{\"method\":\"tools/call\",\"id\":6}}]"
    );
    let mut seen = Seen::default();
    let mut ctx = Context::default();
    normalize_line(INIT.as_bytes(), 1, &mut ctx, &mut seen);
    normalize_line(line.as_bytes(), 2, &mut ctx, &mut seen);
    assert_eq!(seen.events.len(), 1);
    let [d] = seen.diagnostics.as_slice() else {
        panic!("{:?}", seen.diagnostics)
    };
    assert_eq!((d.line, d.record), (2, Some(1)));
}

#[test]
fn inputs_do_not_share_state() {
    let mut first = Context::default();
    let mut second = Context::default();
    let mut seen = Seen::default();
    normalize_line(INIT.as_bytes(), 1, &mut first, &mut seen);
    normalize_line(ASSUME.as_bytes(), 1, &mut second, &mut seen);
    normalize_line(ASSUME.as_bytes(), 2, &mut first, &mut seen);
    // One context read from one file, then another: the second file starts afresh.
    let mut ctx = Context::default().with_path("mcp-server-aws.log");
    normalize_line(INIT.as_bytes(), 1, &mut ctx, &mut seen);
    ctx.path = Some("mcp-server-aws1.log".into());
    normalize_line(ASSUME.as_bytes(), 1, &mut ctx, &mut seen);
    let actors: Vec<_> = seen.events.iter().map(|e| e.actor.as_deref()).collect();
    assert_eq!(
        actors,
        [
            Some("ai:agent/mcp-client:aws/session/aws"),
            Some("ai:agent/claude-ai/session/aws@2025-06-13T14:44:29.945Z"),
            Some("ai:agent/mcp-client:aws/session/aws"),
        ]
    );
}

#[test]
fn sniffing_knows_an_mcp_log_and_nothing_else_changes() {
    let lines = Some((Layout::Lines, Format::McpLog));
    assert_eq!(sniff(log().as_bytes(), "mcp-server-aws.log"), lines);
    let older = log().replace("[info] [aws]", "[aws] [info]");
    assert_eq!(sniff(older.as_bytes(), "mcp.log"), lines);
    assert_eq!(
        sniff(format!("\u{feff}{ASSUME}\r\n").as_bytes(), "x"),
        lines
    );
    // The format as the engine reads a line-oriented file: by its first line.
    assert_eq!(
        crate::sniff::format_of_object(
            b"2025-06-13T14:44:29.818Z [info] [aws] Initializing server..."
        ),
        Some(Format::McpLog)
    );
    // Without a message in the first lines, or without the prefix, it is not one.
    let quiet = "2025-06-13T14:44:29.818Z [info] [aws] Initializing server...\n".repeat(20);
    assert_eq!(
        sniff(format!("{quiet}{ASSUME}\n").as_bytes(), "mcp.log"),
        None
    );
    let bare = "[info] [aws] Message from client: {}\n";
    assert_eq!(sniff(bare.as_bytes(), "mcp.log"), None);
    assert_eq!(
        sniff(
            b"2025-06-13T14:44:29.818Z [aws] [trace] Message from client: {}\n",
            "x"
        ),
        None
    );
    let ct = b"{\"eventVersion\":\"1.09\"}\n{\"eventVersion\":\"1.09\"}\n";
    assert_eq!(
        sniff(ct, "x.log"),
        Some((Layout::Lines, Format::Cloudtrail))
    );
}
