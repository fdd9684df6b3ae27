//! OTLP JSON fixtures written to the OTLP JSON encoding and the GenAI / MCP semantic
//! conventions (no public corpus of agent traces exists to test against): the shapes are
//! the specification's, the values made up.

use keyward_model::{Diagnostic, IdentityKind, Observation, SourceKind};
use serde_json::Value;

use super::*;
use crate::{Layout, Output, Sink, sniff};

/// An accepted event: native id, action, actor, target, credential.
type Seen = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[derive(Default)]
struct Events {
    events: Vec<Seen>,
    raws: Vec<Value>,
    observations: Vec<Observation>,
    diagnostics: Vec<Diagnostic>,
}

impl Sink for Events {
    fn accept(&mut self, out: Output<'_>) {
        if let Some(e) = out.event {
            self.events.push((
                e.native_id.into_owned(),
                e.action.into_owned(),
                e.actor.map(|a| a.into_owned()),
                e.target.map(|t| t.into_owned()),
                e.credential.map(|c| c.into_owned()),
            ));
        }
        if let Some(raw) = out.raw {
            self.raws
                .push(serde_json::from_slice(&raw).unwrap_or(Value::Null));
        }
        self.observations.extend(out.observations);
    }
    fn reject(&mut self, diag: Diagnostic) {
        self.diagnostics.push(diag);
    }
}

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

/// An agent turn as an instrumented agent exports it: the `invoke_agent` span names the
/// agent, the conversation and the user; its `execute_tool` child names only the tool and
/// its arguments (a JSON string, as the spec allows); an MCP client span under it; an
/// HTTP span of neither convention; and a span whose `traceId` is cut short.
fn request() -> String {
    format!(
        r#"{{
  "resourceSpans": [
    {{
      "resource": {{
        "attributes": [
          {{"key": "service.name", "value": {{"stringValue": "finops-agent"}}}},
          {{"key": "cloud.account.id", "value": {{"stringValue": "111122223333"}}}}
        ]
      }},
      "scopeSpans": [
        {{
          "scope": {{"name": "opentelemetry.instrumentation.openai_agents", "version": "0.1.0"}},
          "spans": [
            {{
              "traceId": "{TRACE}",
              "spanId": "eee19b7ec3c1b174",
              "name": "invoke_agent finops",
              "kind": 1,
              "startTimeUnixNano": "1794585600000000000",
              "endTimeUnixNano": "1794585660000000000",
              "attributes": [
                {{"key": "gen_ai.operation.name", "value": {{"stringValue": "invoke_agent"}}}},
                {{"key": "gen_ai.agent.id", "value": {{"stringValue": "asst_finops_01"}}}},
                {{"key": "gen_ai.agent.name", "value": {{"stringValue": "finops"}}}},
                {{"key": "gen_ai.agent.description", "value": {{"stringValue": "Answers cloud cost questions"}}}},
                {{"key": "gen_ai.conversation.id", "value": {{"stringValue": "conv-7f3a9c2e41b8"}}}},
                {{"key": "gen_ai.provider.name", "value": {{"stringValue": "openai"}}}},
                {{"key": "user.id", "value": {{"stringValue": "Dave@acme.example"}}}},
                {{"key": "gen_ai.input.messages", "value": {{"stringValue": "[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":\"my password is hunter2\"}}]}}]"}}}}
              ],
              "status": {{}}
            }},
            {{
              "traceId": "{TRACE}",
              "spanId": "a1b2c3d4e5f60718",
              "parentSpanId": "eee19b7ec3c1b174",
              "name": "execute_tool assume_role",
              "kind": 1,
              "startTimeUnixNano": "1794585601000000000",
              "endTimeUnixNano": "1794585602000000000",
              "attributes": [
                {{"key": "gen_ai.operation.name", "value": {{"stringValue": "execute_tool"}}}},
                {{"key": "gen_ai.tool.name", "value": {{"stringValue": "assume_role"}}}},
                {{"key": "gen_ai.tool.call.id", "value": {{"stringValue": "call_mszuSIzqtI65i1wAUOE8w5H4"}}}},
                {{"key": "gen_ai.tool.call.arguments", "value": {{"stringValue": "{{\"RoleArn\":\"arn:aws:iam::111122223333:role/agents/finops-agent\",\"RoleSessionName\":\"conv-7f3a9c2e41b8\",\"ExternalId\":\"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRg\"}}"}}}},
                {{"key": "gen_ai.tool.call.result", "value": {{"stringValue": "{{\"Credentials\":{{\"AccessKeyId\":\"ASIAEXAMPLE000000001\",\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}}}}"}}}}
              ]
            }},
            {{
              "traceId": "{TRACE}",
              "spanId": "0f1e2d3c4b5a6978",
              "parentSpanId": "a1b2c3d4e5f60718",
              "name": "tools/call get_cost_and_usage",
              "kind": 3,
              "startTimeUnixNano": "1794585603000000000",
              "attributes": [
                {{"key": "mcp.method.name", "value": {{"stringValue": "tools/call"}}}},
                {{"key": "gen_ai.operation.name", "value": {{"stringValue": "execute_tool"}}}},
                {{"key": "gen_ai.tool.name", "value": {{"stringValue": "get_cost_and_usage"}}}},
                {{"key": "jsonrpc.request.id", "value": {{"intValue": "7"}}}},
                {{"key": "mcp.session.id", "value": {{"stringValue": "191c4850af6c49e08843a3f6c80e5046"}}}},
                {{"key": "gen_ai.tool.call.arguments", "value": {{"kvlistValue": {{"values": [
                  {{"key": "granularity", "value": {{"stringValue": "MONTHLY"}}}},
                  {{"key": "api_token", "value": {{"stringValue": "short"}}}}
                ]}}}}}}
              ],
              "status": {{"code": 2, "message": "tool_error"}}
            }},
            {{
              "traceId": "{TRACE}",
              "spanId": "1111111111111111",
              "parentSpanId": "0f1e2d3c4b5a6978",
              "name": "POST",
              "startTimeUnixNano": "1794585603100000000",
              "attributes": [{{"key": "http.request.method", "value": {{"stringValue": "POST"}}}}]
            }},
            {{
              "traceId": "5b8efff798038103",
              "spanId": "2222222222222222",
              "startTimeUnixNano": "1794585604000000000",
              "attributes": [{{"key": "gen_ai.operation.name", "value": {{"stringValue": "chat"}}}}]
            }}
          ]
        }}
      ]
    }}
  ]
}}"#
    )
}

fn read(doc: &str) -> Events {
    let mut sink = Events::default();
    normalize_document(doc.as_bytes(), &mut sink);
    sink
}

#[test]
fn sniffed_as_otel_traces() {
    let doc = request();
    assert_eq!(
        sniff(doc.as_bytes(), "traces.json"),
        Some((Layout::Document, SourceKind::OtelTraces))
    );
    let one = serde_json::to_string(&serde_json::from_str::<Value>(&doc).unwrap_or(Value::Null))
        .unwrap_or_default();
    let lines = format!("{one}\n{one}\n");
    assert_eq!(
        sniff(lines.as_bytes(), "traces.jsonl"),
        Some((Layout::Lines, SourceKind::OtelTraces))
    );
}

#[test]
fn an_agent_turn_becomes_the_agent_its_session_and_the_sts_session_it_assumed() {
    let got = read(&request());
    let agent = "ai:agent/asst_finops_01";
    let conv = "ai:agent/asst_finops_01/session/conv-7f3a9c2e41b8";
    // The tool spans inherit the conversation from their parent (the MCP call too: its
    // MCP session is within the agent's turn); the HTTP span is skipped.
    let events: Vec<(&str, Option<&str>, Option<&str>)> = got
        .events
        .iter()
        .map(|(_, a, actor, target, _)| (a.as_str(), actor.as_deref(), target.as_deref()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("invoke_agent", Some(conv), Some("finops")),
            ("execute_tool", Some(conv), Some("assume_role")),
            ("execute_tool", Some(conv), Some("get_cost_and_usage")),
        ]
    );
    assert_eq!(got.events[0].0, format!("{TRACE}:eee19b7ec3c1b174"));
    // The span cut short is rejected on its own line, with its index among the spans.
    assert_eq!(got.diagnostics.len(), 1, "{:?}", got.diagnostics);
    let doc = request();
    let at = doc.find("\"traceId\": \"5b8efff798038103\"").unwrap_or(0);
    let opening = doc[..at].rfind('{').unwrap_or(0);
    assert_eq!(
        got.diagnostics[0].line as usize,
        doc[..opening].matches('\n').count() + 1
    );
    assert_eq!(got.diagnostics[0].record, Some(4));
    assert_eq!(got.diagnostics[0].reason, "`traceId` is not 32 hex digits");
    let kinds = |kind| {
        got.observations
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        kinds(IdentityKind::AiAgent).into_iter().collect::<Vec<_>>(),
        [agent]
    );
    assert_eq!(
        kinds(IdentityKind::AgentSession)
            .into_iter()
            .collect::<Vec<_>>(),
        [conv]
    );
    let session = got
        .observations
        .iter()
        .find(|o| o.id == conv)
        .expect("the conversation");
    assert_eq!(session.name, "finops/conv-7f3a9c2e41b8");
    assert_eq!(session.facts.parent.as_deref(), Some(agent));
    assert_eq!(
        session.facts.details["agent_session"]["prompted_by"],
        "dave@acme.example"
    );
    let sts: Vec<&Observation> = got
        .observations
        .iter()
        .filter(|o| o.kind == IdentityKind::StsSession)
        .collect();
    assert_eq!(sts.len(), 1);
    assert_eq!(
        sts[0].id,
        "arn:aws:sts::111122223333:assumed-role/finops-agent/conv-7f3a9c2e41b8"
    );
    assert_eq!(
        sts[0].facts.parent.as_deref(),
        Some("arn:aws:iam::111122223333:role/finops-agent")
    );
    assert_eq!(sts[0].facts.assumed_by.as_deref(), Some(conv));
    let described = got
        .observations
        .iter()
        .filter(|o| o.kind == IdentityKind::AiAgent && o.facts.details.contains_key("agent"))
        .count();
    assert_eq!(
        described, 1,
        "only the span that declares the agent describes it"
    );
}

#[test]
fn stored_records_keep_ids_and_drop_secrets() {
    let got = read(&request());
    let all = serde_json::to_string(&got.raws).unwrap_or_default();
    for secret in [
        "hunter2",
        "wJalrXUtnFEMI",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRg",
        "ASIAEXAMPLE000000001",
        "\"short\"",
    ] {
        assert!(!all.contains(secret), "`{secret}` was kept: {all}");
    }
    let tool = &got.raws[1];
    assert_eq!(
        tool["arguments"]["RoleArn"],
        "arn:aws:iam::111122223333:role/agents/finops-agent"
    );
    assert_eq!(tool["arguments"]["RoleSessionName"], "conv-7f3a9c2e41b8");
    assert_eq!(tool["arguments"]["ExternalId"], "[redacted]");
    assert_eq!(tool["context"]["user"], "Dave@acme.example");
    let mcp = &got.raws[2];
    assert_eq!(mcp["arguments"]["granularity"], "MONTHLY");
    assert_eq!(mcp["arguments"]["api_token"], "[redacted]");
    assert_eq!(mcp["attributes"]["jsonrpc.request.id"], 7);
}

#[test]
fn a_command_line_argument_names_the_role_and_the_key() {
    let args = serde_json::json!({
        "cli_command": "aws sts assume-role --role-arn arn:aws:iam::111122223333:role/finops-agent --role-session-name conv-1 --profile AKIAIOSFODNN7EXAMPLE"
    });
    let c = Credentials::of(&args);
    assert_eq!(
        c.role.as_ref().map(|r| r.0.as_str()),
        Some("arn:aws:iam::111122223333:role/finops-agent")
    );
    assert_eq!(c.session.as_deref(), Some("conv-1"));
    assert_eq!(c.keys, ["AKIAIOSFODNN7EXAMPLE"]);
    // No session name, no session: the role alone says nothing CloudTrail can join on.
    let c = Credentials::of(&serde_json::json!({"role_arn": "arn:aws:iam::1:role/r"}));
    assert!(c.sts_session(0, "x", SourceKind::OtelTraces).is_none());
}

#[test]
fn a_broken_line_costs_that_line_only() {
    let one =
        serde_json::to_string(&serde_json::from_str::<Value>(&request()).unwrap_or(Value::Null))
            .unwrap_or_default();
    let mut sink = Events::default();
    normalize_line(one.as_bytes(), 1, &mut sink);
    normalize_line(
        b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\"",
        2,
        &mut sink,
    );
    normalize_line(b"{\"resourceLogs\":[]}", 3, &mut sink);
    assert_eq!(sink.events.len(), 3);
    let lines: Vec<u64> = sink.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [1, 2, 3], "{:?}", sink.diagnostics);
    assert_eq!(sink.diagnostics[2].reason, "missing `resourceSpans`");
}

#[test]
fn a_document_cut_short_keeps_the_spans_before_the_cut() {
    let doc = request();
    let cut = doc
        .find("\"spanId\": \"0f1e2d3c4b5a6978\"")
        .unwrap_or(doc.len());
    let got = read(&doc[..cut]);
    assert_eq!(
        got.events.len(),
        2,
        "{:?} {:?}",
        got.diagnostics,
        got.events
    );
    // Reported where the span that never ends opens.
    let opening = doc[..cut].rfind('{').unwrap_or(0);
    let cut_line = doc[..opening].matches('\n').count() as u64 + 1;
    let reasons: Vec<(u64, String)> = got
        .diagnostics
        .iter()
        .map(|d| (d.line, d.reason.to_string()))
        .collect();
    assert_eq!(reasons, [(cut_line, CUT.to_owned())]);
}

#[test]
fn spans_without_an_agent_fall_back_to_the_service() {
    let doc = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing-mcp"}}]},"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","startTimeUnixNano":1794585600000000000,"attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"gen_ai.tool.name","value":{"stringValue":"get_cost_forecast"}},{"key":"mcp.session.id","value":{"stringValue":"s1"}}]}]}]}]}"#;
    let got = read(doc);
    assert!(got.diagnostics.is_empty(), "{:?}", got.diagnostics);
    assert_eq!(
        got.events[0].2.as_deref(),
        Some("ai:agent/billing-mcp/session/s1")
    );
    assert_eq!(got.events[0].1, "tools/call");
}

#[test]
fn a_byte_order_mark_and_line_zero_are_no_trouble() {
    let doc = format!("\u{feff}{}", request());
    let got = read(&doc);
    assert_eq!(got.events.len(), 3, "{:?}", got.diagnostics);
    let mut sink = Events::default();
    normalize_line(b"[]", 0, &mut sink);
    assert_eq!(sink.diagnostics[0].line, 1);
}

/// Every prefix of a request, and the request with each byte in turn replaced by a
/// structural character: never a panic, every rejection on a line of the input, and every
/// span accepted from a prefix is one of the whole request's.
#[test]
fn cut_and_damaged_requests_never_panic() {
    let doc = request();
    let whole: Vec<String> = read(&doc).events.into_iter().map(|e| e.0).collect();
    let lines = doc.matches('\n').count() as u64 + 1;
    let check = |got: &Events| {
        for d in &got.diagnostics {
            assert!(d.line >= 1 && d.line <= lines, "{d:?}");
        }
    };
    for cut in (0..doc.len()).filter(|&i| doc.is_char_boundary(i)) {
        let got = read(&doc[..cut]);
        check(&got);
        for e in &got.events {
            assert!(whole.contains(&e.0), "{cut}: {e:?}");
        }
    }
    for (i, b) in doc.bytes().enumerate().step_by(7) {
        for with in [b'{', b'}', b'[', b']', b'"', b','] {
            if b == with {
                continue;
            }
            let mut damaged = doc.clone().into_bytes();
            damaged[i] = with;
            let mut sink = Events::default();
            normalize_document(&damaged, &mut sink);
            check(&sink);
            normalize_line(&damaged, 1, &mut sink);
        }
    }
}
